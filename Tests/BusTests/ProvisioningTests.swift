import Bus
import Messages
import NatsServerKit
import XCTest

final class ProvisioningTests: BusTestCase {
    func testProvisioningTwiceChangesNothing() async throws {
        // setUp provisioned once already: a second and third run leave everything as it is.
        let second = try await bus.provision()
        XCTAssertEqual(second.count, Topology.streams.count + Topology.buckets.count)
        XCTAssertEqual(second.filter { $0.action != .unchanged }, [])
        let third = try await bus.provision()
        XCTAssertEqual(third.map(\.action), second.map(\.action))
    }

    func testFirstProvisioningCreatesEveryStreamAndBucket() async throws {
        let fresh = try NatsServer()
        defer { fresh.stop() }
        let connection = try BusConnection(options(for: fresh))
        defer { connection.close() }
        let results = try await connection.provision()
        XCTAssertEqual(results.filter { $0.action == .created }.count, Topology.streams.count + Topology.buckets.count)
        let streams = try await connection.streams().map(\.name)
        for stream in Topology.streams { XCTAssertTrue(streams.contains(stream.name), stream.name) }
        for bucket in Topology.buckets { XCTAssertTrue(streams.contains("KV_" + bucket.name), bucket.name) }
    }

    func testStreamSettingsFollowTheDesign() async throws {
        let market = try await bus.streamInfo("QT_MARKET")
        XCTAssertEqual(Set(market.subjects), ["qt.market.kline.*", "qt.market.state.*"])
        XCTAssertEqual(market.maxAgeSeconds, 48 * 3600)
        XCTAssertEqual(market.duplicateWindowSeconds, 120)
        let exec = try await bus.streamInfo("QT_EXEC")
        XCTAssertEqual(exec.maxAgeSeconds, 400 * 86_400)
        let permits = try await bus.streamInfo("KV_qt_permits")
        XCTAssertEqual(permits.maxAgeSeconds, 60)
        XCTAssertEqual(permits.duplicateWindowSeconds, 60)
    }

    func testUnknownStreamIsNamedInTheError() async throws {
        do {
            _ = try await bus.streamInfo("NO_SUCH_STREAM")
            XCTFail("expected notFound")
        } catch let error as BusError {
            XCTAssertEqual(error, .notFound("stream NO_SUCH_STREAM"))
        }
    }
}

