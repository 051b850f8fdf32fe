import Bus
import Foundation
import Messages
import NatsServerKit
import XCTest

/// Runs the built `qt` binary against a real nats-server, as a user would.
final class CLITests: XCTestCase {
    var server: NatsServer!

    override func setUpWithError() throws {
        server = try NatsServer()
    }

    override func tearDown() {
        server?.stop()
        server = nil
    }

    func qt(_ arguments: String...) throws -> ChildProcess.Result {
        let executable = try qtBinary()
        var environment = ProcessInfo.processInfo.environment
        environment["NATS_URL"] = server.url
        return try ChildProcess.run(executable, arguments, environment: environment)
    }

    private func json(_ line: String) throws -> [String: Any] {
        try XCTUnwrap(JSONSerialization.jsonObject(with: Data(line.utf8)) as? [String: Any], line)
    }

    func testProvisionListInfoTailAndKVGetPrintDecodedJSON() async throws {
        let provision = try qt("streams", "provision")
        XCTAssertEqual(provision.status, 0, provision.stderr)
        XCTAssertTrue(provision.stdout.contains("stream QT_MARKET: created"))
        XCTAssertTrue(try qt("streams", "provision").stdout.contains("stream QT_MARKET: unchanged"))

        let bus = try BusConnection(ConnectionOptions(servers: [server.url]))
        defer { bus.close() }
        for minute in 0..<3 {
            var bar = Kline()
            bar.symbol = "BTCUSDT"
            bar.close = "100.\(minute)"
            bar.closeTimeMs = Int64(minute) * 60_000 + 59_999
            _ = try await bus.publish(OutgoingMessage(bar, subject: Subjects.kline("BTCUSDT"), id: "cli-\(minute)",
                                                      producer: "market-feed@cli-test"))
        }
        var entry = LedgerEntry()
        entry.symbol = "BTCUSDT"
        entry.positionAmt = "-0.015"
        entry.tranchesTaken = 1
        try await bus.keyValue("qt_ledger").put("BTCUSDT", message: entry)

        let list = try qt("streams", "ls")
        XCTAssertEqual(list.status, 0, list.stderr)
        let marketRow = try XCTUnwrap(list.lines.first { $0.hasPrefix("QT_MARKET ") })
        XCTAssertEqual(marketRow.split(separator: " ", omittingEmptySubsequences: true)[1], "3")

        let info = try qt("streams", "info", "QT_MARKET")
        XCTAssertEqual(info.status, 0, info.stderr)
        XCTAssertTrue(info.stdout.contains("messages:         3"), info.stdout)

        let tail = try qt("streams", "tail", "qt.market.kline.BTCUSDT", "--last", "2")
        XCTAssertEqual(tail.status, 0, tail.stderr)
        XCTAssertEqual(tail.lines.count, 2)
        let last = try json(tail.lines[1])
        XCTAssertEqual(last["type"] as? String, "qt.v1.Kline")
        XCTAssertEqual(last["seq"] as? Int, 3)
        XCTAssertEqual((last["message"] as? [String: Any])?["close"] as? String, "100.2")
        XCTAssertEqual((last["headers"] as? [String: Any])?["Qt-Producer"] as? String, "market-feed@cli-test")
        XCTAssertEqual(((last["message"] as? [String: Any])?["meta"] as? [String: Any])?["id"] as? String, "cli-2")
        let first = try json(tail.lines[0])
        XCTAssertEqual((first["message"] as? [String: Any])?["close"] as? String, "100.1")

        let raw = try qt("streams", "tail", "qt.market.kline.BTCUSDT", "--last", "1", "--raw")
        let rawLine = try json(try XCTUnwrap(raw.lines.first))
        let bytes = try XCTUnwrap(Data(base64Encoded: try XCTUnwrap(rawLine["payload_base64"] as? String)))
        XCTAssertEqual(try Kline(serializedBytes: Array(bytes)).close, "100.2")

        let get = try qt("kv", "get", "qt_ledger", "BTCUSDT")
        XCTAssertEqual(get.status, 0, get.stderr)
        let value = try json(try XCTUnwrap(get.lines.first))
        XCTAssertEqual(value["type"] as? String, "qt.v1.LedgerEntry")
        XCTAssertEqual((value["message"] as? [String: Any])?["position_amt"] as? String, "-0.015")
        XCTAssertEqual((value["message"] as? [String: Any])?["tranches_taken"] as? Int, 1)

        let keys = try qt("kv", "ls", "qt_ledger")
        XCTAssertEqual(keys.lines, ["BTCUSDT"])
    }

    func testErrorsExitNonZeroWithOneLineReason() throws {
        _ = try qt("streams", "provision")
        let unknownStream = try qt("streams", "info", "NO_SUCH")
        XCTAssertNotEqual(unknownStream.status, 0)
        XCTAssertEqual(unknownStream.stderr, "qt: not found: stream NO_SUCH\n")

        let unreachable = try qt("streams", "ls", "--server", "nats://127.0.0.1:1")
        XCTAssertNotEqual(unreachable.status, 0)
        XCTAssertTrue(unreachable.stderr.hasPrefix("qt: cannot connect to NATS at nats://127.0.0.1:1"), unreachable.stderr)
        XCTAssertEqual(unreachable.stderr.split(separator: "\n").count, 1)

        let unknownBucket = try qt("kv", "get", "qt_nothing", "x")
        XCTAssertNotEqual(unknownBucket.status, 0)
        XCTAssertTrue(unknownBucket.stderr.contains("unknown type for bucket qt_nothing"), unknownBucket.stderr)

        let missingKey = try qt("kv", "get", "qt_ledger", "NOPE")
        XCTAssertNotEqual(missingKey.status, 0)
        XCTAssertEqual(missingKey.stderr, "qt: not found: key NOPE in bucket qt_ledger\n")
    }

    func testTailReportsAMessageOfUnknownTypeAndFails() async throws {
        _ = try qt("streams", "provision")
        let bus = try BusConnection(ConnectionOptions(servers: [server.url]))
        defer { bus.close() }
        _ = try await bus.publish(OutgoingMessage(unchecked: "qt.market.kline.ETHUSDT", typeName: "qt.v9.Unknown",
                                                  id: "u-1", payload: [1, 2, 3]))
        let tail = try qt("streams", "tail", "qt.market.kline.ETHUSDT")
        XCTAssertNotEqual(tail.status, 0)
        let line = try json(try XCTUnwrap(tail.lines.first))
        XCTAssertEqual(line["error"] as? String, "unknown type qt.v9.Unknown")
        XCTAssertTrue(tail.stderr.contains("could not be decoded"), tail.stderr)
    }
}
