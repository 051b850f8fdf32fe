import Exchange
import Foundation
import Host
import Identity
import Messages
import Plugins
import XCTest

/// governor: one test per rule (DESIGN.md §5, §6.4), sizing at the simulator's mark price.
final class GovernorRuleTests: RuleTestCase {
    var symbol: String { symbols[0] }

    func startGovernor(_ settings: [String: String] = [:]) async throws {
        let exchanges = try await startSimulator()
        let section = ExchangeSettings(baseURL: simulator!.baseURL)
        try await host.start(GovernorPlugin.registration(exchanges: exchanges), settings: settings, exchange: section)
    }

    func proposed(_ symbol: String? = nil, side: Messages.OrderSide = .buy, confidence: Double = 0.8, leverage: Int32 = 3) -> Plan {
        var plan = Plan()
        plan.meta.eventTimeMs = nextEventTime()
        plan.symbol = symbol ?? self.symbol
        plan.planID = ContentID.hash("rule-proposed", plan.symbol, String(eventTimeMs))
        plan.kind = .open
        plan.side = side
        plan.leverage = leverage
        plan.confidence = confidence
        plan.permitKind = .p33
        return plan
    }

    /// A proposed entry with fresh market state, handled.
    func propose(_ plan: Plan, freshState: Bool = true, regimeFlip: Bool = false) async throws {
        if freshState { try await marketState(plan.symbol, regimeFlip: regimeFlip, asOfMs: plan.meta.eventTimeMs) }
        try await send(plan, on: Subjects.planProposed(plan.symbol), id: plan.planID)
    }

    func sized(_ symbol: String) async -> [Plan] { await plans(Subjects.planSized(symbol)) }

    func notional(_ plan: Plan?) throws -> Decimal {
        try XCTUnwrap(Decimal.parse(plan?.quantity ?? "")) * mark(plan?.symbol ?? "")
    }

    func testAnEntryIsSizedToTheNotionalPerTradeWithTheStopDistance() async throws {
        try await startGovernor()
        try await propose(proposed())
        let decided = await decisions("governor", symbol)
        XCTAssertEqual(decided.map(\.verdict), [.pass], summary(decided))
        let plan = await sized(symbol).first
        let notional = try notional(plan)
        XCTAssertGreaterThan(notional, 190, "200 USDT by default, rounded down to the step")
        XCTAssertLessThanOrEqual(notional, 202)
        XCTAssertEqual(plan?.stopDistPct, 0.02)
        XCTAssertEqual(plan?.leverage, 3)
    }

    func testMarketStateOlderThanThreeBarsBlocksAnEntry() async throws {
        try await startGovernor()
        let plan = proposed()
        try await marketState(symbol, asOfMs: plan.meta.eventTimeMs - 181_000)
        try await propose(plan, freshState: false)
        let reasons = await reasons("governor", symbol)
        XCTAssertEqual(reasons, [.staleInput])
    }

    func testAPlanFarOlderThanTheMarketStateIsStaleToo() async throws {
        try await startGovernor()
        let plan = proposed()
        try await marketState(symbol, asOfMs: plan.meta.eventTimeMs + 86_400_001)
        try await propose(plan, freshState: false)
        let reasons = await reasons("governor", symbol)
        XCTAssertEqual(reasons, [.staleInput], "a plan more than a day behind the state: the age check works both ways")
    }

    /// Failure isolation: one unreadable ledger entry holds its own symbol, and only that one.
    func testAnUnreadableLedgerEntryHoldsItsSymbolAndNoOther() async throws {
        try await startGovernor()
        var broken = LedgerEntry()
        broken.symbol = symbols[1]
        broken.positionAmt = "1.5-2"
        _ = try await host.kv("qt_ledger").put(symbols[1], broken)
        try await propose(proposed(symbols[1]))
        try await propose(proposed())
        let held = await reasons("governor", symbols[1])
        XCTAssertEqual(held, [.unreadableState])
        let other = await decisions("governor", symbol)
        XCTAssertEqual(other.map(\.verdict), [.pass], summary(other))
    }

    func testNoMarketStateBlocksAnEntry() async throws {
        try await startGovernor()
        try await propose(proposed(), freshState: false)
        let reasons = await reasons("governor", symbol)
        XCTAssertEqual(reasons, [.staleInput])
    }

    func testLeverageOverTheCapIsCapped() async throws {
        try await startGovernor(["max_leverage": "5"])
        try await propose(proposed(leverage: 20))
        let decided = await decisions("governor", symbol)
        XCTAssertEqual(decided.map(\.verdict), [.modify], summary(decided))
        XCTAssertEqual(decided.map(\.reason), [.leverageCap])
        let plan = await sized(symbol).first
        XCTAssertEqual(plan?.leverage, 5)
    }

    func testARegimeFlipScalesTheEntryDown() async throws {
        try await startGovernor()
        try await propose(proposed(confidence: 0.6), regimeFlip: true)
        let decided = await decisions("governor", symbol)
        XCTAssertEqual(decided.map(\.reason), [.killScoreScale], summary(decided))
        let plan = await sized(symbol).first
        XCTAssertLessThan(try notional(plan), 198)
    }

    func testAThirdEntryInFiveMinutesOfEventTimeIsRateLimited() async throws {
        try await startGovernor()
        for _ in 0..<3 { try await propose(proposed()) }
        let reasons = await reasons("governor", symbol)
        XCTAssertEqual(reasons, [.passed, .passed, .rateLimit], "rate_per_5m 2 by default; bars are a minute apart")
    }

    func testTheTotalNotionalCapScalesAnEntryToTheRoomLeft() async throws {
        try await startGovernor(["max_total_notional": "250"])
        try await position(symbols[1], amount: "1", entryPrice: "150")
        try await propose(proposed())
        let room = await decisions("governor", symbol)
        XCTAssertEqual(room.map(\.verdict), [.modify], summary(room))
        XCTAssertEqual(room.map(\.reason), [.notionalCap])
        let plan = await sized(symbol).first
        XCTAssertLessThan(try notional(plan), 101, "250 in all, 150 held: about 100 left")
    }

    func testNoRoomUnderTheTotalNotionalCapBlocksAnEntry() async throws {
        try await startGovernor(["max_total_notional": "250"])
        try await position(symbols[1], amount: "1", entryPrice: "150")
        try await position(symbols[2], amount: "-1", entryPrice: "150")
        try await propose(proposed())
        let full = await decisions("governor", symbol)
        XCTAssertEqual(full.map(\.verdict), [.block], summary(full))
        XCTAssertEqual(full.map(\.reason), [.notionalCap])
    }

    /// The rate record goes out beside the reservation, so a plan refused for room must not have
    /// started it: two refused entries, then room, and the third still passes under rate_per_5m 2.
    func testAnEntryRefusedForRoomIsNotCountedByTheRateLimit() async throws {
        try await startGovernor(["max_total_notional": "250"])
        _ = try await position(symbols[1], amount: "1", entryPrice: "150")
        _ = try await position(symbols[2], amount: "-1", entryPrice: "150")
        for _ in 0..<2 { try await propose(proposed()) }
        _ = try await position(symbols[1], amount: "0", entryPrice: "0")
        _ = try await position(symbols[2], amount: "0", entryPrice: "0")
        try await propose(proposed())
        let decided = await decisions("governor", symbol)
        XCTAssertEqual(decided.map(\.reason), [.notionalCap, .notionalCap, .passed], summary(decided))
        XCTAssertEqual(decided.map(\.verdict), [.block, .block, .pass])
        let rate = try await host.kv("qt_state").get(PluginState.self, "governor.rate-\(symbol)")
        XCTAssertEqual(rate?.value.values.count, 1, "only the plan that passed is counted")
    }

    func testAnEntryUnderTheExchangeMinimumNotionalIsBlocked() async throws {
        try await startGovernor(["max_notional_per_trade": "1"])
        try await propose(proposed())
        let reasons = await reasons("governor", symbol)
        XCTAssertEqual(reasons, [.minNotional])
    }

    func testACloseIsTheWholePositionReduceOnlyWithoutTheKillScoreGate() async throws {
        try await startGovernor()
        try await position(symbol, amount: "-3.5")
        var close = proposed(side: .buy)
        close.kind = .close
        close.permitKind = .p26
        try await marketState(symbol, regimeFlip: true, asOfMs: close.meta.eventTimeMs - 3_600_000)
        try await propose(close, freshState: false)
        let decided = await decisions("governor", symbol)
        XCTAssertEqual(decided.map(\.verdict), [.pass], summary(decided))
        let plan = await sized(symbol).first
        XCTAssertEqual(plan?.quantity, "3.5")
        XCTAssertEqual(plan?.reduceOnly, true)
    }

    /// An entry on the first symbol and the close of a position on the second, in `state`:
    /// the governor's reasons for each.
    func entryAndExit(in state: TradingState) async throws -> (entry: [ReasonCode], exit: [ReasonCode]) {
        try await startGovernor()
        try await position(symbols[1], amount: "2")
        try await tradingState(state)
        try await propose(proposed())
        var close = proposed(symbols[1], side: .sell)
        close.kind = .close
        close.permitKind = .p26
        try await propose(close)
        return (await reasons("governor", symbol), await reasons("governor", symbols[1]))
    }

    func testHaltedBlocksEntriesAndExits() async throws {
        let (entry, exit) = try await entryAndExit(in: .halted)
        XCTAssertEqual(entry, [.tradingHalted])
        XCTAssertEqual(exit, [.tradingHalted])
    }

    func testReducingBlocksEntriesButNotExits() async throws {
        let (entry, exit) = try await entryAndExit(in: .reducing)
        XCTAssertEqual(entry, [.tradingReducing])
        XCTAssertEqual(exit, [.passed], "R6: nothing but HALTED stops an exit")
    }
}
