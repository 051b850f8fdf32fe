import Exchange
import Host
import InMemoryHost
import Messages
@testable import Plugins
import XCTest

/// One symbol rule wherever a symbol becomes a subject token or a KV key (`[A-Z0-9]{2,32}`), and
/// no subject a plugin publishes on may carry white space, CR/LF or wildcards.
final class SymbolRuleTests: XCTestCase {
    func testTheSymbolRule() {
        for good in ["BTCUSDT", "1000PEPEUSDT", "OP", String(repeating: "A", count: 32)] {
            XCTAssertTrue(Symbols.isValid(good), good)
        }
        for bad in ["", "B", "btcusdt", "BTC USDT", "BTC.USDT", "BTC*", ">", "BTC\r\nPUB x 1", "币安人生USDT", "ÄBCUSDT", String(repeating: "A", count: 33)] {
            XCTAssertFalse(Symbols.isValid(bad), bad.debugDescription)
        }
    }

    func testTheUniverseSkipsListedSymbolsOutsideTheRule() {
        func listing(_ symbol: String) -> SymbolInfo {
            SymbolInfo(symbol: symbol, pair: symbol, contractType: "PERPETUAL", status: "TRADING", baseAsset: "X", quoteAsset: "USDT",
                       marginAsset: "USDT", pricePrecision: 2, quantityPrecision: 3, filters: [], orderTypes: ["MARKET"], timeInForce: ["GTC"])
        }
        let info = ExchangeInfo(timezone: "UTC", serverTime: 0, rateLimits: [],
                                symbols: [listing("BTCUSDT"), listing("币安人生USDT"), listing("BAD SYMBOL"), listing("ETHUSDT")])
        let (tradable, skipped) = UniversePlugin.tradable(info)
        XCTAssertEqual(tradable, ["BTCUSDT", "ETHUSDT"])
        XCTAssertEqual(skipped, ["币安人生USDT", "BAD SYMBOL"])
    }

    func testNoSubjectWithWhiteSpaceOrControlCharactersIsPublishable() {
        XCTAssertTrue(Subjects.isPublishable("qt.plan.approved.BTCUSDT"))
        for bad in ["qt.plan.approved.BTC USDT", "qt.plan.approved.BTC\r\nPUB qt.x 1", "qt.plan.approved.*", "qt..x", "qt.plan.approved.币"] {
            XCTAssertFalse(Subjects.isPublishable(bad), bad.debugDescription)
        }
    }

    /// A plan whose symbol breaks the rule is a dead letter at the first gate, not a subject.
    func testAPlanWithASymbolOutsideTheRuleIsDeadLettered() throws {
        var plan = Plan()
        plan.planID = "p1"
        plan.symbol = "BTC USDT"
        plan.kind = .open
        plan.side = .buy
        XCTAssertThrowsError(try PlanCheck.validate(plan, subject: Subjects.planProposed(plan.symbol), expected: Subjects.planProposed(plan.symbol))) {
            guard case PluginError.permanent(let why) = $0 else { return XCTFail("\($0)") }
            XCTAssertTrue(why.contains("[A-Z0-9]{2,32}"), why)
        }
    }
}
