import Bus
import Foundation
import Synchronization
import Host
import Messages
import NatsServerKit
import XCTest

/// Hosts as child processes (`qt-test-host`), killed the hard way.
final class HostProcessTests: HostTestCase {
    func testPipelineLosesAndDuplicatesNothingAcrossRandomSIGKILLs() async throws {
        let ids = try await publishKlines(10_000)
        // Kill at random points of progress (states stored so far), not at random times: the
        // host is fast enough to finish before a timer would fire.
        var generator = SystemRandomNumberGenerator()
        let killPoints = (0..<4).map { _ in UInt64.random(in: 500...9_500, using: &generator) }.sorted()
        var kills = 0
        for point in killPoints {
            let child = try await spawnHost("node-a", plugins: ["relay-a": [:], "relay-b": [:]])
            try await waitUntil("\(point) states", seconds: 60) {
                try await self.messages(in: "QT_MARKET") >= 10_000 + point
            }
            kill(child.processIdentifier, SIGKILL)
            child.waitUntilExit()
            XCTAssertEqual(child.terminationReason, .uncaughtSignal)
            kills += 1
        }
        let survivor = try await spawnHost("node-a", plugins: ["relay-a": [:], "relay-b": [:]])
        try await waitUntil("10000 decisions", seconds: 120) { try await self.count("qt.decision.relay-b.*") >= 10_000 }
        try await Task.sleep(nanoseconds: 3_000_000_000)  // past AckWait: any redelivery would have landed
        let stored = try await count("qt.decision.relay-b.*")
        XCTAssertEqual(stored, 10_000, "exactly one decision per kline after \(kills) kills")
        let decisions = try await readAll(Decision.self, subject: "qt.decision.relay-b.*", expected: 10_000, seconds: 60)
        XCTAssertEqual(decisions.count, 10_000)
        XCTAssertEqual(Set(decisions.map(\.subjectID)), Set(ids))
        let states = try await count("qt.market.state.*")
        XCTAssertEqual(states, 10_000, "exactly one state per kline")
        print("SIGKILL test: \(kills) kills at states \(killPoints), 10000 decisions, 0 duplicates")
        survivor.terminate()
        survivor.waitUntilExit()
        XCTAssertEqual(survivor.terminationStatus, 0, log(of: "node-a"))
        XCTAssertTrue(log(of: "node-a").contains("qt host node-a: stopped"))
    }

    /// `QT_LOG_FORMAT=json`: every line the host writes is one JSON object a log shipper can
    /// read, with the host and the message; SIGTERM still drains through the service group.
    func testJSONLogLinesCarryHostAndMessageAndSIGTERMDrains() async throws {
        let child = try await spawnHost("node-j", plugins: ["ticker": [:]], environment: ["QT_LOG_FORMAT": "json"])
        try await waitUntil("the host is running", seconds: 30) { self.log(of: "node-j").contains("running") }
        child.terminate()
        child.waitUntilExit()
        XCTAssertEqual(child.terminationStatus, 0, log(of: "node-j"))
        let lines = log(of: "node-j").split(separator: "\n").filter { $0.hasPrefix("{") }
        let records = lines.compactMap { try? JSONSerialization.jsonObject(with: Data($0.utf8)) as? [String: String] }
        XCTAssertEqual(records.count, lines.count, "every JSON line parses")
        XCTAssertEqual(records.compactMap { $0["message"] }.filter { ["draining", "stopped"].contains($0) }, ["draining", "stopped"])
        XCTAssertTrue(records.allSatisfy { $0["host"] == "node-j" && $0["level"] != nil && $0["ts"] != nil }, "\(records)")
        XCTAssertFalse(log(of: "node-j").contains("qt host node-j: stopped"), "no text lines in JSON mode")
    }

    func testSingletonTimerMovesToTheSurvivorAfterSIGKILL() async throws {
        let a = try await spawnHost("node-a", plugins: ["ticker": [:]])
        let b = try await spawnHost("node-b", plugins: ["ticker": [:]])
        let leases = try await bus.keyValue("qt_leases")
        var holder = ""
        try await waitUntil("a lease holder", seconds: 15) {
            holder = try await leases.get(Lease.self, "ticker")?.value.holder ?? ""
            return !holder.isEmpty
        }
        try await Task.sleep(nanoseconds: 2_000_000_000)
        let beatsBefore = try await readAll(Decision.self, subject: "qt.decision.ticker.*",
                                            expected: Int(try await count("qt.decision.ticker.*")))
        XCTAssertFalse(beatsBefore.isEmpty)
        XCTAssertEqual(Set(beatsBefore.map(\.symbol)), [holder], "only the holder ticks")

        let (victim, survivor) = holder == "node-a" ? (a, "node-b") : (b, "node-a")
        kill(victim.processIdentifier, SIGKILL)
        victim.waitUntilExit()
        let killedAt = Date()
        try await waitUntil("the survivor ticks", seconds: 25) {
            let audit = try await self.bus.streamInfo("QT_AUDIT")
            guard let last = try await self.lastBeat(sequence: audit.lastSequence) else { return false }
            return last.symbol == survivor
        }
        let takeover = Date().timeIntervalSince(killedAt)
        let bound = 15.0 + Double(PluginHost.leaseRenewIntervalMs) / 1000 + 1.5  // TTL + one renew + tick and poll slack
        XCTAssertLessThanOrEqual(takeover, bound, "takeover took \(takeover) s")
        let newHolder = try await leases.get(Lease.self, "ticker")?.value.holder
        XCTAssertEqual(newHolder, survivor)
        print("singleton takeover after SIGKILL: \(String(format: "%.1f", takeover)) s (bound \(bound) s)")
    }

    func testTopologyCheckNamesAMissingProducerAndPassesOnceItRuns() async throws {
        _ = try await startHost("node-a", plugins: ["relay-a": [:], "relay-b": [:]])
        let failing = try runQT(["topology", "check", "--server", server.url])
        XCTAssertNotEqual(failing.status, 0)
        XCTAssertTrue(failing.stdout.contains("no producer: qt.market.kline.*: consumed by relay-a@node-a"), failing.stdout)
        XCTAssertFalse(failing.stdout.contains("qt.market.state.*"), "relay-a produces the states relay-b consumes")

        _ = try await startHost("node-b", plugins: ["feed": [:]])
        let passing = try runQT(["topology", "check", "--server", server.url])
        XCTAssertEqual(passing.status, 0, passing.stdout + passing.stderr)
        XCTAssertTrue(passing.stdout.contains("topology ok: 2 host(s), 3 plugin(s)"), passing.stdout)

        let show = try runQT(["topology", "show", "--server", server.url])
        XCTAssertTrue(show.stdout.contains("qt.market.kline.*: feed@node-b -> relay-a@node-a"), show.stdout)
    }

    private func lastBeat(sequence: UInt64) async throws -> Decision? {
        let found = Box()
        try await bus.tail("qt.decision.ticker.*", last: 1, follow: false) { message in
            found.set(try? Decision(serializedBytes: message.payload))
            return false
        }
        return found.value
    }

    private func runQT(_ arguments: [String]) throws -> ChildProcess.Result {
        try ChildProcess.run(try binary("qt"), arguments)
    }
}

private final class Box: Sendable {
    private let decision = Mutex<Decision?>(nil)
    var value: Decision? { decision.withLock { $0 } }
    func set(_ value: Decision?) { decision.withLock { $0 = value } }
}
