import Bus
import Foundation
import Synchronization
import Host
import Messages
import NatsServerKit
import TestPlugins
import XCTest

/// Keyed partitions across host processes (DESIGN.md §3.3), with the `sequencer` test plugin: its
/// per-symbol state counts every bar that was not the next one, so a symbol handled out of order
/// (or by two hosts at once) shows up as a gap.
final class PartitionTests: HostTestCase {
    let symbols = (0..<40).map { "SEQ\($0)USDT" }

    /// Three hosts: every partition has one owner, none more than 3. SIGKILL one: its partitions
    /// have new owners within the lease TTL plus one step. A fourth host joins and gets a share
    /// within 30 s. Throughout, no symbol sees a gap and every bar is counted.
    func testPartitionsBalanceMoveOnSIGKILLAndReachAJoiningHost() async throws {
        let names = ["node-a", "node-b", "node-c"]
        var hosts: [String: Process] = [:]
        for name in names {
            hosts[name] = try await spawnHost(name, plugins: ["sequencer": [:]],
                                              environment: ["QT_JOURNAL": scratch.appendingPathComponent("\(name).journal").path])
        }
        try await waitUntilBalanced("sequencer", hosts: names, seconds: 40)
        let owners = try await partitionOwners("sequencer")
        XCTAssertEqual(owners.count, Partitioning.defaultCount, "every partition has exactly one owner")
        XCTAssertLessThanOrEqual(Dictionary(grouping: owners.values, by: { $0 }).values.map(\.count).max() ?? 0, 3)

        let feeder = Feeder(symbols: symbols, bus: bus)
        let feeding = Task { try await feeder.run() }
        try await Task.sleep(nanoseconds: 2_000_000_000)

        let victim = "node-c"
        let lost = Set(owners.filter { $0.value == victim }.keys)
        kill(hosts[victim]!.processIdentifier, SIGKILL)
        hosts[victim]!.waitUntilExit()
        let killedAt = Date()
        try await waitUntil("node-c's partitions have new owners", seconds: 30) {
            let now = try await self.partitionOwners("sequencer")
            return lost.allSatisfy { now[$0] != nil && now[$0] != victim }
        }
        let takeover = Date().timeIntervalSince(killedAt)
        let bound = Double(PluginHost.leaseTTLMs + PluginHost.partitionStepIntervalMs) / 1000 + 1
        XCTAssertLessThanOrEqual(takeover, bound, "partitions taken over after \(takeover) s")

        hosts["node-d"] = try await spawnHost("node-d", plugins: ["sequencer": [:]],
                                              environment: ["QT_JOURNAL": scratch.appendingPathComponent("node-d.journal").path])
        let joinedAt = Date()
        try await waitUntil("node-d owns partitions", seconds: 30) {
            try await self.partitionOwners("sequencer").values.contains("node-d")
        }
        let joined = Date().timeIntervalSince(joinedAt)

        feeder.stop()
        let published = try await feeding.value
        try await waitUntilCounted(published)
        try await assertNoGaps()
        print("partitions: takeover after SIGKILL \(String(format: "%.1f", takeover)) s (bound \(bound) s), "
              + "a joining host owned partitions after \(String(format: "%.1f", joined)) s, \(published) bars per symbol, no gaps")
    }

    /// A host paused (SIGSTOP) for twice the lease TTL loses its partitions; after SIGCONT it
    /// handles no message and writes no key for a partition the other host took. Proved from each
    /// host's journal (partition, stream sequence, time of every message handled and key written)
    /// and from the writer of each state revision, not from deduplicated publishes.
    func testAPausedHostActsOnNothingItLost() async throws {
        let journalA = scratch.appendingPathComponent("node-a.journal").path
        let journalB = scratch.appendingPathComponent("node-b.journal").path
        let a = try await spawnHost("node-a", plugins: ["sequencer": [:]], environment: ["QT_JOURNAL": journalA])
        _ = try await spawnHost("node-b", plugins: ["sequencer": [:]], environment: ["QT_JOURNAL": journalB])
        try await waitUntilBalanced("sequencer", hosts: ["node-a", "node-b"], seconds: 40)
        let feeder = Feeder(symbols: symbols, bus: bus)
        let feeding = Task { try await feeder.run() }
        try await Task.sleep(nanoseconds: 2_000_000_000)

        kill(a.processIdentifier, SIGSTOP)
        let pausedAtMs = Self.wallMs()
        try await Task.sleep(nanoseconds: UInt64(2 * PluginHost.leaseTTLMs) * 1_000_000)
        let taken = try await partitionOwners("sequencer")
        XCTAssertEqual(Set(taken.values), ["node-b"], "node-b took every partition while node-a was paused")
        kill(a.processIdentifier, SIGCONT)
        try await Task.sleep(nanoseconds: 5_000_000_000)
        feeder.stop()
        let published = try await feeding.value
        try await waitUntilCounted(published)
        try await assertNoGaps()

        // Each partition node-b acquired after the pause began: from then until node-a acquires it
        // again (the fleet rebalances after SIGCONT), node-a handles no message and writes no key of it.
        // A handled message is judged by when node-a recorded it. A key write is judged by its
        // revision: node-a records a write when the server's answer comes in, so a write sent just
        // before SIGSTOP is recorded after SIGCONT; it acted on the partition only if its revision
        // comes after one node-b wrote to the same key.
        let recordsA = try Journal.read(journalA)
        let recordsB = try Journal.read(journalB)
        let acquiredByB = recordsB.filter { $0.kind == "acquired" && $0.wallMs >= pausedAtMs }
        XCTAssertFalse(acquiredByB.isEmpty, "node-b acquired node-a's partitions")
        var checked = 0
        var answeredAfterPause = 0
        for acquisition in acquiredByB {
            let regained = recordsA.filter { $0.kind == "acquired" && $0.partition == acquisition.partition && $0.wallMs > acquisition.wallMs }
                .map(\.wallMs).min() ?? Int64.max
            let writesByB = recordsB.filter { $0.kind == "kv" && $0.partition == acquisition.partition && $0.wallMs >= acquisition.wallMs }
            let firstRevisionByB = Dictionary(writesByB.map { ($0.key, $0.revision) }, uniquingKeysWith: min)
            let late = recordsA.filter { record in
                guard record.partition == acquisition.partition, record.wallMs >= acquisition.wallMs, record.wallMs < regained else { return false }
                if record.kind == "handled" { return true }
                guard record.kind == "kv" else { return false }
                guard let firstByB = firstRevisionByB[record.key] else { return true }
                if record.revision > firstByB { return true }
                answeredAfterPause += 1
                return false
            }
            XCTAssertEqual(late.count, 0, "node-a acted on p\(acquisition.partition) while node-b held it: \(late.prefix(3))")
            checked += recordsB.filter { $0.kind == "handled" && $0.partition == acquisition.partition && $0.wallMs >= acquisition.wallMs }.count
        }
        XCTAssertTrue(recordsA.contains { $0.kind == "lost" && $0.wallMs >= pausedAtMs }, "node-a noticed it lost its partitions")
        print("paused host: \(acquiredByB.count) partitions taken over, \(checked) messages handled by node-b after takeover, "
              + "0 by node-a (\(answeredAfterPause) key writes sent before the pause, answered after it); "
            + "\(recordsA.filter { $0.kind == "lost" }.count) partitions noticed lost on SIGCONT")
    }

    /// Bars that fail once and are retried (NAK with back-off) keep their place: the bars NAKed
    /// behind one, and fresh bars fetched while those wait out their delays, are handled after it.
    /// Two hosts, every tenth bar of every symbol failing on its first delivery.
    func testRetriedBarsAreNotOvertakenByLaterOnes() async throws {
        for name in ["node-a", "node-b"] {
            _ = try await spawnHost(name, plugins: ["sequencer": ["fail_every": "10"]])
        }
        try await waitUntilBalanced("sequencer", hosts: ["node-a", "node-b"], seconds: 40)
        let feeder = Feeder(symbols: symbols, bus: bus)
        let feeding = Task { try await feeder.run() }
        try await Task.sleep(nanoseconds: 6_000_000_000)
        feeder.stop()
        let published = try await feeding.value
        try await waitUntilCounted(published)
        try await assertNoGaps()
        let retries = ["node-a", "node-b"].map { log(of: $0).components(separatedBy: "fails on its first delivery").count - 1 }.reduce(0, +)
        XCTAssertGreaterThanOrEqual(retries, symbols.count * (published / 10) / 2, "the bars meant to fail were retried")
        print("retries: \(published) bars per symbol, \(retries) first deliveries failed and retried, no gaps")
    }

    func testAHostRefusesAServerThatIsNotProvisionedForIt() async throws {
        let fresh = try NatsServer()
        defer { fresh.stop() }
        let yaml = "host_id: node-x\nnats: { servers: [\(fresh.url)] }\nhttp_port: 0\nplugins:\n  sequencer: {}\n"
        let config = try NodeConfig.parse(yaml, file: "node-x.yaml", registry: TestPlugins.registry)
        do {
            try await PluginHost(config: config, registry: TestPlugins.registry).start()
            XCTFail("an unprovisioned server must be refused")
        } catch {
            XCTAssertTrue("\(error)".contains("qt_cluster/layout is missing"), "\(error)")
            XCTAssertTrue("\(error)".contains("qt streams provision"), "\(error)")
        }
        let streams = try await BusConnection(ConnectionOptions(servers: [fresh.url], name: "check")).streams()
        XCTAssertEqual(streams.count, 0, "the host created nothing")

        // Provisioned with R1 while the node expects R3: refused, naming what differs.
        let three = yaml.replacingOccurrences(of: "http_port: 0", with: "http_port: 0\nreplicas: 3")
        let threeConfig = try NodeConfig.parse(three, file: "node-x.yaml", registry: TestPlugins.registry)
        let admin = try BusConnection(ConnectionOptions(servers: [fresh.url], name: "admin"))
        defer { admin.close() }
        _ = try await DeploymentProvisioning.provision(admin, replicas: 1, configs: [config], registry: TestPlugins.registry)
        do {
            try await PluginHost(config: threeConfig, registry: TestPlugins.registry).start()
            XCTFail("R1 where the node expects R3 must be refused")
        } catch {
            XCTAssertTrue("\(error)".contains("stream QT_MARKET has 1 replicas, expected 3"), "\(error)")
            XCTAssertTrue("\(error)".contains("bucket qt_ledger has 1 replicas, expected 3"), "\(error)")
        }
    }

    /// Two hosts whose node configs want different consumer settings: the second refuses to start,
    /// and neither changes a stream, bucket or consumer.
    func testHostsWithDifferentSettingsChangeNothing() async throws {
        _ = try await startHost("node-a", plugins: ["sequencer": [:]])
        let streamsBefore = try await bus.streams()
        let consumersBefore = try await bus.streamInfo("QT_MARKET").consumers.map { [$0.name, $0.filterSubject, String($0.ackWaitMs)] }
        let yaml = configYAML(host: "node-b", plugins: ["sequencer": ["ack_wait_s": "9"]])
        let config = try NodeConfig.parse(yaml, file: "node-b.yaml", registry: TestPlugins.registry)
        do {
            try await PluginHost(config: config, registry: TestPlugins.registry).start()
            XCTFail("a host whose AckWait differs from the provisioned durable must refuse to start")
        } catch {
            XCTAssertTrue("\(error)".contains("durable QT_MARKET/sequencer__klines__p0 has AckWait 2000 ms, expected 9000 ms"), "\(error)")
        }
        let streamsAfter = try await bus.streams()
        XCTAssertEqual(streamsAfter.map(\.name), streamsBefore.map(\.name))
        XCTAssertEqual(streamsAfter.map(\.subjects), streamsBefore.map(\.subjects))
        XCTAssertEqual(streamsAfter.map(\.replicas), streamsBefore.map(\.replicas))
        XCTAssertEqual(streamsAfter.map(\.maxAgeSeconds), streamsBefore.map(\.maxAgeSeconds))
        let consumersAfter = try await bus.streamInfo("QT_MARKET").consumers.map { [$0.name, $0.filterSubject, String($0.ackWaitMs)] }
        XCTAssertEqual(consumersAfter, consumersBefore)
    }

    // MARK: - helpers

    private func waitUntilCounted(_ bars: Int) async throws {
        let states = try await bus.keyValue("qt_state")
        try await waitUntil("every symbol counted to bar \(bars - 1)", seconds: 90) {
            for symbol in self.symbols {
                guard try await states.get(PluginState.self, "sequencer.\(symbol)")?.value.values["last"] == String(bars - 1) else { return false }
            }
            return true
        }
    }

    private func dumpJournals(_ symbol: String) {
        if let keep = ProcessInfo.processInfo.environment["QT_KEEP_JOURNALS"] {
            let target = URL(fileURLWithPath: keep).appendingPathComponent("\(name)-\(Self.wallMs())")
            try? FileManager.default.createDirectory(at: target, withIntermediateDirectories: true)
            for host in ["node-a", "node-b", "node-c", "node-d"] {
                try? FileManager.default.copyItem(at: scratch.appendingPathComponent("\(host).journal"),
                                                  to: target.appendingPathComponent("\(host).journal"))
            }
        }
        for name in ["node-a", "node-b", "node-c", "node-d"] {
            let path = scratch.appendingPathComponent("\(name).journal").path
            guard let text = try? String(contentsOfFile: path, encoding: .utf8) else { continue }
            for line in text.split(separator: "\n") where line.contains(symbol) || line.contains("acquired") || line.contains("released") || line.contains("lost") {
                print("JOURNAL \(name): \(line)")
            }
        }
    }

    private func assertNoGaps() async throws {
        var dumped = false
        let states = try await bus.keyValue("qt_state")
        for symbol in symbols {
            let state = try await XCTUnwrapAsync(try await states.get(PluginState.self, "sequencer.\(symbol)")).value
            XCTAssertNil(state.values["gaps"], "\(symbol): a bar was handled before the one before it")
            if state.values["gaps"] != nil, !dumped { dumped = true; dumpJournals(symbol) }
        }
    }

    static func wallMs() -> Int64 { Int64(Date().timeIntervalSince1970 * 1000) }
}

/// Publishes bar i of every symbol every 100 ms until stopped; returns how many bars each got.
private final class Feeder: Sendable {
    let symbols: [String]
    let bus: BusConnection
    private let stopped = Atomic<Bool>(false)

    init(symbols: [String], bus: BusConnection) {
        self.symbols = symbols
        self.bus = bus
    }

    func stop() { stopped.store(true, ordering: .relaxed) }

    func run() async throws -> Int {
        var index = 0
        while !stopped.load(ordering: .relaxed) {
            _ = try await bus.publishBatch(try symbols.map { try HostTestCase.indexedKline($0, index: index, id: "feed-\($0)-\(index)") })
            index += 1
            try await Task.sleep(nanoseconds: 100_000_000)
        }
        return index
    }
}

/// The host's `QT_JOURNAL` records, as the partition tests read them.
private struct Journal {
    struct Record: CustomStringConvertible {
        let kind: String
        let partition: Int
        let wallMs: Int64
        let revision: UInt64
        let key: String
        var description: String { "\(kind) p\(partition) \(key) rev \(revision) at \(wallMs)" }
    }

    static func read(_ path: String) throws -> [Record] {
        let text = try String(contentsOfFile: path, encoding: .utf8)
        return text.split(separator: "\n").compactMap { line in
            guard let object = try? JSONSerialization.jsonObject(with: Data(line.utf8)) as? [String: Any] else { return nil }
            return Record(kind: object["kind"] as? String ?? "", partition: (object["partition"] as? NSNumber)?.intValue ?? -1,
                          wallMs: (object["wall_ms"] as? NSNumber)?.int64Value ?? 0,
                          revision: (object["revision"] as? NSNumber)?.uint64Value ?? 0, key: object["key"] as? String ?? "")
        }
    }
}
