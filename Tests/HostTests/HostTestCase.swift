import Bus
import Foundation
#if canImport(FoundationNetworking)
import FoundationNetworking
#endif
import Host
import Messages
import NatsServerKit
import Plugins
import TestPlugins
import XCTest

/// A real nats-server per test, a provisioned Bus connection, and helpers to run hosts either
/// in this process (to read their metrics) or as `qt-test-host` child processes (to kill them).
class HostTestCase: XCTestCase {
    var server: NatsServer!
    var bus: BusConnection!
    private var children: [Process] = []
    private var inProcess: [PluginHost] = []
    var scratch: URL!

    override func setUp() async throws {
        server = try NatsServer()
        bus = try BusConnection(ConnectionOptions(servers: [server.url], name: "host-tests"))
        _ = try await bus.provision()
        scratch = FileManager.default.temporaryDirectory.appendingPathComponent("qt-host-test-\(UUID().uuidString.prefix(8))")
        try FileManager.default.createDirectory(at: scratch, withIntermediateDirectories: true)
    }

    override func tearDown() async throws {
        for child in children where child.isRunning { kill(child.processIdentifier, SIGKILL); child.waitUntilExit() }
        for host in inProcess { await host.shutdown() }
        children = []
        inProcess = []
        bus?.close()
        server?.stop()
        // XCTest keeps every test case object to the end of the run: released here, the server's
        // temporary store is removed now rather than never.
        server = nil
        try? FileManager.default.removeItem(at: scratch)
    }

    func configYAML(host: String, plugins: [String: [String: String]], httpPort: Int = 0, exchange: String? = nil) -> String {
        var yaml = "host_id: \(host)\nnats:\n  servers: [\(server.url)]\nhttp_port: \(httpPort)\n"
        if let exchange { yaml += "exchange: \(exchange)\n" }
        yaml += "plugins:\n"
        for (name, settings) in plugins.sorted(by: { $0.key < $1.key }) {
            if settings.isEmpty {
                yaml += "  \(name): {}\n"
            } else {
                yaml += "  \(name): { " + settings.sorted { $0.key < $1.key }.map { "\($0.key): \($0.value)" }.joined(separator: ", ") + " }\n"
            }
        }
        return yaml
    }

    func startHost(_ host: String, plugins: [String: [String: String]], registry: PluginRegistry = TestPlugins.registry,
                   exchange: String? = nil) async throws -> PluginHost {
        let config = try NodeConfig.parse(configYAML(host: host, plugins: plugins, exchange: exchange), file: "\(host).yaml",
                                          registry: registry)
        try await provision(for: config, registry: registry)
        let running = PluginHost(config: config, registry: registry)
        try await running.start()
        inProcess.append(running)
        return running
    }

    func stopHost(_ host: PluginHost) async {
        await host.shutdown()
        inProcess.removeAll { $0 === host }
    }

    /// What an administrator does before hosts start: streams, buckets, the layout and the
    /// durables of this node's plugins, with its settings (hosts only check).
    func provision(for config: NodeConfig, registry: PluginRegistry, partitions: Int = Partitioning.defaultCount) async throws {
        _ = try await DeploymentProvisioning.provision(bus, replicas: config.replicas, partitions: partitions, configs: [config],
                                                       registry: registry, provisionedBy: "host-tests")
    }

    /// Starts `qt-test-host` with a config file; its stderr goes to `<scratch>/<host>.log`.
    func spawnHost(_ host: String, plugins: [String: [String: String]], environment: [String: String] = [:]) async throws -> Process {
        let yaml = configYAML(host: host, plugins: plugins)
        try await provision(for: try NodeConfig.parse(yaml, file: "\(host).yaml", registry: TestPlugins.registry), registry: TestPlugins.registry)
        return try spawn(host, yaml: yaml, executable: "qt-test-host", environment: environment) { [$0] }
    }

    /// Starts a host of the built-in plugins in a child process, with extra environment variables.
    func spawnQTHost(_ host: String, plugins: [String: [String: String]], exchange: String?, environment: [String: String] = [:]) async throws -> Process {
        let yaml = configYAML(host: host, plugins: plugins, exchange: exchange)
        try await provision(for: try NodeConfig.parse(yaml, file: "\(host).yaml", registry: PluginCatalog.registry),
                            registry: PluginCatalog.registry)
        // The built-in plugins as `qt host` runs them, plus the executor's crash hook (QT_CRASH_AT).
        return try spawn(host, yaml: yaml, executable: "qt-test-host", environment: environment) { ["--catalog", $0] }
    }

    func spawn(_ host: String, yaml: String, executable: String, environment: [String: String] = [:],
                       arguments: (String) -> [String]) throws -> Process {
        let configURL = scratch.appendingPathComponent("\(host).yaml")
        try yaml.write(to: configURL, atomically: true, encoding: .utf8)
        let process = Process()
        process.executableURL = try binary(executable)
        process.arguments = arguments(configURL.path)
        process.environment = ProcessInfo.processInfo.environment.merging(environment) { $1 }
        let log = scratch.appendingPathComponent("\(host).log")
        FileManager.default.createFile(atPath: log.path, contents: nil)
        let handle = try FileHandle(forWritingTo: log)
        _ = try? handle.seekToEnd()
        process.standardError = handle
        process.standardOutput = FileHandle.nullDevice
        try process.run()
        children.append(process)
        return process
    }

    /// One GET on a host's status server.
    func httpGet(port: Int, path: String) async throws -> (status: Int, body: String) {
        let url = try XCTUnwrap(URL(string: "http://127.0.0.1:\(port)\(path)"))
        let (data, response) = try await URLSession.shared.data(from: url)
        return ((response as? HTTPURLResponse)?.statusCode ?? 0, String(decoding: data, as: UTF8.self))
    }

    func log(of host: String) -> String {
        (try? String(contentsOf: scratch.appendingPathComponent("\(host).log"), encoding: .utf8)) ?? ""
    }

    /// What to show when a host process ended badly: its crash report from the crash line on
    /// (the crashed thread's frames come first), else the end of its log.
    func exitReport(of host: String) -> String {
        let text = log(of: host)
        if let crash = text.range(of: "*** Program crashed") {
            let report = text[crash.lowerBound...]
            let crashed = report.range(of: " crashed:\n").map { String(report[$0.lowerBound...].prefix(2_500)) } ?? ""
            return String(report.prefix(300)) + "\n…\n" + crashed
        }
        return String(text.suffix(1_500))
    }

    func binary(_ name: String) throws -> URL {
        let directory = URL(fileURLWithPath: CommandLine.arguments[0]).deletingLastPathComponent()
        let candidates = [directory.appendingPathComponent(name),
                          Bundle(for: HostTestCase.self).bundleURL.deletingLastPathComponent().appendingPathComponent(name)]
        return try XCTUnwrap(candidates.first { FileManager.default.isExecutableFile(atPath: $0.path) }, "\(name) not built")
    }

    /// Partition → holder of `instance`'s partition leases now (released ones left out).
    func partitionOwners(_ instance: String) async throws -> [Int: String] {
        let leases = try await bus.keyValue("qt_leases")
        var owners: [Int: String] = [:]
        for key in try await leases.keys() where key.hasPrefix("\(instance).p") {
            guard let partition = Int(key.dropFirst("\(instance).p".count)),
                  let lease = try await leases.get(Lease.self, key)?.value, !lease.released else { continue }
            owners[partition] = lease.holder
        }
        return owners
    }

    /// Waits until every partition of `instance` has an owner and each of `hosts` owns its fair share.
    func waitUntilBalanced(_ instance: String, hosts: [String], partitions: Int = Partitioning.defaultCount, seconds: Double = 30) async throws {
        let share = (partitions + hosts.count - 1) / hosts.count
        try await waitUntil("\(instance) balanced over \(hosts)", seconds: seconds) {
            let owners = try await self.partitionOwners(instance)
            let counts = Dictionary(grouping: owners.values, by: { $0 }).mapValues(\.count)
            return owners.count == partitions && Set(counts.keys) == Set(hosts) && counts.values.allSatisfy { $0 <= share }
        }
    }

    /// `count` klines on each of `symbols`, interleaved (bar i of every symbol, then bar i + 1),
    /// with the bar index in `close`.
    func publishKlines(_ count: Int, symbols: [String], startingAt first: Int = 0, prefix: String = "k") async throws -> [String] {
        var ids: [String] = []
        for start in stride(from: first, to: first + count, by: 50) {
            var batch: [OutgoingMessage] = []
            for index in start..<min(first + count, start + 50) {
                for symbol in symbols { batch.append(try Self.indexedKline(symbol, index: index, id: "\(prefix)-\(symbol)-\(index)")) }
            }
            _ = try await bus.publishBatch(batch)
            ids += batch.map(\.id)
        }
        return ids
    }

    /// Bar `index` of `symbol`, its index in `close` (so a test can follow each one), one minute apart.
    static func indexedKline(_ symbol: String, index: Int, id: String) throws -> OutgoingMessage {
        var bar = Kline()
        bar.symbol = symbol
        bar.close = String(index)
        bar.closeTimeMs = Int64(index) * 60_000 + 59_999
        bar.meta.eventTimeMs = bar.closeTimeMs
        return try OutgoingMessage(bar, subject: Subjects.kline(symbol), id: id, producer: "test@host-tests")
    }

    func publishKlines(_ count: Int, symbol: String = "BTCUSDT", prefix: String = "k") async throws -> [String] {
        var ids: [String] = []
        for start in stride(from: 0, to: count, by: 500) {
            let batch = try (start..<min(count, start + 500)).map { try Self.indexedKline(symbol, index: $0, id: "\(prefix)-\($0)") }
            _ = try await bus.publishBatch(batch)
            ids += batch.map(\.id)
        }
        return ids
    }

    /// Reads every message of a subject through a throwaway durable.
    func readAll<M: BusMessage>(_ type: M.Type, subject: String, expected: Int, seconds: Double = 30) async throws -> [M] {
        try await read(type, subject: subject, seconds: seconds) { $0.count >= expected }
    }

    /// Reads a subject from its start through a throwaway durable until `done` holds for what
    /// was read, or `seconds` pass (then returns what it has).
    func read<M: BusMessage>(_ type: M.Type, subject: String, seconds: Double, until done: ([M]) -> Bool) async throws -> [M] {
        let spec = try ConsumerSpec(durable: "reader_\(UUID().uuidString.prefix(8))", filterSubject: subject)
        try await bus.ensureConsumer(spec)
        let consumer = try bus.consume(M.self, spec: spec, producer: "reader@host-tests")
        // A fetch waits for messages; stopping the consumer at the deadline ends that wait.
        let timeout = Task { try await Task.sleep(nanoseconds: UInt64(seconds * 1e9)); consumer.stop() }
        var result: [M] = []
        var iterator = consumer.makeAsyncIterator()
        do {
            while !done(result) {
                guard let delivery = try await iterator.next() else { break }
                try delivery.ack()
                result.append(delivery.message)
            }
        } catch {
            timeout.cancel()
            consumer.stop()
            try? await bus.deleteConsumer(stream: spec.stream, durable: spec.durable)
            throw error
        }
        timeout.cancel()
        consumer.stop()
        try await bus.deleteConsumer(stream: spec.stream, durable: spec.durable)
        return result
    }

    /// How many stored messages match `subject` (a fresh durable's pending count).
    func count(_ subject: String) async throws -> UInt64 {
        try await storedCount(subject, bus: bus)
    }

    func messages(in stream: String) async throws -> UInt64 {
        try await bus.streamInfo(stream).messages
    }

    func waitUntil(_ what: String, seconds: Double, _ condition: () async throws -> Bool) async throws {
        let deadline = Date().addingTimeInterval(seconds)
        while Date() < deadline {
            if try await condition() { return }
            try await Task.sleep(nanoseconds: 100_000_000)
        }
        XCTFail("not reached within \(seconds) s: \(what)")
        throw CancellationError()
    }
}

/// How many stored messages match `subject` (a fresh durable's pending count).
func storedCount(_ subject: String, bus: BusConnection) async throws -> UInt64 {
    let spec = try ConsumerSpec(durable: "count_\(UUID().uuidString.prefix(8))", filterSubject: subject)
    try await bus.ensureConsumer(spec)
    defer { Task { try? await bus.deleteConsumer(stream: spec.stream, durable: spec.durable) } }
    return try await bus.consumerInfo(stream: spec.stream, durable: spec.durable).numPending
}

/// Every message stored on `subject` now, read through a throwaway durable, deleted after the
/// read: tests that poll with it would otherwise leave hundreds of consumers behind, each of which
/// the sentinel lists and the server keeps pending counts for.
func storedMessages<M: BusMessage>(_ type: M.Type, subject: String, bus: BusConnection) async throws -> [M] {
    let spec = try ConsumerSpec(durable: "reader_\(UUID().uuidString.prefix(8))", filterSubject: subject)
    try await bus.ensureConsumer(spec)
    // The count comes before the first pull: the pending count drops as messages are delivered.
    let expected: UInt64
    do {
        expected = try await bus.consumerInfo(stream: spec.stream, durable: spec.durable).numPending
    } catch {
        try? await bus.deleteConsumer(stream: spec.stream, durable: spec.durable)
        throw error
    }
    let consumer = try bus.consume(M.self, spec: spec, producer: "reader@tests")
    var result: [M] = []
    do {
        // Messages that break the rules (a hostile producer's) are dead-lettered by this reader too:
        // they count as read, or the loop would wait for them forever.
        while result.count + consumer.deadLettered < expected {
            let batch = try await consumer.nextBatch()
            if batch.isEmpty { break }
            for delivery in batch {
                try delivery.ack()
                result.append(delivery.message)
            }
        }
    } catch {
        consumer.stop()
        try? await bus.deleteConsumer(stream: spec.stream, durable: spec.durable)
        throw error
    }
    consumer.stop()
    try await bus.deleteConsumer(stream: spec.stream, durable: spec.durable)
    return result
}
