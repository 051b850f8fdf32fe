import Bus
import Foundation
import Synchronization
import Identity
import Messages
import Numbers
import Plugins

/// Publishes trade intents at a fixed open-loop rate and times each one until its chain ends: for an
/// OPEN, the ledger commit (the settle that clears the claim its plan took, seen on `qt_ledger`'s
/// stream; its stop was placed before it, so the trade's last exchange call is behind it); for a
/// CLOSE or an exit, whose old stop is cancelled after the settle, the `OrderResult` the executor
/// publishes once that is done; or a gate's BLOCK/SKIP, or a refused order. An OPEN's result is
/// timed too, as the second figure.
/// Symbols are used round-robin, each opened if the driver has not opened it (or an exit run closed
/// it) and closed otherwise, so one symbol has at most one chain in flight while the pipeline keeps up.
final class IntentDriver: Sendable {
    struct Run: CustomStringConvertible {
        var sent = 0
        var completed = 0
        var refused = 0
        var refusals: [String: Int] = [:]
        var latencies = LatencySample()
        /// Intent → the `OrderResult` seen, which the executor publishes once the ledger commit is in.
        var resultLatencies = LatencySample()
        /// Each completed trade's latency minus the time the executor spent in exchange calls for
        /// it (the pipeline's own share), paired by symbol from its decision.
        var ownTimes = LatencySample()
        /// Every intent reached the ledger or a refusal, the last within a second of the last
        /// intent sent: no backlog built up.
        var keptUp = false
        /// With stage times: each completed chain's time per step, from one stored message to the next.
        var stages: [ChainStage: LatencySample] = [:]

        var p50: Double { latencies.p50 }
        var p99: Double { latencies.p99 }
        var description: String {
            "\(completed)/\(sent) to the ledger, \(refused) refused, " + latencies.description + (keptUp ? "" : " — fell behind")
                + (resultLatencies.values.isEmpty ? "" : String(format: "; to the result seen p50 %.1f ms, p99 %.1f ms", resultLatencies.p50, resultLatencies.p99))
                + (ownTimes.values.isEmpty ? "" : String(format: "; own time (minus its exchange calls) p50 %.1f ms, p99 %.1f ms", ownTimes.p50, ownTimes.p99))
                + (refusals.isEmpty ? "" : " (refusals: " + refusals.sorted { $0.key < $1.key }.map { "\($0.key) \($0.value)" }.joined(separator: ", ") + ")")
                + (stages.isEmpty ? "" : "; stage times p50 / p99: " + ChainStage.allCases.compactMap { stage in
                    stages[stage].map { String(format: "%@ %.1f / %.1f ms", stage.label, $0.p50, $0.p99) }
                }.joined(separator: ", "))
        }
    }

    private let bus: BusConnection
    private let symbols: [String]
    private let eventTimeMs: Int64
    private let runID = UUID().uuidString
    private struct Progress {
        var issued = 0
        /// Symbols the driver opened and has not closed since (by intent or by an exit run).
        var believedOpen: Set<String> = []
        /// Symbol → when its intent was published (uptime ns).
        var inFlight: [String: UInt64] = [:]
        /// The same, until its `OrderResult` is seen (after the ledger commit ended the chain).
        var resultAwaited: [String: UInt64] = [:]
        /// Symbols whose chain in flight ends at its ledger commit (an OPEN).
        var endsAtLedger: Set<String> = []
        /// Symbol → the plan whose claim its ledger entry holds, for the chain in flight.
        var claimedPlan: [String: String] = [:]
        /// Completed trades whose executor decision (with its exchange time) has not come yet, and
        /// exchange times whose result has not come yet.
        var latencyAwaitingExchange: [String: Double] = [:]
        var exchangeAwaitingLatency: [String: Double] = [:]
        /// With stage times: symbol → when each stage of its chain in flight was stored (wall ns).
        var stageTimes: [String: [ChainStage: Int64]] = [:]
        var current = Run()
    }

    private let progress = Mutex(Progress())
    private let followers = Mutex<[Task<Void, Never>]>([])

    /// Follows the intent and plan subjects too and reports each chain's time per stage: a tail
    /// per subject costs the server and this process a fetch per message, so the CPU figures of
    /// such a run are not comparable with one without.
    private let timesStages: Bool

    init(bus: BusConnection, symbols: [String], eventTimeMs: Int64, stageTimes: Bool = false) {
        self.bus = bus
        self.symbols = symbols
        self.eventTimeMs = eventTimeMs
        self.timesStages = stageTimes
    }

    func start() async throws {
        let stageSubjects = timesStages ? ChainStage.allCases.compactMap(\.storedOn) : []
        for subject in ["qt.exec.result.*", "qt.decision.*.*", Self.ledgerSubject] + stageSubjects {
            let tail = Task.detached { [self] () -> Void in
                try? await bus.tail(subject, last: 0, follow: true) { [self] message in
                    observe(message)
                    return !Task.isCancelled
                }
            }
            followers.withLock { $0.append(tail) }
        }
        try await Task.sleep(nanoseconds: 300_000_000)  // the tails' consumers exist before the first intent
    }

    func stop() { followers.withLock { $0 }.forEach { $0.cancel() } }

    /// The ledger bucket's stream subjects: every entry the executor writes.
    static let ledgerSubject = "$KV.qt_ledger.*"
    private static let ledgerSubjectPrefix = String(ledgerSubject.dropLast())

    private func observe(_ message: InboundMessage) {
        let now = DispatchTime.now().uptimeNanoseconds
        if message.subject.hasPrefix(Self.ledgerSubjectPrefix) {
            observeLedger(message, at: now)
            return
        }
        if timesStages { recordStage(of: message) }
        if let result = try? OrderResult(serializedBytes: message.payload), message.subject.hasPrefix("qt.exec.result.") {
            let completed = result.status == .applied || result.status == .filled
            if completed {
                let endsHere = progress.withLock { progress -> Bool in
                    if progress.endsAtLedger.contains(result.symbol) || progress.inFlight[result.symbol] == nil {
                        if let started = progress.resultAwaited.removeValue(forKey: result.symbol) {
                            progress.current.resultLatencies.add(Double(now - started) / 1e6)
                        }
                        return false
                    }
                    if timesStages { progress.stageTimes[result.symbol] = nil }  // the stages follow OPENs only
                    return true
                }
                if endsHere { finish(result.symbol, at: now, completed: true, why: "") }
            } else {
                finish(result.symbol, at: now, completed: false, why: "executor \(shortName(result.status)) \(result.errorCode) \(result.errorMessage.prefix(60))")
            }
        } else if let decision = try? Decision(serializedBytes: message.payload) {
            if decision.verdict == .block || decision.verdict == .skip {
                finish(decision.symbol, at: now, completed: false, why: "\(decision.plugin) \(shortName(decision.reason))")
            } else if decision.plugin == ExecutorPlugin.name, let exchangeMs = decision.after[ExecutorPlugin.exchangeTimeKey].flatMap(Double.init) {
                progress.withLock { progress in
                    if let latency = progress.latencyAwaitingExchange.removeValue(forKey: decision.symbol) {
                        progress.current.ownTimes.add(latency - exchangeMs)
                    } else {
                        progress.exchangeAwaitingLatency[decision.symbol] = exchangeMs
                    }
                }
            }
        }
    }

    /// The claim of the chain in flight (its plan id), then the settle that clears it with that plan
    /// as the last: the ledger commit that ends the chain. A released claim (a refused order) ends
    /// it through the result instead.
    private func observeLedger(_ message: InboundMessage, at now: UInt64) {
        guard let symbol = message.subject.split(separator: ".").last.map(String.init), !message.payload.isEmpty,
              let entry = try? LedgerEntry(serializedBytes: message.payload) else { return }
        let committed = progress.withLock { progress -> Bool in
            guard progress.inFlight[symbol] != nil, progress.endsAtLedger.contains(symbol) else { return false }
            if !entry.pendingPlanID.isEmpty {
                progress.claimedPlan[symbol] = entry.pendingPlanID
                return false
            }
            guard let plan = progress.claimedPlan[symbol], entry.lastPlanID == plan else { return false }
            progress.claimedPlan[symbol] = nil
            if timesStages, progress.stageTimes[symbol] != nil {
                progress.stageTimes[symbol]?[.ledger] = message.timestampNs
                progress.stageTimes[symbol]?[.seen] = WallClock.nanoseconds
            }
            return true
        }
        if committed { finish(symbol, at: now, completed: true, why: "") }
    }

    private func finish(_ symbol: String, at now: UInt64, completed: Bool, why: String) {
        progress.withLock { progress in
            guard let started = progress.inFlight.removeValue(forKey: symbol) else { return }
            progress.endsAtLedger.remove(symbol)
            if completed {
                if let times = progress.stageTimes.removeValue(forKey: symbol) { Self.addStages(times, to: &progress.current) }
                let latency = Double(now - started) / 1e6
                progress.current.completed += 1
                progress.current.latencies.add(latency)
                if let exchangeMs = progress.exchangeAwaitingLatency.removeValue(forKey: symbol) {
                    progress.current.ownTimes.add(latency - exchangeMs)
                } else {
                    progress.latencyAwaitingExchange[symbol] = latency
                }
            } else {
                progress.resultAwaited[symbol] = nil
                progress.claimedPlan[symbol] = nil
                progress.current.refused += 1
                progress.current.refusals[why, default: 0] += 1
            }
        }
    }

    /// `rate` intents a second for `seconds`, then up to 5 s for the last chains to end.
    func run(rate: Double, seconds: Double) async throws -> Run {
        try await drive(count: Int(rate * seconds), rate: rate) { _ in
            let intent = self.nextIntent()
            return (intent.symbol, intent.action != .close, try OutgoingMessage(intent, subject: Subjects.intent(intent.symbol), id: intent.intentID,
                                                       producer: "bench@ai-agent"))
        }
    }

    /// An open position the exit run closes: what harvest-proposer would put in its proposal.
    struct OpenPosition: Sendable {
        let symbol: String
        let amount: Decimal
        let ledgerRevision: UInt64
        let markPrice: Decimal
    }

    /// A FULL_CLOSE harvest proposal a second for each of `positions` (at most `rate · seconds`),
    /// as harvest-proposer publishes one, timed to its `OrderResult` like the intents.
    func runExits(rate: Double, seconds: Double, positions: [OpenPosition]) async throws -> Run {
        let chosen = Array(positions.prefix(Int(rate * seconds)))
        progress.withLock { $0.believedOpen.subtract(chosen.map(\.symbol)) }
        return try await drive(count: chosen.count, rate: rate) { index in
            let position = chosen[index]
            var proposal = HarvestProposal()
            proposal.symbol = position.symbol
            proposal.proposalID = ContentID.hash("bench-e2e-exit", self.runID, position.symbol, String(position.ledgerRevision))
            proposal.action = .fullClose
            proposal.side = position.amount > 0 ? .long : .short
            proposal.positionAmt = position.amount.plainString
            proposal.markPrice = position.markPrice.plainString
            proposal.ledgerRevision = position.ledgerRevision
            proposal.killScore = 0.9
            proposal.reasons = [.killScore]
            proposal.meta.eventTimeMs = self.eventTimeMs + Int64(index)
            return (position.symbol, false, try OutgoingMessage(proposal, subject: Subjects.harvestProposed(position.symbol),
                                                         id: proposal.proposalID, producer: "bench@harvest-proposer"))
        }
    }

    /// Publishes `count` messages at `rate` (open loop), each made by `make(index)` for its symbol.
    private func drive(count: Int, rate: Double,
                       make: (Int) throws -> (symbol: String, endsAtLedger: Bool, message: OutgoingMessage)) async throws -> Run {
        progress.withLock { progress in
            progress.current = Run()
            progress.latencyAwaitingExchange = [:]
            progress.exchangeAwaitingLatency = [:]
            progress.resultAwaited = [:]
            progress.claimedPlan = [:]
            progress.endsAtLedger = []
        }
        let schedule = OpenLoopSchedule(rate: rate)
        for index in 0..<count {
            try await schedule.waitForSlot(index)
            let (symbol, endsAtLedger, message) = try make(index)
            progress.withLock { progress in
                let publishedAt = DispatchTime.now().uptimeNanoseconds
                progress.inFlight[symbol] = publishedAt
                progress.resultAwaited[symbol] = publishedAt
                if endsAtLedger { progress.endsAtLedger.insert(symbol) } else { progress.endsAtLedger.remove(symbol) }
                if timesStages { progress.stageTimes[symbol] = [.published: WallClock.nanoseconds] }
                progress.current.sent += 1
            }
            _ = try await bus.publish(message)
        }
        let scheduleEnd = DispatchTime.now().uptimeNanoseconds
        var drainedAt: UInt64?
        while DispatchTime.now().uptimeNanoseconds - scheduleEnd < 5_000_000_000 {
            if progress.withLock({ $0.inFlight.isEmpty }) { drainedAt = DispatchTime.now().uptimeNanoseconds; break }
            try await Task.sleep(nanoseconds: 10_000_000)
        }
        return progress.withLock { progress in
            progress.inFlight.removeAll()
            // Chains are tracked per symbol, so a symbol's later intent replaces its earlier one in
            // flight: an empty map alone does not say every intent ended (a 300/s step once drained
            // with 246 of 1,500 unaccounted for). Every intent must have reached the ledger or a refusal.
            let accounted = progress.current.completed + progress.current.refused == progress.current.sent
            progress.current.keptUp = accounted && (drainedAt.map { $0 - scheduleEnd < 1_000_000_000 } ?? false)
            return progress.current
        }
    }

    /// The stored time of a stage's message, for the symbol's chain in flight (its first only).
    private func recordStage(of message: InboundMessage) {
        guard let stage = ChainStage.allCases.first(where: { $0.storedOn.map { message.subject.hasPrefix(String($0.dropLast())) } ?? false }),
              let symbol = message.subject.split(separator: ".").last.map(String.init) else { return }
        progress.withLock { progress in
            guard progress.stageTimes[symbol] != nil, progress.stageTimes[symbol]?[stage] == nil else { return }
            progress.stageTimes[symbol]?[stage] = message.timestampNs
        }
    }

    /// Each stage whose predecessor was recorded too: an exit's chain starts at a harvest
    /// proposal, which is not followed, so its first stages are left out.
    private static func addStages(_ times: [ChainStage: Int64], to run: inout Run) {
        for stage in ChainStage.allCases {
            guard let previous = stage.previous, let from = times[previous], let to = times[stage] else { continue }
            run.stages[stage, default: LatencySample()].add(Double(to - from) / 1e6)
        }
    }

    private func nextIntent() -> TradeIntent {
        let (index, opening) = progress.withLock { progress -> (Int, Bool) in
            defer { progress.issued += 1 }
            let symbol = symbols[progress.issued % symbols.count]
            let opening = progress.believedOpen.insert(symbol).inserted
            if !opening { progress.believedOpen.remove(symbol) }
            return (progress.issued, opening)
        }
        var intent = TradeIntent()
        intent.symbol = symbols[index % symbols.count]
        intent.action = opening ? .openLong : .close
        intent.intentID = ContentID.hash("bench-e2e", runID, String(index))
        intent.confidence = 0.9
        intent.leverage = 5
        intent.model = "bench"
        intent.meta.eventTimeMs = eventTimeMs + Int64(index)
        return intent
    }
}

/// The steps of an entry's chain, each ending when its message was stored (the server's clock,
/// which on one machine is the driver's): the driver's publish, then one stage per plugin (the
/// executor's until its settle is stored), then the driver seeing that ledger commit.
enum ChainStage: Int, CaseIterable {
    case published, intent, proposed, sized, approved, ledger, seen

    var previous: ChainStage? { ChainStage(rawValue: rawValue - 1) }

    /// The subject whose stored message ends this stage.
    var storedOn: String? {
        switch self {
        case .intent: return "qt.signal.intent.*"
        case .proposed: return "qt.plan.proposed.*"
        case .sized: return "qt.plan.sized.*"
        case .approved: return "qt.plan.approved.*"
        // The ledger's stage ends at the settle, not at its first write (the claim): `observeLedger`.
        case .published, .ledger, .seen: return nil
        }
    }

    /// Who spent the time that ends with this stage.
    var label: String {
        switch self {
        case .published: return "driver"
        case .intent: return "publish → stored"
        case .proposed: return "intent-bridge"
        case .sized: return "governor"
        case .approved: return "portfolio-gate"
        case .ledger: return "executor (to the ledger commit)"
        case .seen: return "ledger commit → seen"
        }
    }
}

/// Wall-clock nanoseconds since the epoch, comparable with JetStream's stored times on this machine.
enum WallClock {
    static var nanoseconds: Int64 {
        var now = timespec()
        clock_gettime(CLOCK_REALTIME, &now)
        return Int64(now.tv_sec) * 1_000_000_000 + Int64(now.tv_nsec)
    }
}

