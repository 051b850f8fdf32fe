import Foundation
import Host
import Identity
import Kernels
import Messages

/// The watchdog (DESIGN.md §5; the seed's "monitoring, alert if positions > 10"). Every
/// `interval_s` (wall clock, singleton) it looks at the ledger, the account, the heat, the
/// dead-letter stream, the consumers and the fleet's topology, and raises an `Alert` when a
/// condition begins (not on every tick while it lasts; the open conditions live in
/// `qt_state/sentinel.conditions`, so another host taking over the lease does not repeat them).
/// The dead-letter stream alerts on every growth, a host that leaves the fleet once (WARNING), and a
/// partition of a running plugin without an owner for `unowned_partition_s` (CRITICAL: its symbols
/// are not handled). On the margin and heat triggers it sets
/// `qt_control/trading_state` to REDUCING (never back: resuming is the operator's decision).
public final class SentinelPlugin: Plugin {
    public static let name = "sentinel"
    static let conditionsState = "conditions"

    public static let registration = PluginRegistration(
        manifest: PluginManifest(
            name: name, version: "1.0.0",
            outputs: [OutputSpec("alerts", subject: "qt.alert.*", type: Alert.self)],
            kvReads: ["qt_ledger", "qt_snapshot", "qt_marketstate", "qt_control", "qt_state"],
            kvWrites: ["qt_control", "qt_state"],
            timers: [TimerSpec("watch", intervalMs: 10_000, singleton: true, intervalSecondsSetting: "interval_s")],
            config: [
                ConfigKey("interval_s", .double, default: .double(10), range: 0.2...3600, help: "seconds between checks"),
                ConfigKey("max_positions", .int, default: .int(10), range: 0...100_000, help: "alert when the ledger holds more open positions"),
                ConfigKey("reduce_margin_ratio", .double, default: .double(0.6), range: 0.01...1, help: "alert (and REDUCING) at or above this margin ratio"),
                ConfigKey("reduce_on_margin", .bool, default: .bool(true), help: "set REDUCING when the margin ratio trigger fires"),
                ConfigKey("reduce_on_heat", .bool, default: .bool(true), help: "set REDUCING when portfolio heat is HOT"),
                ConfigKey("consumer_lag", .int, default: .int(1000), range: 1...100_000_000, help: "alert when a consumer has more messages pending"),
                ConfigKey("unowned_partition_s", .double, default: .double(30), range: 1...86_400,
                          help: "critical alert when a partition of a running plugin has had no owner for longer"),
            ]),
        make: { setup in
            let settings = setup.settings
            return SentinelPlugin(limits: Limits(maxPositions: try settings.int("max_positions"),
                                                 reduceMarginRatio: try settings.double("reduce_margin_ratio"),
                                                 reduceOnMargin: try settings.bool("reduce_on_margin"), reduceOnHeat: try settings.bool("reduce_on_heat"),
                                                 consumerLag: UInt64(max(0, try settings.int("consumer_lag"))),
                                                 unownedPartitionMs: Int64(try settings.double("unowned_partition_s") * 1000)))
        })

    struct Limits {
        var maxPositions: Int
        var reduceMarginRatio: Double
        var reduceOnMargin: Bool
        var reduceOnHeat: Bool
        var consumerLag: UInt64
        var unownedPartitionMs: Int64
    }

    /// A condition that holds now: its key (one per thing it is about), its alert, and whether it
    /// asks for REDUCING.
    struct Finding {
        var key: String
        var alert: Alert
        var reduces: Bool
    }

    private let limits: Limits

    init(limits: Limits) {
        self.limits = limits
    }

    public func handle(_ input: Input, context: HandlerContext) async throws {
        throw PluginError.contract("\(Self.name) has no inputs")
    }

    public func tick(_ timer: String, context: HandlerContext) async throws {
        let nowMs = context.eventTimeMs
        var findings = try await positionFindings(context)
        let fleet = try await context.observeFleet()
        for consumer in fleet.consumers where consumer.pending > limits.consumerLag {
            findings.append(Finding(key: "lag:\(consumer.name)", alert: Self.alert(.consumerLag, .warning, subject: consumer.name,
                "consumer \(consumer.name) on \(consumer.stream) has \(consumer.pending) messages pending (limit \(limits.consumerLag))",
                details: ["pending": String(consumer.pending), "ack_pending": String(consumer.ackPending)]), reduces: false))
        }
        findings += Self.storageFindings(fleet.storage)
        if !fleet.topologyProblems.isEmpty {
            findings.append(Finding(key: "topology", alert: Self.alert(.topology, .critical, subject: "qt_hosts",
                "\(fleet.topologyProblems.count) topology problem(s): " + fleet.topologyProblems.map(\.description).joined(separator: "; ")),
                reduces: false))
        }

        let stored = try await context.loadState(Self.conditionsState)
        let open = Set(stored?.state.symbols ?? [])
        let lastDeadLetters = UInt64(stored?.state.values["dead_letters"] ?? "") ?? 0
        let unownedSince = Self.unownedSince(fleet.partitions, before: stored?.state.values ?? [:], nowMs: nowMs)
        for (key, since) in unownedSince where nowMs - since > limits.unownedPartitionMs {
            findings.append(Finding(key: "unowned:\(key)", alert: Self.alert(.lease, .critical, subject: "qt_leases/\(key)",
                "partition \(key) has had no owner for \((nowMs - since) / 1000) s: its symbols are not handled (`qt fleet` shows the hosts)",
                details: ["lease": key, "since_ms": String(since)]), reduces: false))
        }
        let hosts = fleet.partitions.hosts.map(\.hostID)
        let previousHosts = (stored?.state.values["hosts"] ?? "").split(separator: ",").map(String.init)
        var alerts = findings.filter { !open.contains($0.key) }.map { ($0.key, $0.alert) }
        for host in previousHosts where !hosts.contains(host) {
            alerts.append(("host-left:\(host)", Self.alert(.lease, .warning, subject: "qt_hosts/\(host)",
                "host \(host) left the fleet (no heartbeat in qt_hosts); its partitions move to the others within the lease TTL",
                details: ["host": host, "hosts": hosts.joined(separator: ",")])))
        }
        if fleet.deadLetters > lastDeadLetters {
            alerts.append(("dlq", Self.alert(.deadLetter, .warning, subject: "QT_DLQ",
                "the dead-letter stream grew from \(lastDeadLetters) to \(fleet.deadLetters) messages (`qt streams` shows QT_DLQ)",
                details: ["before": String(lastDeadLetters), "now": String(fleet.deadLetters)])))
        }
        for (key, var alert) in alerts {
            alert.meta.eventTimeMs = nowMs
            let id = ContentID.content(plugin: Self.name, kind: key, symbol: alert.symbol, eventTimeMs: nowMs, revision: 0)
            try context.emit("alerts", alert, subject: Subjects.alert(alert.kind), id: id)
        }
        if let trigger = findings.first(where: \.reduces) {
            try await setReducing(because: trigger.alert.message, context: context, nowMs: nowMs)
        }
        try await context.publishNow()

        var state = PluginState()
        state.symbols = findings.map(\.key).sorted()
        state.values["dead_letters"] = String(fleet.deadLetters)
        state.values["hosts"] = hosts.joined(separator: ",")
        for (key, since) in unownedSince { state.values["unowned-since:" + key] = String(since) }
        if state.symbols != stored?.state.symbols || state.values != stored?.state.values {
            try await context.saveState(Self.conditionsState, state, expectedRevision: stored?.revision ?? 0)
        }
    }

    /// Since when each currently unowned partition (`<instance>.p<k>`) has been seen unowned.
    static func unownedSince(_ view: PartitionView, before values: [String: String], nowMs: Int64) -> [String: Int64] {
        var since: [String: Int64] = [:]
        for (instance, partition) in view.unowned {
            let key = "\(instance).p\(partition)"
            since[key] = Int64(values["unowned-since:" + key] ?? "") ?? nowMs
        }
        return since
    }

    /// Open positions over the limit, margin ratio, heat.
    private func positionFindings(_ context: HandlerContext) async throws -> [Finding] {
        var findings: [Finding] = []
        let ledger = try await LedgerPosition.scan(try await context.kv("qt_ledger"))
        let open = ledger.open
        for (symbol, why) in ledger.unreadable.sorted(by: { $0.key < $1.key }) {
            findings.append(Finding(key: "ledger:\(symbol)", alert: Self.alert(.reconcile, .critical, subject: "qt_ledger/\(symbol)",
                "qt_ledger/\(symbol) cannot be read, so \(symbol) is held (no entries; exits and klines go on): \(why)",
                details: ["symbol": symbol]), reduces: false))
        }
        if open.count > limits.maxPositions {
            findings.append(Finding(key: "max-positions", alert: Self.alert(.maxPositions, .critical, subject: "qt_ledger",
                "\(open.count) open positions, more than max_positions \(limits.maxPositions): " + open.map(\.symbol).joined(separator: ", "),
                details: ["open": String(open.count), "max_positions": String(limits.maxPositions)]), reduces: false))
        }
        let account = try await context.kv("qt_snapshot").read(AccountSnapshot.self, "_account")
        if case .value(let account, _) = account, account.marginRatio >= limits.reduceMarginRatio {
            findings.append(Finding(key: "margin-ratio", alert: Self.alert(.marginRatio, .critical, subject: "qt_snapshot/_account",
                "margin ratio \(account.marginRatio) ≥ reduce_margin_ratio \(limits.reduceMarginRatio)",
                details: ["margin_ratio": String(account.marginRatio)]), reduces: limits.reduceOnMargin))
        }
        if case .unreadable(let why) = account {
            findings.append(Self.unreadableFinding(why, holds: "every entry is refused until it is repaired (exits go on)"))
        }
        let snapshots = try await context.kv("qt_snapshot")
        for key in try await snapshots.keys().sorted() where key != "_account" {
            if case .unreadable(let why) = try await snapshots.read(PositionSnapshot.self, key) {
                findings.append(Self.unreadableFinding(why, holds: "entries on \(key) are refused until position-brain rewrites it"))
            }
        }
        let state = try await context.kv("qt_control").read(Control.self, "trading_state")
        if let finding = Self.controlFinding(state) { findings.append(finding) }
        // For deploy/prometheus's "no fills while ACTIVE": a missing or unreadable state is not active.
        if case .value(let control, _) = state, control.tradingState == .active {
            context.record(1, as: "trading_active")
        } else {
            context.record(0, as: "trading_active")
        }
        if let finding = try await Self.slotFinding(context) { findings.append(finding) }
        if case .known(let heat) = try await HeatGatePlugin.read(context), HeatKernel.bucket(heat) == .hot {
            findings.append(Finding(key: "heat-hot", alert: Self.alert(.heatHot, .warning, subject: "portfolio",
                "portfolio heat \(heat) is HOT (≥ \(HeatKernel.hotFrom))", details: ["heat": String(heat)]), reduces: limits.reduceOnHeat))
        }
        return findings
    }

    /// A `trading_state` the gates cannot act on: they trade as if HALTED until an operator sets a
    /// known state (`qt control`), and this says so, once, as CRITICAL.
    static func controlFinding(_ stored: KeyReading<Control>) -> Finding? {
        let value: String
        switch stored {
        case .missing: return nil
        case .unreadable(let why): value = why.problem
        case .value(let control, _):
            guard !TradingControl.isKnown(control.tradingState) else { return nil }
            value = "\(control.tradingState)"
        }
        return Finding(key: "control", alert: alert(.control, .critical, subject: "qt_control/trading_state",
            "qt_control/trading_state holds \(value), which is not ACTIVE, REDUCING or HALTED: every gate refuses "
            + "all orders as if HALTED until an operator sets a known state", details: ["value": value]), reduces: false)
    }

    /// The portfolio gate's entry slots, if they cannot be counted (every entry waits on them).
    static func slotFinding(_ context: HandlerContext) async throws -> Finding? {
        let key = "\(PortfolioGatePlugin.name).\(EntrySlots.stateName)"
        let problem: UnreadableValue
        switch try await context.kv("qt_state").read(PluginState.self, key) {
        case .missing: return nil
        case .unreadable(let why): problem = why
        case .value(let state, _):
            guard let why = EntrySlots.problem(state.values) else { return nil }
            problem = UnreadableValue(bucket: "qt_state", key: key, problem: why)
        }
        return unreadableFinding(problem, holds: "every entry is refused until it is repaired or deleted (exits go on)")
    }

    /// A bucket (they refuse writes at their byte limit) at 80 % or more: CRITICAL, before the
    /// writes that depend on it (the executor's ledger and orders, plugin state) start failing.
    static let storageAlertFill = 0.8

    static func storageFindings(_ storage: [FleetObservation.Storage]) -> [Finding] {
        storage.compactMap { stream in
            guard let fill = stream.fill, fill >= storageAlertFill else { return nil }
            return Finding(key: "storage:\(stream.stream)", alert: alert(.limit, .critical, subject: stream.stream,
                "\(stream.stream) holds \(stream.bytes) bytes, \(Int(fill * 100)) % of its \(stream.maxBytes)-byte limit: at the limit its "
                + "writes fail (it never discards); raise max_bytes with `qt streams provision` or remove finished records",
                details: ["bytes": String(stream.bytes), "max_bytes": String(stream.maxBytes)]), reduces: false)
        }
    }

    /// A key the gates depend on that cannot be read: CRITICAL, once while it lasts.
    static func unreadableFinding(_ unreadable: UnreadableValue, holds: String) -> Finding {
        Finding(key: "unreadable:\(unreadable.bucket)/\(unreadable.key)",
                alert: alert(.unreadableState, .critical, subject: "\(unreadable.bucket)/\(unreadable.key)", "\(unreadable): \(holds)",
                             details: ["bucket": unreadable.bucket, "key": unreadable.key]), reduces: false)
    }

    /// ACTIVE → REDUCING; a HALTED or REDUCING state (or one no gate can read) is left as it is.
    private func setReducing(because reason: String, context: HandlerContext, nowMs: Int64) async throws {
        let control = try await context.kv("qt_control")
        let current = try await control.read(Control.self, "trading_state")
        guard TradingControl.effectiveState(current) == .active else { return }
        var revision: UInt64?
        if case .value(_, let stored) = current { revision = stored }
        var next = Control()
        next.tradingState = .reducing
        next.reason = "sentinel: " + reason
        next.setBy = "\(Self.name)@\(context.hostID)"
        next.setAtMs = nowMs
        next.meta.eventTimeMs = nowMs
        try await control.write("trading_state", next, over: revision)
    }

    static func alert(_ kind: AlertKind, _ severity: AlertSeverity, subject: String, _ message: String,
                      details: [String: String] = [:]) -> Alert {
        var alert = Alert()
        alert.kind = kind
        alert.severity = severity
        alert.plugin = name
        alert.subject = subject
        alert.message = message
        alert.details = details
        return alert
    }
}
