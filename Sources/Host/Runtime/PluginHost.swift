import Bus
import Foundation
import Identity
import Messages

/// The plugin host: binds each configured plugin's inputs to durable consumers, runs its
/// timers (singletons under a lease), heartbeats `HostInfo` to `qt_hosts`, serves
/// `/healthz /readyz /metrics`, and drains cleanly on `shutdown()`.
public final class PluginHost: @unchecked Sendable {
    public let config: NodeConfig
    public let metrics = HostMetrics()
    private let registry: PluginRegistry
    private let lock = NSLock()
    private var bus: BusConnection?
    private var bindings: [PluginBinding] = []
    private var stoppers: [@Sendable () -> Void] = []
    private var inputTasks: [Task<Void, Never>] = []
    private var backgroundTasks: [Task<Void, Never>] = []
    private var leases: [LeaseKeeper] = []
    private var statusServer: StatusServer?
    private var ready = false
    private var draining = false
    private let startedAtMs = Int64(Date().timeIntervalSince1970 * 1000)

    /// Renewal period of singleton leases: a third of the `qt_leases` TTL.
    public static let leaseRenewIntervalMs: Int64 = 5_000
    public static let heartbeatIntervalMs: Int64 = 10_000

    public init(config: NodeConfig, registry: PluginRegistry) {
        self.config = config
        self.registry = registry
    }

    public var hostID: String { config.hostID }
    public var httpPort: Int? { lock.withLock { statusServer?.port } }

    /// Connects, provisions, binds every plugin and starts its loops. Returns once running.
    public func start() async throws {
        let bus = try BusConnection(config.nats)
        lock.withLock { self.bus = bus }
        _ = try await bus.provision(replicas: config.replicas)
        let server = try StatusServer(port: config.httpPort) { [weak self] path in
            self?.respond(path) ?? (503, "text/plain", "stopping\n")
        }
        lock.withLock { statusServer = server }

        for entry in config.plugins {
            guard let registration = registry[entry.name] else {
                throw HostError.startup("plugin \(entry.name) is not registered")
            }
            try Self.checkOutputs(registration.manifest)
            let plugin = try registration.make(PluginSetup(hostID: hostID, settings: entry.settings, exchange: config.exchange))
            do {
                try await plugin.prepare()
            } catch {
                throw HostError.startup("plugin \(entry.name) refused to start: \(error)")
            }
            let binding = PluginBinding(manifest: registration.manifest, settings: entry.settings, plugin: plugin,
                                        hostID: hostID, bus: bus, metrics: metrics.plugin(entry.name))
            lock.withLock { bindings.append(binding) }
            for input in registration.manifest.inputs {
                try await startInput(input, binding: binding, bus: bus)
            }
            try await startTimers(binding, bus: bus)
        }
        try await heartbeat(bus)
        startBackground { [weak self] in
            while let self, !self.isDraining {
                try? await Task.sleep(nanoseconds: UInt64(PluginHost.heartbeatIntervalMs) * 1_000_000)
                try? await self.heartbeat(bus)
            }
        }
        await checkTopologyAtStart(bus)
        lock.withLock { ready = true }
    }

    private var isDraining: Bool { lock.withLock { draining } }

    /// A manifest whose output is on a subject no stream owns, or that the topology registers for
    /// another type, is refused at start rather than at the first emit (R1).
    static func checkOutputs(_ manifest: PluginManifest) throws {
        for output in manifest.outputs {
            guard let route = Topology.route(forFilter: output.subject) else {
                throw HostError.startup("plugin \(manifest.name) output \(output.name): no stream owns \(output.subject)")
            }
            guard route.messageType == output.type else {
                throw HostError.startup("plugin \(manifest.name) output \(output.name): \(output.subject) carries "
                                        + "\(route.typeName), not \(output.type.protoMessageName)")
            }
        }
    }

    private func startInput(_ input: InputSpec, binding: PluginBinding, bus: BusConnection) async throws {
        var spec = try ConsumerSpec(plugin: binding.manifest.name, input: input.name, filterSubject: input.subject)
        spec.ackWaitMs = binding.settings.ackWaitMs ?? input.ackWaitMs
        spec.fetchBatch = input.fetchBatch
        spec.prefetch = input.prefetch
        try await bus.ensureConsumer(spec)
        try bind(input.type, spec: spec, input: input, binding: binding, bus: bus)
    }

    /// Opens the input's message type so the consumer decodes exactly that type.
    private func bind<M: BusMessage>(_ type: M.Type, spec: ConsumerSpec, input: InputSpec, binding: PluginBinding,
                                     bus: BusConnection) throws {
        let consumer = try bus.consume(M.self, spec: spec, producer: binding.producer)
        let loop = InputLoop(binding: binding, spec: input, consumer: consumer)
        lock.withLock {
            stoppers.append { loop.stop() }
            inputTasks.append(Task.detached { await loop.run() })
        }
    }

    private func startTimers(_ binding: PluginBinding, bus: BusConnection) async throws {
        let timers = binding.manifest.timers
        guard !timers.isEmpty else { return }
        var lease: LeaseKeeper?
        if timers.contains(where: \.singleton) {
            let keeper = LeaseKeeper(name: binding.manifest.name, hostID: hostID, bucket: try await bus.keyValue("qt_leases"),
                                     renewIntervalMs: PluginHost.leaseRenewIntervalMs)
            lease = keeper
            lock.withLock { leases.append(keeper) }
            startBackground { [weak self] in
                while let self, !self.isDraining {
                    await keeper.step(nowMs: Self.wallClockMs())
                    try? await Task.sleep(nanoseconds: UInt64(keeper.renewIntervalMs) * 1_000_000)
                }
            }
        }
        for timer in timers {
            let gate = timer.singleton ? lease : nil
            let intervalMs = timer.interval(in: binding.settings)
            startBackground { [weak self] in
                // A startup tick waits a moment for the lease keeper's first step.
                var due = Self.wallClockMs() + (timer.firesAtStart ? min(intervalMs, Self.startupTickDelayMs) : intervalMs)
                while let self, !self.isDraining {
                    let wait = max(0, due - Self.wallClockMs())
                    try? await Task.sleep(nanoseconds: UInt64(wait) * 1_000_000)
                    if self.isDraining { return }
                    if gate?.isHeld ?? true { await self.tick(timer, binding: binding, dueMs: due) }
                    due += intervalMs
                    if due < Self.wallClockMs() { due = Self.wallClockMs() + intervalMs }
                }
            }
        }
    }

    static let startupTickDelayMs: Int64 = 1_000

    private func tick(_ timer: TimerSpec, binding: PluginBinding, dueMs: Int64) async {
        let context = HandlerContext(binding: binding, eventTimeMs: dueMs, cause: nil, causeStream: "", causeSequence: 0)
        binding.metrics.timerTicks.increment()
        do {
            try await binding.plugin.tick(timer.name, context: context)
            try await context.publishNow()
        } catch {
            binding.metrics.errors.increment()
            FileHandle.standardError.write(Data("qt host \(hostID): \(binding.manifest.name) timer \(timer.name): \(error)\n".utf8))
        }
    }

    private func startBackground(_ body: @escaping @Sendable () async -> Void) {
        lock.withLock { backgroundTasks.append(Task.detached { await body() }) }
    }

    /// `HostInfo` with every plugin's manifest, renewed before the `qt_hosts` TTL (30 s) runs out.
    func hostInfo() -> HostInfo {
        var info = HostInfo()
        info.hostID = hostID
        info.plugins = lock.withLock { bindings.map { $0.manifest.message(shadow: $0.settings.shadow) } }
        info.schemaFingerprint = SchemaFingerprint.value
        info.typeFingerprints = SchemaFingerprint.types
        info.startedAtMs = startedAtMs
        info.heartbeatAtMs = Self.wallClockMs()
        info.version = "qt-host/1"
        return info
    }

    private func heartbeat(_ bus: BusConnection) async throws {
        try await bus.keyValue("qt_hosts").put(hostID, message: hostInfo())
    }

    /// At start the host warns (stderr and an `Alert`) about gaps in the fleet's graph (R3); it
    /// still starts, since its peers may simply not be up yet. `qt topology check` is the gate.
    private func checkTopologyAtStart(_ bus: BusConnection) async {
        guard let fleet = try? await FleetReader.read(bus) else { return }
        for problem in TopologyCheck.problems(in: fleet) {
            FileHandle.standardError.write(Data("qt host \(hostID): topology: \(problem)\n".utf8))
            var alert = Alert()
            alert.kind = .topology
            alert.severity = .warning
            alert.subject = problem.subject
            alert.message = problem.description
            alert.meta.eventTimeMs = startedAtMs
            let id = ContentID.hash("host", hostID, "topology", String(startedAtMs), problem.description)
            _ = try? await bus.publish(OutgoingMessage(alert, subject: Subjects.alert(.topology), id: id, producer: "host@\(hostID)"))
        }
    }

    private func respond(_ path: String) -> (Int, String, String) {
        switch path {
        case "/healthz":
            let connected = lock.withLock { bus?.isConnected ?? false }
            return connected ? (200, "text/plain", "ok\n") : (503, "text/plain", "NATS disconnected\n")
        case "/readyz":
            let state = lock.withLock { (ready, draining) }
            return state.0 && !state.1 ? (200, "text/plain", "ready\n") : (503, "text/plain", state.1 ? "draining\n" : "starting\n")
        case "/metrics":
            return (200, "text/plain; version=0.0.4", metrics.render(hostID: hostID))
        default:
            return (404, "text/plain", "try /healthz, /readyz or /metrics\n")
        }
    }

    /// SIGTERM/SIGINT: stop fetching; handlers in flight finish, publish and ack; fetched
    /// messages not yet started are NAKed so another host takes them at once; leases released;
    /// the connection closed last.
    public func shutdown() async {
        let (stops, inputs, background, held) = lock.withLock {
            draining = true
            return (stoppers, inputTasks, backgroundTasks, leases)
        }
        stops.forEach { $0() }
        for task in inputs { await task.value }
        background.forEach { $0.cancel() }
        // A timer tick in progress (an exchange poll, KV writes) finishes before the connection
        // it uses is closed: closing under it is a use-after-free inside libnats.
        for task in background { await task.value }
        for lease in held { await lease.release() }
        let (bus, server) = lock.withLock { (self.bus, statusServer) }
        if let bus { try? await bus.keyValue("qt_hosts").delete(hostID) }
        server?.stop()
        bus?.close()
    }

    static func wallClockMs() -> Int64 { Int64(Date().timeIntervalSince1970 * 1000) }
}
