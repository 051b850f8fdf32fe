package import Bus
import Foundation
import Synchronization
import Logging
import Identity
import Messages

/// The plugin host: binds each configured plugin's inputs to durable consumers, runs its
/// timers (singletons under a lease), heartbeats `HostInfo` to `qt_hosts`, serves
/// `/healthz /readyz /metrics`, and drains cleanly on `shutdown()`.
public final class PluginHost: @unchecked Sendable {
    public let config: NodeConfig
    public let metrics: HostMetrics
    private let registry: PluginRegistry
    private let lock = NSLock()
    private var bus: BusConnection?
    /// One connection per plugin instance when the node config names identities (DESIGN.md §10);
    /// without identities every plugin uses the host's connection.
    private var pluginConnections: [BusConnection] = []
    private var bindings: [PluginBinding] = []
    private var stoppers: [@Sendable () -> Void] = []
    private var inputTasks: [Task<Void, Never>] = []
    private var backgroundTasks: [Task<Void, Never>] = []
    private var leases: [LeaseKeeper] = []
    private var partitionKeeper: PartitionKeeper?
    private var keeperLoop: Task<Void, Never>?
    /// The running loops of each (instance, partition) this host owns.
    private var partitionLoops: [String: [Int: [(loop: any StoppableLoop, task: Task<Void, Never>)]]] = [:]
    private let journal: HandlingJournal?
    private let logger: Logger
    /// Failures in a row per `<instance>.<timer>`, reset by a tick that succeeds.
    private let timerFailures = Mutex<[String: Int]>([:])
    /// A timer that fails this many times in a row raises an alert (and again at every multiple).
    static let timerFailuresBeforeAlert = 3
    /// One consumer per durable for the host's life, restarted when its partition comes back.
    private var consumers: [String: Any] = [:]
    /// The last loop run on each durable: a new one starts only after it has ended.
    private var lastLoops: [String: Task<Void, Never>] = [:]
    private var partitionStarts: [String: [Int: Task<Void, Never>]] = [:]
    private var statusServer: StatusServer?
    private var ready = false
    private var draining = false
    private let startedAtMs = Int64(Date().timeIntervalSince1970 * 1000)

    /// Renewal period of leases (singletons and partitions): a third of the `qt_leases` TTL.
    public static let leaseRenewIntervalMs: Int64 = 5_000
    public static let leaseTTLMs: Int64 = 15_000
    /// A lease's work stops this long before the server could expire it (see `LeaseClient`).
    public static let leaseMarginMs: Int64 = 3_000
    /// How often partition leases are renewed and rebalanced: a dead host's partitions are taken
    /// within the TTL plus this, and a joining host gets its share within about two steps.
    public static let partitionStepIntervalMs: Int64 = 2_500
    public static let heartbeatIntervalMs: Int64 = 10_000

    public init(config: NodeConfig, registry: PluginRegistry) {
        self.config = config
        self.registry = registry
        self.journal = HandlingJournal.fromEnvironment(hostID: config.hostID)
        self.logger = HostLog.logger(host: config.hostID)
        self.metrics = HostMetrics(hostID: config.hostID)
    }

    public var hostID: String { config.hostID }
    public var httpPort: Int? { lock.withLock { statusServer?.port } }

    /// Connects, checks that the server is provisioned for this node (a host creates and changes
    /// nothing), binds every plugin and starts its loops; keyed inputs run per owned partition.
    /// Returns once running.
    public func start() async throws {
        let bus = try connect(as: FleetIdentity.hostIdentity(hostID))
        lock.withLock { self.bus = bus }
        let partitioning = try await ProvisioningCheck.verify(bus, config: config, warn: { [logger] in logger.warning("\($0)") }) { [config, registry] partitioning in
            try DurablePlan.consumers(configs: [config], registry: registry, partitioning: partitioning)
        }
        try await bus.loadPartitioning()
        let server = try await StatusServer.start(address: config.httpAddress, port: config.httpPort) { [weak self] path in
            self?.respond(path) ?? (503, "text/plain", "stopping\n")
        }
        lock.withLock { statusServer = server }
        let keeper = PartitionKeeper(partitioning: partitioning, client: try await leaseClient(bus), hostID: hostID,
                                     stepIntervalMs: PluginHost.partitionStepIntervalMs)
        lock.withLock { partitionKeeper = keeper }

        for entry in config.plugins {
            guard let registration = entry.registration(in: registry) else {
                throw HostError.startup("plugin \(entry.name) is not registered")
            }
            try Self.checkOutputs(registration.manifest)
            let clock = SystemClock()
            let plugin = try registration.make(PluginSetup(hostID: hostID, settings: entry.settings, exchange: config.exchange,
                                                           clock: clock))
            do {
                try await plugin.prepare()
            } catch {
                throw HostError.startup("plugin \(entry.name) refused to start: \(error)")
            }
            let pluginBus = try await pluginConnection(DurablePlan.instanceName(plugin: entry.name, shadow: entry.settings.shadow),
                                                       hostBus: bus)
            let binding = PluginBinding(manifest: registration.manifest, settings: entry.settings, plugin: plugin,
                                        hostID: hostID, bus: pluginBus, hostBus: bus, metrics: metrics.plugin(entry.name), journal: journal,
                                        clock: clock)
            lock.withLock { bindings.append(binding) }
            for input in registration.manifest.inputs where !DurablePlan.isKeyed(input) {
                let spec = try DurablePlan.consumer(input, instance: binding.instance, settings: binding.settings, partition: nil)
                let loop = try await bind(input.type, spec: spec, input: input, binding: binding, bus: pluginBus, fence: nil)
                lock.withLock {
                    stoppers.append { loop.loop.stop() }
                    inputTasks.append(loop.task)
                }
            }
            if registration.manifest.inputs.contains(where: DurablePlan.isKeyed) {
                binding.ownership = { [weak keeper] symbol in
                    keeper?.owned(binding.instance).contains(partitioning.partition(of: symbol)) ?? false
                }
                keeper.register(instance: binding.instance, work: partitionWork(binding, bus: pluginBus, partitioning: partitioning))
            }
        }
        // The first step takes this host's share before it reports ready: one host alone owns every partition.
        await keeper.step()
        let keeping = Task.detached { [weak self] in
            while let self, !self.isDraining {
                try? await Task.sleep(nanoseconds: UInt64(keeper.stepIntervalMs) * 1_000_000)
                if self.isDraining { return }
                await keeper.expire()
                await keeper.step()
            }
        }
        lock.withLock { keeperLoop = keeping }
        for binding in lock.withLock({ bindings }) {
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

    /// Connects as `identity` when the node config names an identity directory, and reports
    /// every permissions violation the server sends on that connection (log and metric): a
    /// refused publish is otherwise only a timeout.
    private func connect(as identity: String) throws -> BusConnection {
        let connection = try BusConnection(config.nats.identity(identity))
        let refusals = metrics.connectionRefusals(identity: identity)
        connection.serverErrors.onReport { [logger] report in
            if report.isPermissionViolation { refusals.increment() }
            logger.error("NATS server on the \(identity) connection: \(report)")
        }
        return connection
    }

    private func pluginConnection(_ instance: String, hostBus: BusConnection) async throws -> BusConnection {
        guard config.nats.identityDirectory != nil else { return hostBus }
        let connection = try connect(as: instance)
        lock.withLock { pluginConnections.append(connection) }
        _ = try await connection.loadPartitioning()
        return connection
    }

    private func leaseClient(_ bus: BusConnection) async throws -> LeaseClient {
        LeaseClient(bucket: try await bus.keyValue("qt_leases"), hostID: hostID, ttlMs: Self.leaseTTLMs, marginMs: Self.leaseMarginMs)
    }

    /// Starting, handing off and abandoning one partition of a plugin instance: every keyed input's
    /// durable for that partition, bound under the partition's fence.
    private func partitionWork(_ binding: PluginBinding, bus: BusConnection, partitioning: Partitioning) -> PartitionWork {
        let keyedInputs = binding.manifest.inputs.filter(DurablePlan.isKeyed)
        return PartitionWork(
            start: { [weak self] partition, fence, afterCrash in
                guard let self else { return }
                self.journal?.partition("acquired", instance: binding.instance, partition: partition, leaseToken: fence.token)
                let specs = keyedInputs.compactMap {
                    try? DurablePlan.consumer($0, instance: binding.instance, settings: binding.settings, partition: partition)
                }
                // After a crash the old holder's unacked messages come back only after AckWait: start
                // fetching once they are redeliverable. Either way all of them come in the first batch
                // (sorted there: redeliveries arrive in the order their delays ran out), so no symbol's
                // message n+1 overtakes message n.
                let outstanding = await Self.outstanding(specs, bus: bus)
                let waitMs = afterCrash ? outstanding.waitMs : 0
                let task = Task.detached { [weak self] in
                    if waitMs > 0 { try? await Task.sleep(nanoseconds: UInt64(waitMs) * 1_000_000) }
                    guard let self, fence.isValid, !self.isDraining, !Task.isCancelled else { return }
                    for (input, spec) in zip(keyedInputs, specs) {
                        // Binding asks the server about the durable: during an election or under load it can
                        // fail, and a partition owned but not consumed would stall its symbols until the lease
                        // moved. So it is retried, for as long as the lease holds.
                        var attempt = 0
                        while fence.isValid, !self.isDraining, !Task.isCancelled {
                            do {
                                let loop = try await self.bind(input.type, spec: spec, input: input, binding: binding, bus: bus,
                                                               fence: fence, partition: partition,
                                                               unackedAtTakeover: outstanding.unacked[spec.durable] ?? 0)
                                self.lock.withLock { self.partitionLoops[binding.instance, default: [:]][partition, default: []].append(loop) }
                                break
                            } catch {
                                attempt += 1
                                self.logger.warning("binding \(spec.stream)/\(spec.durable) failed (attempt \(attempt)): \(error)", metadata: ["plugin": "\(binding.instance)"])
                                try? await Task.sleep(nanoseconds: UInt64(min(2_000, 100 * attempt)) * 1_000_000)
                            }
                        }
                    }
                    for timer in binding.manifest.timers where timer.firesOnPartitionAcquired && fence.isValid {
                        await self.tick(timer, binding: binding, dueMs: Self.wallClockMs(), fence: nil)
                    }
                }
                self.lock.withLock { self.partitionStarts[binding.instance, default: [:]][partition] = task }
            },
            stop: { [weak self] partition in
                guard let self else { return }
                await self.finishStarting(binding.instance, partition)
                let loops = self.lock.withLock { self.partitionLoops[binding.instance]?.removeValue(forKey: partition) ?? [] }
                loops.forEach { $0.loop.stop() }
                // A loop ends after NAKing what it held and what its open pull request brought.
                for entry in loops { await entry.task.value }
                binding.plugin.forget(symbolsWhere: { partitioning.partition(of: $0) == partition })
                self.journal?.partition("released", instance: binding.instance, partition: partition, leaseToken: 0)
            },
            abandon: { [weak self] partition in
                guard let self else { return }
                await self.finishStarting(binding.instance, partition)
                let loops = self.lock.withLock { self.partitionLoops[binding.instance]?.removeValue(forKey: partition) ?? [] }
                loops.forEach { $0.loop.abandon() }
                binding.plugin.forget(symbolsWhere: { partitioning.partition(of: $0) == partition })
                self.journal?.partition("lost", instance: binding.instance, partition: partition, leaseToken: 0)

            })
    }

    /// A partition is started on a task of its own (it may first wait out AckWait); a stop or an
    /// abandon cancels that and waits for it, so no loop is bound after the partition was given up
    /// (such a loop would fetch a batch under a dead fence and hold it from the new owner).
    private func finishStarting(_ instance: String, _ partition: Int) async {
        guard let starting = lock.withLock({ partitionStarts[instance]?.removeValue(forKey: partition) }) else { return }
        starting.cancel()
        await starting.value
    }

    /// How long to wait before fetching a partition whose holder crashed, when any of its durables has
    /// messages delivered and not acked: the longest AckWait less the lease margin, plus a second for
    /// the server's redelivery timer, else nothing. The old holder pulled and sent in-progress acks
    /// only before its fence deadline, which is at least the margin before its key expired (renewal
    /// sent + TTL − margin), so by the time this host saw the key gone, every such message had been
    /// waiting that long already.
    /// Also returns each durable's count of unacked messages.
    private static func outstanding(_ specs: [ConsumerSpec], bus: BusConnection) async -> (waitMs: Int64, unacked: [String: Int]) {
        var waitMs: Int64 = 0
        var unacked: [String: Int] = [:]
        for spec in specs {
            let pending = (try? await bus.consumerInfo(stream: spec.stream, durable: spec.durable).numAckPending) ?? 1
            unacked[spec.durable] = Int(pending)
            if pending > 0 { waitMs = max(waitMs, spec.ackWaitMs - leaseMarginMs + redeliveryTimerSlackMs) }
        }
        return (waitMs, unacked)
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

    /// Binds to the input's provisioned durable so the consumer decodes exactly the input's type,
    /// and starts its loop.
    private func bind<M: BusMessage>(_ type: M.Type, spec: ConsumerSpec, input: InputSpec, binding: PluginBinding,
                                     bus: BusConnection, fence: LeaseFence?, partition: Int? = nil,
                                     unackedAtTakeover: Int = 0) async throws -> (loop: any StoppableLoop, task: Task<Void, Never>) {
        // Two loops on one durable would fetch concurrently (an error in libnats) and break its order.
        if let previous = lock.withLock({ lastLoops[spec.durable] }) { await previous.value }
        let consumer: Consumer<M>
        if let kept = lock.withLock({ consumers[spec.durable] }) as? Consumer<M> {
            kept.restart()
            consumer = kept
        } else {
            consumer = try bus.consume(M.self, spec: spec, producer: binding.producer, countingIn: binding.metrics.busOperations)
            lock.withLock { consumers[spec.durable] = consumer }
        }
        if let fence {
            // A pull request must expire well before the fence does (DESIGN.md §3.3, order across a move).
            let neededMs = spec.fetchTimeoutMs + Self.fetchFenceMarginMs
            consumer.fetchOnlyWhile { fence.remainingMs > neededMs }
        }
        if unackedAtTakeover > 0 { consumer.widenFirstFetch(to: min(unackedAtTakeover + spec.fetchBatch, Self.takeoverFetchLimit)) }
        let loop = InputLoop(binding: binding, spec: input, consumer: consumer, fence: fence, partition: partition)
        let task = Task.detached { await loop.run() }
        lock.withLock { lastLoops[spec.durable] = task }
        return (loop, task)
    }

    private func startTimers(_ binding: PluginBinding, bus: BusConnection) async throws {
        let timers = binding.manifest.timers
        guard !timers.isEmpty else { return }
        var lease: LeaseKeeper?
        if timers.contains(where: \.singleton) {
            let keeper = LeaseKeeper(name: binding.instance, client: try await leaseClient(bus),
                                     renewIntervalMs: PluginHost.leaseRenewIntervalMs)
            lease = keeper
            lock.withLock { leases.append(keeper) }
            startBackground { [weak self] in
                while let self, !self.isDraining {
                    await keeper.step()
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
                    if gate?.isHeld ?? true { await self.tick(timer, binding: binding, dueMs: due, fence: gate?.currentFence) }
                    due += intervalMs
                    if due < Self.wallClockMs() { due = Self.wallClockMs() + intervalMs }
                }
            }
        }
    }

    static let startupTickDelayMs: Int64 = 1_000
    static let fetchFenceMarginMs: Int64 = 500
    static let redeliveryTimerSlackMs: Int64 = 1_000
    static let takeoverFetchLimit = 4_096

    private func tick(_ timer: TimerSpec, binding: PluginBinding, dueMs: Int64, fence: LeaseFence?) async {
        let context = HandlerContext(scope: binding.scope, eventTimeMs: dueMs, cause: nil, causeStream: "", causeSequence: 0, fence: fence)
        binding.metrics.timerTicks.increment()
        let key = "\(binding.instance).\(timer.name)"
        do {
            try await binding.plugin.tick(timer.name, context: context)
            try await context.publishNow()
            timerFailures.withLock { $0[key] = nil }
        } catch {
            binding.metrics.errors.increment()
            binding.scope.logger.error("\(binding.manifest.name) timer \(timer.name): \(error)", metadata: ["timer": "\(timer.name)"])
            let failures = timerFailures.withLock { failures -> Int in
                failures[key, default: 0] += 1
                return failures[key]!
            }
            if failures % Self.timerFailuresBeforeAlert == 0 {
                // Off the timer's own task: while NATS is down the publish waits for its timeout,
                // and the timer's next tick must not wait with it.
                let message = "\(error)"
                Task.detached { [self] in
                    await self.alertTimerFailing(timer, binding: binding, failures: failures, dueMs: dueMs, error: message)
                }
            }
        }
    }

    private func alertTimerFailing(_ timer: TimerSpec, binding: PluginBinding, failures: Int, dueMs: Int64, error: String) async {
        var alert = Alert()
        alert.kind = .timer
        alert.severity = .critical
        alert.plugin = binding.manifest.name
        alert.subject = "\(binding.instance).\(timer.name)@\(hostID)"
        alert.message = "\(binding.manifest.name) timer \(timer.name) on \(hostID) failed \(failures) times in a row: \(error)"
        alert.details = ["host": hostID, "timer": timer.name, "failures": String(failures)]
        alert.meta.eventTimeMs = dueMs
        let id = ContentID.hash(binding.instance, "timer-failing", timer.name, hostID, String(dueMs))
        // The host's own connection: the timer alert is the host's report, and a plugin's identity may not publish it.
        guard let bus = lock.withLock({ self.bus }) else { return }
        _ = try? await bus.publish(OutgoingMessage(alert, subject: Subjects.alert(.timer), id: id, producer: binding.producer))
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
            logger.warning("topology: \(problem)")
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
            return (200, "text/plain; version=0.0.4", metrics.render())
        default:
            return (404, "text/plain", "try /healthz, /readyz or /metrics\n")
        }
    }

    /// SIGTERM/SIGINT: stop fetching; handlers in flight finish, publish and ack; fetched
    /// messages not yet started are NAKed so another host takes them at once; leases released;
    /// the connection closed last.
    public func shutdown() async {
        let (stops, inputs, background, held, keeper, keeping) = lock.withLock {
            draining = true
            return (stoppers, inputTasks, backgroundTasks, leases, partitionKeeper, keeperLoop)
        }
        stops.forEach { $0() }
        for task in inputs { await task.value }
        // No step may take a partition while they are being handed off.
        keeping?.cancel()
        await keeping?.value
        // Each owned partition: stop fetching, finish and ack what is in hand, NAK the rest, then
        // mark its lease released so the next owner fetches at once.
        await keeper?.releaseAll()
        background.forEach { $0.cancel() }
        // A timer tick in progress (an exchange poll, KV writes) finishes before the connection
        // it uses is closed: closing under it is a use-after-free inside libnats.
        for task in background { await task.value }
        for binding in lock.withLock({ bindings }) { await binding.plugin.stop() }
        for lease in held { await lease.release() }
        let (bus, server, connections) = lock.withLock { (self.bus, statusServer, pluginConnections) }
        if let bus { try? await bus.keyValue("qt_hosts").delete(hostID) }
        await server?.stop()
        connections.forEach { $0.close() }
        bus?.close()
    }

    static func wallClockMs() -> Int64 { Int64(Date().timeIntervalSince1970 * 1000) }
}
