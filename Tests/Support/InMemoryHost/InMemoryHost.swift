import Foundation
import Bus
import Host
import Messages

/// A plugin host in one process for unit tests: streams and KV buckets in memory, a manual clock,
/// and the host's promises kept (see `Plugin`):
/// - inputs are delivered in order per subject, with the ids a real host gives (the input's
///   stream and sequence make the ids of what a handler emits);
/// - a handler's outputs are published only when it returns; they reach every started plugin
///   whose inputs match, so a chain of plugins runs as it would on the bus;
/// - a thrown `PluginError.permanent` or `.contract` dead-letters the input; any other error
///   redelivers it after 1 s, doubling to 30 s, on the manual clock, and the subject waits;
/// - KV writes need the bucket declared, compare-and-set conflicts throw `KVConflict`, and a
///   bucket's TTL runs on the manual clock; a write that goes out with the outputs is applied
///   when they are published, and its conflict sends the input back as a refused publish would.
/// No NATS, no threads of its own: `run()` handles what is due and returns.
public actor InMemoryHost {
    public nonisolated let clock: ManualClock
    public nonisolated let hostID: String
    /// Every bucket of the topology, empty at start.
    public nonisolated let buckets: [String: MemoryKeyValueStore]
    /// Every message published, by tests and by plugins, in order.
    public private(set) var published: [Published] = []
    public private(set) var deadLetters: [DeadLetter] = []
    /// Inputs handled again after a transient error, per plugin.
    public private(set) var retries: [String: Int] = [:]
    private var plugins: [Running] = []
    private var queue: [Delivery] = []
    private var sequences: [String: UInt64] = [:]

    public struct Published: Sendable {
        public let subject: String
        public let stream: String
        public let sequence: UInt64
        public let message: any BusMessage
        /// The manual clock when it was published: the stored time a real stream would record.
        public let storedAtMs: Int64
    }

    public struct DeadLetter: Sendable {
        public let plugin: String
        public let subject: String
        public let reason: String
    }

    private struct Running {
        let name: String
        let plugin: any Plugin
        let scope: PluginScope
    }

    private struct Delivery {
        let plugin: Int
        let input: InputSpec
        let published: Published
        var deliveryCount: UInt64
        var dueMs: Int64

        var orderKey: String { "\(plugin)|\(input.name)|\(published.subject)" }
    }

    public init(hostID: String = "memory", nowMs: Int64 = 1_800_000_000_000) {
        let clock = ManualClock(nowMs: nowMs)
        self.clock = clock
        self.hostID = hostID
        self.buckets = Dictionary(uniqueKeysWithValues: Topology.buckets.map { ($0.name, MemoryKeyValueStore(name: $0.name, clock: clock)) })
    }

    public nonisolated func kv(_ bucket: String) -> MemoryKeyValueStore {
        guard let store = buckets[bucket] else { preconditionFailure("no bucket \(bucket) in the topology") }
        return store
    }

    /// Makes the plugin with `settings` (checked as a node config's would be), prepares it, and
    /// binds its inputs. Returns the plugin, for a test that needs to call it directly.
    @discardableResult
    public func start(_ registration: PluginRegistration, settings: [String: String] = [:], shadow: Bool = false,
                      exchange: ExchangeSettings? = nil) async throws -> any Plugin {
        let manifest = registration.manifest
        var yaml = settings.sorted { $0.key < $1.key }.map { "\($0.key): \($0.value)" }
        if shadow { yaml.append("shadow: true") }
        let checked = try NodeConfig.settings(yaml.joined(separator: "\n"), for: manifest, file: "in-memory \(manifest.name)")
        let plugin = try registration.make(PluginSetup(hostID: hostID, settings: checked, exchange: exchange, clock: clock))
        try await plugin.prepare()
        let scope = PluginScope(manifest: manifest, settings: checked, hostID: hostID, metrics: HostMetrics(hostID: hostID).plugin(manifest.name),
                                backend: MemoryBackend(host: self), clock: clock)
        plugins.append(Running(name: manifest.name, plugin: plugin, scope: scope))
        return plugin
    }

    /// Publishes `message` as a producer outside the host would: `Meta` stamped, the subject
    /// checked against the topology (R1). Nothing is handled until `run()`.
    public func publish<M: BusMessage>(_ message: M, subject: String, id: String? = nil, producer: String = "test") throws {
        guard let route = Topology.route(for: subject) else { throw PluginError.contract("no stream carries \(subject)") }
        guard route.messageType == M.self else {
            throw PluginError.contract("\(subject) carries \(route.messageType.protoMessageName), not \(M.protoMessageName)")
        }
        var stamped = message
        stamped.meta.id = id ?? UUID().uuidString
        stamped.meta.producer = producer
        if stamped.meta.traceID.isEmpty { stamped.meta.traceID = stamped.meta.id }
        append(stamped, subject: subject, stream: route.stream)
    }

    /// Handles every delivery that is due, and what those handlers emit, until nothing is due.
    public func run() async {
        while let index = nextDue() {
            let delivery = queue.remove(at: index)
            await handle(delivery)
        }
    }

    /// Moves the clock on and handles what becomes due (redeliveries after a transient error).
    public func advance(byMs milliseconds: Int64) async {
        clock.advance(byMs: milliseconds)
        await run()
    }

    /// Fires `timer` of `plugin` once, as a host would when it is due (event time: now), and
    /// publishes what it emitted.
    public func tick(_ plugin: String, _ timer: String) async throws {
        guard let running = plugins.first(where: { $0.name == plugin }) else { throw PluginError.contract("\(plugin) is not started") }
        let context = HandlerContext(scope: running.scope, eventTimeMs: clock.nowMs(), cause: nil)
        try await running.plugin.tick(timer, context: context)
        try await context.publishNow()
        await run()
    }

    /// Messages of type `M` published on subjects matching `pattern`, in order.
    public func messages<M: BusMessage>(_ type: M.Type, on pattern: String) -> [M] {
        let filter = SubjectPattern(pattern)
        return published.filter { filter.matches($0.subject) }.compactMap { $0.message as? M }
    }

    /// The decisions `plugin` recorded, for `symbol` or for every symbol.
    public func decisions(_ plugin: String, symbol: String = "*") -> [Decision] {
        messages(Decision.self, on: Subjects.decision(plugin: plugin, symbol: symbol))
    }

    /// Inputs not handled yet (waiting out a retry, or behind one on their subject).
    public var pending: Int { queue.count }

    /// Publishes in order; a KV write among them (`updateWithOutputs`) is applied to its bucket
    /// at that point, and its conflict throws as a refused PubAck would. Returns each one's
    /// sequence (a write's: the key's revision).
    @discardableResult
    func publish(_ emissions: [Emission]) throws -> [UInt64] {
        var sequences: [UInt64] = []
        for emission in emissions {
            if let write = emission.keyValueWrite {
                sequences.append(try kv(write.bucket).apply(write, value: emission.payload))
                continue
            }
            guard let route = Topology.route(for: emission.subject) else { throw PluginError.contract("no stream carries \(emission.subject)") }
            sequences.append(append(try emission.message(), subject: emission.subject, stream: route.stream))
        }
        return sequences
    }

    @discardableResult
    private func append(_ message: any BusMessage, subject: String, stream: String) -> UInt64 {
        let sequence = (sequences[stream] ?? 0) + 1
        sequences[stream] = sequence
        let entry = Published(subject: subject, stream: stream, sequence: sequence, message: message, storedAtMs: clock.nowMs())
        published.append(entry)
        for (index, running) in plugins.enumerated() {
            for input in running.scope.manifest.inputs where SubjectPattern(input.subject).matches(subject) {
                queue.append(Delivery(plugin: index, input: input, published: entry, deliveryCount: 1, dueMs: clock.nowMs()))
            }
        }
        return sequence
    }

    /// The first delivery that is due and has no earlier delivery of its subject still queued.
    private func nextDue() -> Int? {
        var waiting: Set<String> = []
        let now = clock.nowMs()
        for (index, delivery) in queue.enumerated() {
            guard !waiting.contains(delivery.orderKey) else { continue }
            if delivery.dueMs <= now { return index }
            waiting.insert(delivery.orderKey)
        }
        return nil
    }

    private func handle(_ delivery: Delivery) async {
        let running = plugins[delivery.plugin]
        let meta = delivery.published.message.meta
        let context = HandlerContext(scope: running.scope, eventTimeMs: meta.eventTimeMs, cause: (meta.id, meta.traceID),
                                     causeStream: delivery.published.stream, causeSequence: delivery.published.sequence)
        let input = Input(name: delivery.input.name, subject: delivery.published.subject, message: delivery.published.message,
                          streamSequence: delivery.published.sequence, deliveryCount: delivery.deliveryCount,
                          storedAtMs: delivery.published.storedAtMs)
        // What the real consumer refuses before a handler sees it (R2 and the field rules).
        if let problem = UnreadableValue.problem(delivery.published.message) {
            deadLetters.append(DeadLetter(plugin: running.name, subject: delivery.published.subject, reason: problem))
            return
        }
        do {
            try await running.plugin.handle(input, context: context)
            context.outputsStored(at: try publish(context.emissions))
        } catch let error as PluginError where error.isPermanent {
            deadLetters.append(DeadLetter(plugin: running.name, subject: delivery.published.subject, reason: error.description))
        } catch {
            retries[running.name, default: 0] += 1
            var again = delivery
            again.deliveryCount += 1
            again.dueMs = clock.nowMs() + min(30_000, 1_000 << min(5, delivery.deliveryCount - 1))
            queue.insert(again, at: 0)
        }
    }
}

extension PluginError {
    /// What a host dead-letters rather than retries.
    var isPermanent: Bool {
        if case .transient = self { return false }
        return true
    }
}

/// The in-memory host as a plugin's context sees it.
struct MemoryBackend: PluginBackend {
    let host: InMemoryHost

    func store(_ bucket: String) async throws -> any KeyValueStore {
        guard let store = host.buckets[bucket] else { throw PluginError.contract("no bucket \(bucket) in the topology") }
        return store
    }

    func publishNow(_ emissions: [Emission]) async throws -> [UInt64] { try await host.publish(emissions) }

    func observeFleet() async throws -> FleetObservation {
        throw PluginError.transient("the in-memory host has no fleet to observe; test watchdogs on a real host")
    }
}
