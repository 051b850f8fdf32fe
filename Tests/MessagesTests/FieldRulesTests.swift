import Messages
import Numbers
import XCTest

/// The field rules each message type declares (`FieldRules`), as the host applies them on
/// consume, on KV reads and writes, and on publish.
final class FieldRulesTests: XCTestCase {
    func sizedPlan() -> Plan {
        var plan = Plan()
        plan.meta.eventTimeMs = 1_800_000_000_000
        plan.symbol = "BTCUSDT"
        plan.planID = "p1"
        plan.kind = .open
        plan.side = .buy
        plan.quantity = "0.010"
        plan.stopDistPct = 0.02
        plan.confidence = 0.7
        plan.leverage = 3
        return plan
    }

    func testAWellFormedPlanPasses() {
        XCTAssertNil(FieldRules.problem(sizedPlan()))
    }

    func testAnInfiniteStopDistanceIsNamedWithItsValue() {
        var plan = sizedPlan()
        plan.stopDistPct = .infinity
        XCTAssertEqual(FieldRules.problem(plan), "Plan.stop_dist_pct is inf, expected a finite number in 0.0…0.999999")
    }

    func testDecimalStringsParseWholeOrFail() {
        for bad in ["NaN", "1.5-2", "1e300", "", "٣", " 1", "1,5", "+", "."] where !bad.isEmpty {
            var plan = sizedPlan()
            plan.quantity = bad
            XCTAssertNotNil(FieldRules.problem(plan), bad)
        }
        for (text, sign) in [("1.5", DecimalLiteral.Sign.positive), ("-0.001", .negative), ("0.000", .zero), ("1e-8", .positive), (".5", .positive)] {
            XCTAssertEqual(DecimalLiteral.sign(of: text), sign, text)
        }
        XCTAssertNil(DecimalLiteral.sign(of: "1.5-2"))
        XCTAssertNil(Decimal.parse("1.5-2"), "never a prefix")
    }

    /// Equal numbers written one way (plan digests compare quantities as numbers, without Foundation).
    func testPlainLiteralsHaveOneCanonicalSpelling() {
        let cases = [("0.50", "0.5"), (".5", "0.5"), ("+0.5", "0.5"), ("00012.3400", "12.34"), ("1.", "1"), ("1.000", "1"),
                     ("-0.0", "0"), ("0", "0"), ("-3.10", "-3.1"), ("61234.5", "61234.5"), ("100", "100")]
        for (text, canonical) in cases {
            XCTAssertEqual(DecimalLiteral.canonical(text), canonical, text)
            XCTAssertEqual(Decimal.parse(text), Decimal.parse(canonical), "\(text) is the number \(canonical)")
        }
        for other in ["1e-8", "", ".", "-", "1.5-2", "1,5", " 1", "1.2.3", "0x10"] {
            XCTAssertNil(DecimalLiteral.canonical(other), other)
        }
    }

    func testSignsAndRanges() {
        var plan = sizedPlan()
        plan.quantity = "-1"
        XCTAssertEqual(FieldRules.problem(plan), "Plan.quantity is \"-1\", expected a decimal string > 0")
        plan = sizedPlan()
        plan.leverage = 500
        XCTAssertEqual(FieldRules.problem(plan), "Plan.leverage is 500, expected 0…125")
        plan = sizedPlan()
        plan.meta.eventTimeMs = -1
        XCTAssertEqual(FieldRules.problem(plan), "Plan.meta.event_time_ms is -1, expected ≥ 0")

        var state = MarketState()
        state.symbol = "ETHUSDT"
        state.pTrend = 1e300
        XCTAssertEqual(FieldRules.problem(state), "MarketState.p_trend is 1e+300, expected a finite number in 0.0…1.0")
        state.pTrend = 0.5
        state.sigma = -.nan
        XCTAssertNotNil(FieldRules.problem(state))
        state.sigma = 1e300
        XCTAssertEqual(FieldRules.problem(state), "MarketState.sigma is 1e+300, expected a finite number in 0.0…1e12")
        state.sigma = 0.01
        state.mu = -1e13
        XCTAssertEqual(FieldRules.problem(state), "MarketState.mu is -10000000000000.0, expected a finite number in -1e12…1e12")
    }

    func testSymbolsAreCheckedAndShownEscaped() {
        var kline = Kline()
        kline.symbol = "BTC\r\nPUB x 1"
        (kline.open, kline.high, kline.low, kline.close) = ("1", "1", "1", "1")
        XCTAssertEqual(FieldRules.problem(kline), "Kline.symbol is \"BTC\\r\\nPUB x 1\", expected a symbol matching [A-Z0-9]{2,32}")
        kline.symbol = "币安USDT"
        XCTAssertNotNil(FieldRules.problem(kline))
    }

    func testNestedMessagesNameTheirPath() {
        var record = OrderRecord()
        record.symbol = "BTCUSDT"
        record.plan = sizedPlan()
        record.plan.confidence = .nan
        XCTAssertEqual(FieldRules.problem(record), "OrderRecord.plan.confidence is nan, expected a finite number in 0.0…1.0")
        var intent = TradeIntent()
        intent.symbol = "BTCUSDT"
        intent.features = ["rsi": .infinity]
        XCTAssertEqual(FieldRules.problem(intent), "TradeIntent.features[rsi] is inf, expected a finite number in -1e12…1e12")
    }

    func testTypesWithoutNumbersHaveNoRules() {
        var alert = Alert()
        alert.message = "NaN"
        XCTAssertNil(FieldRules.problem(alert))
    }
}
