import Bus
import Exchange
import Foundation
import Host
import Identity
import Messages
import Plugins
import XCTest

/// Each rule of intent-bridge, governor and portfolio-gate with a passing and a blocking case,
/// on a real bus against the simulator. Every input gets a decision; the reason names the rule.
final class EntryGateTests: ExecutionTestCase {
    var eventTimeMs: Int64 = 1_800_000_000_000

    func intent(_ symbol: String, _ action: IntentAction, confidence: Double = 0.8, leverage: Int32 = 3) -> TradeIntent {
        eventTimeMs += 60_000
        var intent = TradeIntent()
        intent.intentID = ContentID.hash("test-intent", symbol, String(eventTimeMs))
        intent.symbol = symbol
        intent.action = action
        intent.confidence = confidence
        intent.leverage = leverage
        intent.model = "test"
        intent.meta.eventTimeMs = eventTimeMs
        return intent
    }

    func send(_ intent: TradeIntent, messageID: String? = nil) async throws {
        _ = try await bus.publish(OutgoingMessage(intent, subject: Subjects.intent(intent.symbol), id: messageID ?? UUID().uuidString,
                                                  producer: "test@ai-agent"))
    }

    func proposed(_ symbol: String, long: Bool = true, confidence: Double = 0.8, leverage: Int32 = 3, ageMs: Int64 = 0) -> Plan {
        eventTimeMs += 60_000
        var plan = Plan()
        plan.planID = ContentID.hash("test-proposed", symbol, String(eventTimeMs))
        plan.symbol = symbol
        plan.kind = .open
        plan.side = long ? .buy : .sell
        plan.leverage = leverage
        plan.confidence = confidence
        plan.permitKind = .p33
        plan.meta.eventTimeMs = eventTimeMs + ageMs
        return plan
    }

    func propose(_ plan: Plan) async throws {
        _ = try await bus.publish(OutgoingMessage(plan, subject: Subjects.planProposed(plan.symbol), id: plan.planID, producer: "test@intent-bridge"))
    }

    /// A calm, trending market state as of the current event time (entry K = 0.5).
    func marketState(_ symbol: String, regimeFlip: Bool = false) async throws {
        var state = MarketState()
        state.symbol = symbol
        state.sigma = 0.002
        state.ts = 0.5
        (state.pTrend, state.pMr, state.pChop) = regimeFlip ? (0.2, 0.4, 0.4) : (0.6, 0.2, 0.2)
        state.asOfMs = eventTimeMs + 60_000
        try await bus.keyValue("qt_marketstate").put(symbol, message: state)
    }

    func summary(_ decisions: [Decision]) -> String { decisions.map { "\($0.verdict) \($0.reason) \($0.detail)" }.joined(separator: "; ") }

    func testIntentBridgeRules() async throws {
        let symbols = Array(simulator.exchange.symbols[0..<4])
        try await activeUniverse(Array(symbols[0..<3]))
        let held = try await openPosition(symbols[2], long: true)
        _ = try await startPipeline(["intent-bridge": [:]])

        let pass = intent(symbols[0], .openLong)
        try await send(pass)
        try await send(intent(symbols[1], .hold))
        try await send(intent(symbols[3], .openLong))
        try await send(intent(symbols[1], .openShort, confidence: 0.5))
        try await send(intent(symbols[2], .openShort))
        try await send(intent(symbols[1], .close))
        try await send(intent(symbols[2], .close))
        try await send(pass, messageID: "same-intent-after-the-duplicate-window")

        let first = try await decisions("intent-bridge", symbols[0], expected: 2)
        XCTAssertEqual(first.map(\.verdict), [.pass, .skip], summary(first))
        XCTAssertEqual(first.last?.reason, .duplicate)
        let second = try await decisions("intent-bridge", symbols[1], expected: 3)
        XCTAssertEqual(second.map(\.reason), [.hold, .lowConfidence, .noPosition], summary(second))
        let outside = try await decisions("intent-bridge", symbols[3], expected: 1)
        XCTAssertEqual(outside.map(\.reason), [.notInUniverse])
        let holding = try await decisions("intent-bridge", symbols[2], expected: 2)
        XCTAssertEqual(holding.map(\.reason), [.positionExists, .passed], summary(holding))

        let entry = try await readAll(Plan.self, subject: Subjects.planProposed(symbols[0]), expected: 1)
        XCTAssertEqual(entry.count, 1, "one plan for the intent, however often it arrives")
        XCTAssertEqual(entry.first?.kind, .open)
        XCTAssertEqual(entry.first?.side, .buy)
        XCTAssertEqual(entry.first?.origin, pass.intentID)
        XCTAssertEqual(entry.first?.planID, ContentID.hash("intent-bridge", pass.intentID))
        let close = try await readAll(Plan.self, subject: Subjects.planProposed(symbols[2]), expected: 1)
        XCTAssertEqual(close.first?.kind, .close)
        XCTAssertEqual(close.first?.side, .sell)
        XCTAssertEqual(close.first?.quantity, held.positionAmt)
        XCTAssertTrue(close.first?.reduceOnly == true)
    }

    /// The bridge remembers an intent id with its plan, in the plan's batch (no round trip of its own).
    /// A symbol's intents sent back to back come in one fetch: the host handles each only once the
    /// write before it is stored and handed to the bridge's view, so none meets a conflict and waits
    /// out a retry, and a repeated intent among them is still caught.
    func testOneSymbolsIntentsBackToBackAreBridgedOnceEachWithoutARetry() async throws {
        let symbols = Array(simulator.exchange.symbols[0..<2])
        try await activeUniverse(symbols)
        let hosts = [try await startPipeline(["intent-bridge": [:]], host: "bridge-a"),
                     try await startPipeline(["intent-bridge": [:]], host: "bridge-b")]
        try await waitUntilBalanced("intent-bridge", hosts: ["bridge-a", "bridge-b"])
        let sent = (0..<20).flatMap { _ in symbols.map { intent($0, .openLong) } }
        var batch = try sent.map { try OutgoingMessage($0, subject: Subjects.intent($0.symbol), id: UUID().uuidString, producer: "test@ai-agent") }
        batch.append(try OutgoingMessage(sent[0], subject: Subjects.intent(sent[0].symbol), id: "the-same-intent-again", producer: "test@ai-agent"))
        _ = try await bus.send(batch).acks()

        for symbol in symbols {
            let intents = Set(sent.filter { $0.symbol == symbol }.map(\.intentID))
            let plans = try await readAll(Plan.self, subject: Subjects.planProposed(symbol), expected: intents.count)
            XCTAssertEqual(plans.count, intents.count, symbol)
            XCTAssertEqual(Set(plans.map(\.origin)), intents, "one plan per intent of \(symbol)")
            let memory = try await XCTUnwrapAsync(try await bus.keyValue("qt_state").get(PluginState.self, "intent-bridge.intents-\(symbol)"))
            XCTAssertEqual(Set(memory.value.values.keys), intents, "the memory holds every intent of \(symbol)")
        }
        let first = try await decisions("intent-bridge", symbols[0], expected: 21)
        XCTAssertEqual(first.filter { $0.reason == .duplicate }.count, 1, summary(first))
        let retries = hosts.map { $0.metrics.plugin("intent-bridge").errors.value }.reduce(0, +)
        XCTAssertEqual(retries, 0, "no intent met a conflict")
    }

    func testGovernorRules() async throws {
        let symbols = Array(simulator.exchange.symbols[20..<28])
        let held = try await openPosition(symbols[7], long: false, notional: 150)
        _ = try await startPipeline(["governor": ["max_leverage": "5"]])
        func decided(_ symbol: String, _ count: Int) async throws -> [Decision] { try await decisions("governor", symbol, expected: count) }

        // Pass: 200 USDT at the mark, rounded down to the step; the stop distance; leverage kept.
        try await marketState(symbols[0])
        try await propose(proposed(symbols[0]))
        check(try await decided(symbols[0], 1).map(\.verdict), [.pass])
        let sized = try await readAll(Plan.self, subject: Subjects.planSized(symbols[0]), expected: 1).first
        let mark = try XCTUnwrap(simulator.exchange.mark(symbols[0]))
        let notional = try XCTUnwrap(Decimal.parse(sized?.quantity ?? "")) * mark
        XCTAssertGreaterThan(notional, 190)
        XCTAssertLessThanOrEqual(notional, 201)
        XCTAssertEqual(sized?.stopDistPct, 0.02)
        XCTAssertEqual(sized?.leverage, 3)

        // Stale market state (older than 3 bars of event time) blocks; none at all blocks.
        try await marketState(symbols[1])
        try await propose(proposed(symbols[1], ageMs: 5 * 60_000))
        try await propose(proposed(symbols[2]))
        check(try await decided(symbols[1], 1).map(\.reason), [.staleInput])
        check(try await decided(symbols[2], 1).map(\.reason), [.staleInput])

        // Leverage over the cap is capped (MODIFY); a regime flip scales the entry down (§6.4).
        try await marketState(symbols[3])
        try await propose(proposed(symbols[3], leverage: 20))
        let capped = try await decided(symbols[3], 1)
        XCTAssertEqual(capped.map(\.reason), [.leverageCap], summary(capped))
        check(try await readAll(Plan.self, subject: Subjects.planSized(symbols[3]), expected: 1).first?.leverage, 5)
        try await marketState(symbols[4], regimeFlip: true)
        try await propose(proposed(symbols[4], confidence: 0.6))
        let scaled = try await decided(symbols[4], 1)
        XCTAssertEqual(scaled.map(\.reason), [.killScoreScale], summary(scaled))
        let scaledPlan = try await readAll(Plan.self, subject: Subjects.planSized(symbols[4]), expected: 1).first
        let scaledNotional = try XCTUnwrap(Decimal.parse(scaledPlan?.quantity ?? "")) * XCTUnwrap(simulator.exchange.mark(symbols[4]))
        XCTAssertLessThan(scaledNotional, 200 * Decimal(0.99))

        // Rate limit: 2 entries per symbol in 5 minutes of event time; the third is blocked.
        for _ in 0..<3 {
            try await marketState(symbols[5])
            try await propose(proposed(symbols[5]))
        }
        check(try await decided(symbols[5], 3).map(\.reason), [.passed, .passed, .rateLimit])

        // CLOSE: quantity = |position|, reduce-only, no kill-score gate.
        var close = proposed(symbols[7])
        close.kind = .close
        close.side = .buy
        close.permitKind = .p26
        try await propose(close)
        check(try await decided(symbols[7], 1).map(\.verdict), [.pass])
        let closing = try await readAll(Plan.self, subject: Subjects.planSized(symbols[7]), expected: 1).first
        XCTAssertEqual(closing?.quantity, String(held.positionAmt.dropFirst()))
        XCTAssertTrue(closing?.reduceOnly == true)

        // HALTED blocks entries and exits at the governor too.
        try await setTradingState(.halted)
        try await marketState(symbols[0])
        try await propose(proposed(symbols[0]))
        check(try await decided(symbols[0], 2).last?.reason, .tradingHalted)
    }

    func testTotalNotionalCapScalesThenBlocksEntries() async throws {
        let symbols = Array(simulator.exchange.symbols[30..<33])
        _ = try await openPosition(symbols[0], long: true, notional: 150)
        _ = try await startPipeline(["governor": ["max_total_notional": "250"]])
        // 250 in all, 150 held: the entry gets the ~100 left (MODIFY), not 200.
        try await marketState(symbols[1])
        try await propose(proposed(symbols[1]))
        let room = try await decisions("governor", symbols[1], expected: 1)
        XCTAssertEqual(room.map(\.verdict), [.modify], summary(room))
        XCTAssertEqual(room.first?.reason, .notionalCap)
        let sized = try await readAll(Plan.self, subject: Subjects.planSized(symbols[1]), expected: 1).first
        let notional = try XCTUnwrap(Decimal.parse(sized?.quantity ?? "")) * XCTUnwrap(simulator.exchange.mark(symbols[1]))
        XCTAssertLessThan(notional, 110)
        // Another 150 held: no room at all.
        _ = try await openPosition(symbols[2], long: false, notional: 150)
        try await marketState(symbols[1])
        try await propose(proposed(symbols[1]))
        check(try await decisions("governor", symbols[1], expected: 2).last?.reason, .notionalCap)
        check(try await decisions("governor", symbols[1], expected: 2).last?.verdict, .block)
    }

    /// Three governors on three hosts, entries for 24 symbols at once: the notional they pass
    /// together stays under `max_total_notional`, because the room is reserved by compare-and-set
    /// in `qt_state`, not judged from each host's own view of the ledger.
    func testThreeGovernorsTogetherNeverPassMoreThanTheTotalNotionalCap() async throws {
        let symbols = Array(simulator.exchange.symbols.prefix(24))
        let settings = ["max_total_notional": "1000", "max_notional_per_trade": "200"]
        for host in ["gov-a", "gov-b", "gov-c"] { _ = try await startPipeline(["governor": settings], host: host) }
        try await waitUntilBalanced("governor", hosts: ["gov-a", "gov-b", "gov-c"], seconds: 40)
        var plans: [Plan] = []
        for symbol in symbols {
            try await marketState(symbol)
            plans.append(proposed(symbol))
        }
        for plan in plans { try await propose(plan) }
        var decided: [Decision] = []
        for symbol in symbols { decided += try await decisions("governor", symbol, expected: 1) }
        XCTAssertEqual(decided.count, symbols.count)
        let passed = decided.filter { $0.verdict != .block }
        let total = passed.compactMap { Decimal.parse($0.after["notional"] ?? "") }.reduce(Decimal(0), +)
        XCTAssertLessThanOrEqual(total, 1000, "three governors passed \(total.plainString) USDT in all")
        XCTAssertGreaterThanOrEqual(total, 800, "the room was used: \(summary(decided))")
        // Blocked for the cap, or for what little room was left being under the exchange's minimum.
        XCTAssertTrue(decided.filter { $0.verdict == .block }.allSatisfy { [.notionalCap, .minNotional].contains($0.reason) }, summary(decided))
        XCTAssertGreaterThan(Set(decided.map(\.meta.producer)).count, 1, "more than one host decided")
        print("three governors: \(passed.count) entries passed, \(total.plainString) USDT of 1000")
    }

    func testMinimumNotionalBlocksTinyEntries() async throws {
        let symbol = simulator.exchange.symbols[20]
        _ = try await startPipeline(["governor": ["max_notional_per_trade": "1"]])
        try await marketState(symbol)
        try await propose(proposed(symbol))
        let blocked = try await decisions("governor", symbol, expected: 1)
        XCTAssertEqual(blocked.map(\.reason), [.minNotional], summary(blocked))
    }

    func testPortfolioGateRulesForEntriesAndExits() async throws {
        let symbols = Array(simulator.exchange.symbols[20..<26])
        try await activeUniverse(symbols)
        let long = try await openPosition(symbols[3], long: true)
        _ = try await openPosition(symbols[4], long: false)
        var hold = PluginState()
        hold.symbols = [symbols[1]]
        try await bus.keyValue("qt_state").put("position-brain.reconcile", message: hold)
        _ = try await startPipeline(["portfolio-gate": [:]])

        // No fresh account snapshot: entries blocked (STALE_INPUT); then margin ratio over the cap.
        try await submit(try await entryPlan(symbols[0], long: true))
        check(try await decisions("portfolio-gate", symbols[0], expected: 1).map(\.reason), [.staleInput])
        try await freshAccount(marginRatio: 0.7)
        try await submit(try await entryPlan(symbols[0], long: true))
        check(try await decisions("portfolio-gate", symbols[0], expected: 2).last?.reason, .marginRatio)
        try await freshAccount()
        try await submit(try await entryPlan(symbols[0], long: true))
        check(try await decisions("portfolio-gate", symbols[0], expected: 3).last?.verdict, .pass)
        // Reconcile hold blocks entries; an open position blocks another entry (no pyramiding).
        try await submit(try await entryPlan(symbols[1], long: true))
        check(try await decisions("portfolio-gate", symbols[1], expected: 1).map(\.reason), [.reconcileHold])
        try await submit(try await entryPlan(symbols[3], long: true))
        check(try await decisions("portfolio-gate", symbols[3], expected: 1).map(\.reason), [.positionExists])

        // Exits: wrong side blocked, no position blocked, oversized clamped (MODIFY), exact passes.
        var wrongSide = try await closePlan(symbols[3])
        wrongSide.side = .buy
        wrongSide.planID += "-wrong"
        try await submit(wrongSide)
        check(try await decisions("portfolio-gate", symbols[3], expected: 2).last?.reason, .wrongSide)
        var nothing = try await closePlan(symbols[3])
        nothing.symbol = symbols[5]
        nothing.planID += "-none"
        try await submit(nothing)
        check(try await decisions("portfolio-gate", symbols[5], expected: 1).map(\.reason), [.noPosition])
        var oversized = try await closePlan(symbols[3])
        oversized.kind = .reduce
        oversized.quantity = (try XCTUnwrap(Decimal.parse(long.positionAmt)) * 3).plainString
        try await submit(oversized)
        let clamped = try await decisions("portfolio-gate", symbols[3], expected: 3).last
        XCTAssertEqual(clamped?.verdict, .modify)
        XCTAssertEqual(clamped?.reason, .quantityClamped)
        let approved = try await readAll(Plan.self, subject: Subjects.planApproved(symbols[3]), expected: 1).first
        XCTAssertEqual(approved?.quantity, long.positionAmt)
        let permit = try await bus.keyValue("qt_permits").get(Permit.self, oversized.planID)
        XCTAssertNotNil(permit, "a pass writes the permit")

        // HALTED: the exit of an open position is blocked too (the one gate an exit does not pass).
        try await setTradingState(.halted)
        try await submit(try await closePlan(symbols[4]))
        check(try await decisions("portfolio-gate", symbols[4], expected: 1).map(\.reason), [.tradingHalted])
    }

    func testExecutorBlocksWithoutPermitAfterExpiryAndAtAStaleRevision() async throws {
        let symbols = Array(simulator.exchange.symbols[20..<23])
        _ = try await openPosition(symbols[2], long: true)
        _ = try await startPipeline(["executor": [:]])
        func approve(_ plan: Plan, permit: Bool) async throws {
            if permit {
                var granted = Permit()
                granted.planID = plan.planID
                granted.kind = plan.permitKind
                granted.symbol = plan.symbol
                granted.planDigest = PlanDigest.of(plan)
                try await bus.keyValue("qt_permits").put(plan.planID, message: granted)
            }
            _ = try await bus.publish(OutgoingMessage(plan, subject: Subjects.planApproved(plan.symbol), id: plan.planID, producer: "test@portfolio-gate"))
        }
        let ordersBefore = simulator.exchange.acceptedOrders
        try await approve(try await entryPlan(symbols[0], long: true), permit: false)
        var expired = try await entryPlan(symbols[1], long: true)
        expired.expiresAtMs = Int64(Date().timeIntervalSince1970 * 1000) - 1
        try await approve(expired, permit: true)
        var stale = try await closePlan(symbols[2])
        stale.ledgerRevision -= 1
        stale.expiresAtMs = Int64(Date().timeIntervalSince1970 * 1000) + 60_000
        try await approve(stale, permit: true)
        check(try await decisions("executor", symbols[0], expected: 1).map(\.reason), [.permitMissing])
        check(try await decisions("executor", symbols[1], expected: 1).map(\.reason), [.expired])
        check(try await decisions("executor", symbols[2], expected: 1).map(\.reason), [.stale])
        XCTAssertEqual(simulator.exchange.acceptedOrders, ordersBefore, "no order for a blocked plan")
        let claim = try await ledger(symbols[2])?.pendingClientOrderID
        XCTAssertEqual(claim, "", "a blocked plan leaves no claim")
    }

    /// ai-agent on closed bars: features once 60 bars are in, intents for universe symbols only,
    /// ids from (symbol, bar close time, model) so a replay makes the same intents.
    func testAIAgentSignalsOnlyForUniverseSymbols() async throws {
        let (inside, outside) = ("AAAUSDT", "BBBUSDT")
        try await activeUniverse([inside])
        _ = try await startPipeline(["ai-agent": [:]])
        for symbol in [inside, outside] {
            let bars = (0..<80).map { index -> OutgoingMessage in
                let close = 100 * pow(1.003, Double(index)) * (1 + 0.0002 * (index % 2 == 0 ? 1 : -1))
                var bar = Kline()
                bar.symbol = symbol
                bar.openTimeMs = eventTimeMs + Int64(index) * 60_000
                bar.closeTimeMs = bar.openTimeMs + 59_999
                bar.open = String(close)
                bar.high = String(close * 1.001)
                bar.low = String(close * 0.999)
                bar.close = String(close)
                bar.volume = String(1_000 + index % 5 * 100)
                bar.meta.eventTimeMs = bar.closeTimeMs
                return try! OutgoingMessage(bar, subject: Subjects.kline(symbol), id: "\(symbol)-\(index)", producer: "test@market-feed")
            }
            _ = try await bus.publishBatch(bars)
        }
        let intents = try await readAll(TradeIntent.self, subject: Subjects.intent(inside), expected: 21)
        XCTAssertEqual(intents.count, 21, "one per bar from the 60th on")
        XCTAssertEqual(Set(intents.map(\.action)), [.openLong])
        XCTAssertEqual(intents.first?.confidence ?? 0, 0.5 + 0.5 * 2 / 3, accuracy: 1e-12)
        XCTAssertEqual(intents.first?.model, "technical-ensemble-v1")
        XCTAssertEqual(intents.first?.features.count, 18)
        let firstClose = eventTimeMs + 59 * 60_000 + 59_999
        XCTAssertEqual(intents.first?.intentID, ContentID.hash("ai-agent", inside, String(firstClose), "technical-ensemble-v1"))
        XCTAssertEqual(intents.first?.meta.eventTimeMs, firstClose)
        let lastOpen = eventTimeMs + 79 * 60_000
        try await waitUntil("ai-agent has every bar of \(outside)", seconds: 30) {
            guard let state = try await bus.keyValue("qt_state").get(PluginState.self, "ai-agent.bars-\(outside)")?.value else { return false }
            return try BarWindow(serializedBytes: state.payload).lastOpenTimeMs == lastOpen
        }
        check(try await count(Subjects.intent(outside)), 0)
    }

    /// The rollout steps max_active up at each due refresh, and holds once an alert has fired.
    func testUniverseRolloutStepsUpUnlessAnAlertFired() async throws {
        let settings = ["check_s": "0.2", "refresh_s": "0", "rollout": "\"2,4,6\"", "rollout_step_s": "0", "min_ts": "0"]
        let free = try await startPipeline(["universe": settings], host: "universe-a")
        try await waitUntil("the rollout reaches its last step", seconds: 20) {
            try await bus.keyValue("qt_universe").get(Universe.self, "active")?.value.maxActive == 6
        }
        let stepped = try await XCTUnwrapAsync(try await bus.keyValue("qt_universe").get(Universe.self, "active")).value
        XCTAssertEqual(stepped.entries.filter(\.active).count, 6)
        await stopHost(free)

        // Start over, one step per 2 s; an alert right after the first step holds the rollout.
        try await bus.keyValue("qt_universe").delete("active")
        try await bus.keyValue("qt_state").delete("universe.rollout")
        var slow = settings
        slow["rollout_step_s"] = "2"
        _ = try await startPipeline(["universe": slow], host: "universe-b")
        try await waitUntil("the first universe", seconds: 20) {
            try await bus.keyValue("qt_universe").get(Universe.self, "active") != nil
        }
        var alert = Alert()
        alert.kind = .reconcile
        alert.message = "test"
        alert.meta.eventTimeMs = Int64(Date().timeIntervalSince1970 * 1000)
        _ = try await bus.publish(OutgoingMessage(alert, subject: Subjects.alert(.reconcile), id: "alert-1", producer: "test@position-brain"))
        try await Task.sleep(nanoseconds: 3_000_000_000)
        let held = try await XCTUnwrapAsync(try await bus.keyValue("qt_universe").get(Universe.self, "active")).value
        XCTAssertGreaterThan(held.version, 5, "refreshed all along")
        check(try await bus.keyValue("qt_universe").get(Universe.self, "active")?.value.maxActive, 2)
    }
}
