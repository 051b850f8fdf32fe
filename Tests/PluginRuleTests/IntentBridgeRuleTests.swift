import Host
import Identity
import Messages
import Plugins
import XCTest

/// intent-bridge: one test per rule (DESIGN.md §5). Each intent gets one decision.
final class IntentBridgeRuleTests: RuleTestCase {
    let symbol = "AAAUSDT"

    override func setUp() async throws {
        try await super.setUp()
        try await host.start(IntentBridgePlugin.registration)
        try await activeUniverse([symbol])
    }

    func intent(_ action: IntentAction, symbol: String? = nil, confidence: Double = 0.8) -> TradeIntent {
        var intent = TradeIntent()
        intent.meta.eventTimeMs = nextEventTime()
        intent.symbol = symbol ?? self.symbol
        intent.intentID = ContentID.hash("rule-intent", intent.symbol, String(eventTimeMs))
        intent.action = action
        intent.confidence = confidence
        intent.leverage = 3
        intent.model = "test"
        return intent
    }

    func send(_ intent: TradeIntent, id: String? = nil) async throws { try await send(intent, on: Subjects.intent(intent.symbol), id: id) }

    func testAnOpenIntentForAFlatUniverseSymbolBecomesAProposedPlan() async throws {
        let open = intent(.openShort)
        try await send(open)
        let decided = await decisions("intent-bridge", symbol)
        XCTAssertEqual(decided.map(\.verdict), [.pass], summary(decided))
        let proposed = await plans(Subjects.planProposed(symbol))
        let plan = try XCTUnwrap(proposed.first)
        XCTAssertEqual(plan.kind, .open)
        XCTAssertEqual(plan.side, .sell)
        XCTAssertEqual(plan.leverage, 3)
        XCTAssertEqual(plan.quantity, "", "the governor sizes an entry")
        XCTAssertEqual(plan.planID, ContentID.hash("intent-bridge", open.intentID))
        XCTAssertEqual(plan.origin, open.intentID)
    }

    /// Freshness by JetStream's stored time: an intent that waited past `max_intent_age_s` (a
    /// backlog, a replaying durable) is skipped STALE, whatever its event time says.
    func testAnIntentThatWaitedPastTheMaxAgeIsSkippedStale() async throws {
        let open = intent(.openLong)
        try await host.publish(open, subject: Subjects.intent(symbol), id: open.intentID)
        await host.advance(byMs: 121_000)
        let decided = await decisions("intent-bridge", symbol)
        XCTAssertEqual(decided.map(\.reason), [.stale], summary(decided))
        let proposed = await plans(Subjects.planProposed(symbol))
        XCTAssertEqual(proposed.count, 0)
    }

    func testAnIntentWithoutAnEventTimeOrWithABadSymbolIsDeadLettered() async throws {
        var timeless = intent(.openLong)
        timeless.meta.eventTimeMs = 0
        try await send(timeless)
        var spaced = intent(.openLong, symbol: "AAA USDT")
        spaced.intentID += "-spaced"
        try await host.publish(spaced, subject: "qt.signal.intent.AAAUSDT", id: spaced.intentID)
        await host.run()
        let letters = await host.deadLetters.map(\.reason)
        XCTAssertEqual(letters.count, 2, letters.joined(separator: "\n"))
        XCTAssertTrue(letters[0].contains("event time 0"), letters[0])
        XCTAssertTrue(letters[1].contains("[A-Z0-9]{2,32}"), letters[1])
    }

    func testHoldMakesNoPlan() async throws {
        try await send(intent(.hold))
        let reasons = await reasons("intent-bridge", symbol)
        XCTAssertEqual(reasons, [.hold])
        let proposed = await plans(Subjects.planProposed(symbol))
        XCTAssertTrue(proposed.isEmpty)
    }

    func testTheSameIntentTwiceMakesOnePlan() async throws {
        let open = intent(.openLong)
        try await send(open, id: "first")
        try await send(open, id: "again, after the duplicate window")
        let decided = await decisions("intent-bridge", symbol)
        XCTAssertEqual(decided.map(\.reason), [.passed, .duplicate], summary(decided))
        let proposed = await plans(Subjects.planProposed(symbol))
        XCTAssertEqual(proposed.count, 1)
    }

    func testAnEntryOutsideTheUniverseIsSkipped() async throws {
        try await send(intent(.openLong, symbol: "ZZZUSDT"))
        let reasons = await reasons("intent-bridge", "ZZZUSDT")
        XCTAssertEqual(reasons, [.notInUniverse])
    }

    func testAnEntryBelowMinimumConfidenceIsSkipped() async throws {
        try await send(intent(.openLong, confidence: 0.54))
        try await send(intent(.openLong, confidence: 0.56))
        let reasons = await reasons("intent-bridge", symbol)
        XCTAssertEqual(reasons, [.lowConfidence, .passed], "min_confidence 0.55 by default")
    }

    func testAnEntryOnAHeldSymbolIsSkipped() async throws {
        try await position(symbol, amount: "-2")
        try await send(intent(.openLong))
        let reasons = await reasons("intent-bridge", symbol)
        XCTAssertEqual(reasons, [.positionExists], "no pyramiding, no implicit flip")
    }

    func testACloseWithoutAPositionIsSkipped() async throws {
        try await send(intent(.close))
        let reasons = await reasons("intent-bridge", symbol)
        XCTAssertEqual(reasons, [.noPosition])
    }

    func testACloseOfAPositionIsReduceOnlyOnTheClosingSide() async throws {
        try await position(symbol, amount: "-2.5")
        try await send(intent(.close))
        let reasons = await reasons("intent-bridge", symbol)
        XCTAssertEqual(reasons, [.passed])
        let proposed = await plans(Subjects.planProposed(symbol))
        let close = try XCTUnwrap(proposed.first)
        XCTAssertEqual(close.kind, .close)
        XCTAssertEqual(close.side, .buy)
        XCTAssertEqual(close.quantity, "2.5")
        XCTAssertTrue(close.reduceOnly)
    }

    func testAnIntentWithoutAnActionIsDeadLetteredNotDefaulted() async throws {
        try await send(intent(.unspecified))
        let dead = await host.deadLetters
        XCTAssertEqual(dead.map(\.subject), [Subjects.intent(symbol)])
        XCTAssertTrue(dead.first?.reason.contains("not an IntentAction") == true, dead.first?.reason ?? "")
        let decided = await decisions("intent-bridge", symbol)
        XCTAssertTrue(decided.isEmpty)
    }
}
