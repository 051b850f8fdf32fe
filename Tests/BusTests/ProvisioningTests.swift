import Bus
import Messages
import NatsServerKit
import XCTest

final class ProvisioningTests: BusTestCase {
    func testProvisioningTwiceChangesNothing() async throws {
        // setUp provisioned once already: a second and third run leave everything as it is.
        let second = try await bus.provision()
        XCTAssertEqual(second.count, Topology.streams.count + Topology.buckets.count + 1, "streams, buckets and the layout")
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
        XCTAssertEqual(results.filter { $0.action == .created }.count, Topology.streams.count + Topology.buckets.count + 1)
        let streams = try await connection.streams().map(\.name)
        for stream in Topology.streams { XCTAssertTrue(streams.contains(stream.name), stream.name) }
        for bucket in Topology.buckets { XCTAssertTrue(streams.contains("KV_" + bucket.name), bucket.name) }
    }

    func testChangedSettingsAreUpdatedAndReported() async throws {
        let fresh = try NatsServer()
        defer { fresh.stop() }
        let connection = try BusConnection(options(for: fresh))
        defer { connection.close() }
        // An older deployment: QT_MARKET kept only 1 h and knew only klines; qt_state kept history 2.
        let market = try XCTUnwrap(Topology.stream(named: "QT_MARKET"))
        let olderMarket = StreamSpec(name: "QT_MARKET", maxAgeSeconds: 3600, maxBytes: -1, routes: [market.routes[0]])
        let state = try XCTUnwrap(Topology.bucket(named: "qt_state"))
        let olderState = BucketSpec(name: "qt_state", maxBytes: state.maxBytes, history: 2, ttlSeconds: 0, valueType: state.valueType)
        _ = try await connection.provision(streams: [olderMarket], buckets: [olderState])

        let results = try await connection.provision()
        let marketResult = try XCTUnwrap(results.first { $0.name == "QT_MARKET" })
        XCTAssertEqual(marketResult.action, .updated)
        XCTAssertTrue(marketResult.changes.contains("max_age: 3600s -> 172800s"), "\(marketResult.changes)")
        XCTAssertTrue(marketResult.changes.contains { $0.hasPrefix("subjects:") }, "\(marketResult.changes)")
        XCTAssertTrue(marketResult.changes.contains("max_bytes: -1 -> \(market.maxBytes)"), "\(marketResult.changes)")
        let stateResult = try XCTUnwrap(results.first { $0.name == "qt_state" })
        XCTAssertEqual(stateResult.action, .updated)
        XCTAssertEqual(stateResult.changes, ["max_msgs_per_subject: 2 -> 8"])

        let info = try await connection.streamInfo("QT_MARKET")
        XCTAssertEqual(Set(info.subjects), ["qt.market.kline.*.*", "qt.market.state.*.*"])
        XCTAssertEqual(info.maxAgeSeconds, 48 * 3600)
        let again = try await connection.provision()
        XCTAssertEqual(again.filter { $0.action != .unchanged }, [])
    }

    func testStreamSettingsFollowTheDesign() async throws {
        let market = try await bus.streamInfo("QT_MARKET")
        // Keyed subjects are stored with their partition token after the symbol (DESIGN.md §3.3).
        XCTAssertEqual(Set(market.subjects), ["qt.market.kline.*.*", "qt.market.state.*.*"])
        XCTAssertEqual(market.maxAgeSeconds, 48 * 3600)
        XCTAssertEqual(market.duplicateWindowSeconds, 120)
        for spec in Topology.streams {
            let info = try await bus.streamInfo(spec.name)
            XCTAssertEqual(info.maxBytes, spec.maxBytes, "\(spec.name) has its byte limit")
            XCTAssertGreaterThan(spec.maxBytes, 0)
        }
        for spec in Topology.buckets {
            let info = try await bus.streamInfo("KV_" + spec.name)
            XCTAssertEqual(info.maxBytes, spec.maxBytes, "bucket \(spec.name) has its byte limit")
        }
        let exec = try await bus.streamInfo("QT_EXEC")
        XCTAssertEqual(exec.maxAgeSeconds, 400 * 86_400)
        let permits = try await bus.streamInfo("KV_qt_permits")
        XCTAssertEqual(permits.maxAgeSeconds, 60)
        XCTAssertEqual(permits.duplicateWindowSeconds, 60)
    }

    func testTheLayoutRecordsPAndAnotherPIsRefusedWithoutRepartition() async throws {
        let read = try await bus.readLayout()
        let layout = try XCTUnwrap(read?.layout)
        XCTAssertEqual(layout.partitions, UInt32(Partitioning.defaultCount))
        XCTAssertEqual(layout.replicas, 1)
        XCTAssertEqual(layout.schemaFingerprint, SchemaFingerprint.value)
        do {
            _ = try await bus.provision(partitions: 16)
            XCTFail("a different P must be refused")
        } catch let error as BusError {
            XCTAssertTrue(error.description.contains("records 8 partitions, not 16"), error.description)
            XCTAssertTrue(error.description.contains("--repartition"), error.description)
        }
        let unchanged = try await bus.readLayout()?.layout.partitions
        XCTAssertEqual(unchanged, 8, "nothing changed")
    }

    func testRepartitionReplacesThePartitionDurables() async throws {
        let eight = try (0..<8).map { try ConsumerSpec(plugin: "relay", input: "klines", filterSubject: "qt.market.kline.*", partition: $0) }
        _ = try await bus.provision(consumers: eight)
        let created = try await bus.streamInfo("QT_MARKET").consumers.map(\.name).filter { $0.hasPrefix("relay__") }
        XCTAssertEqual(created.count, 8)
        let four = try (0..<4).map { try ConsumerSpec(plugin: "relay", input: "klines", filterSubject: "qt.market.kline.*", partition: $0) }
        let results = try await bus.provision(partitions: 4, consumers: four, repartition: true)
        XCTAssertEqual(results.first { $0.kind == .layout }?.changes, ["partitions: 8 -> 4"])
        let names = try await bus.streamInfo("QT_MARKET").consumers.map(\.name).filter { $0.hasPrefix("relay__") }
        XCTAssertEqual(names.sorted(), (0..<4).map { "relay__klines__p\($0)" })
        XCTAssertEqual(bus.partitioning?.count, 4)
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

