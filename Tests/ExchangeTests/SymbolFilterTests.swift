import Exchange
import XCTest

final class SymbolFilterTests: XCTestCase {
    let btc = SymbolFilters(symbol: "BTCUSDT", tickSize: 0.1, stepSize: 0.001, minQty: 0.001, maxQty: 1_000, minNotional: 100)
    let sol = SymbolFilters(symbol: "SOLUSDT", tickSize: 0.01, stepSize: 1, minQty: 1, maxQty: 100_000, minNotional: 5)

    func testQuantityRoundsDownToTheStep() {
        XCTAssertEqual(btc.roundQuantityDown(Decimal(string: "0.0019")!), Decimal(string: "0.001")!)
        XCTAssertEqual(btc.roundQuantityDown(Decimal(string: "1.23456")!), Decimal(string: "1.234")!)
        // 0.1 + 0.2 in binary floating point is 0.30000000000000004; in Decimal it is 0.3 and stays 0.3.
        XCTAssertEqual(btc.roundQuantityDown(Decimal(string: "0.1")! + Decimal(string: "0.2")!), Decimal(string: "0.3")!)
        XCTAssertEqual(sol.roundQuantityDown(Decimal(string: "7.99")!), 7)
        XCTAssertEqual(sol.roundQuantityDown(Decimal(string: "0.99")!), 0)
    }

    func testPriceRoundsToTheTickInTheAskedDirection() {
        XCTAssertEqual(btc.roundPrice(Decimal(string: "60000.06")!, .down), Decimal(string: "60000.0")!)
        XCTAssertEqual(btc.roundPrice(Decimal(string: "60000.01")!, .up), Decimal(string: "60000.1")!)
        XCTAssertEqual(btc.roundPrice(Decimal(string: "60000.05")!, .nearest), Decimal(string: "60000.1")!)
        XCTAssertEqual(btc.roundPrice(Decimal(string: "60000.04")!, .nearest), Decimal(string: "60000.0")!)
        XCTAssertTrue(btc.isOnTick(Decimal(string: "123.4")!))
        XCTAssertFalse(btc.isOnTick(Decimal(string: "123.45")!))
    }

    func testAQuantityThatRoundsToZeroIsAnErrorNotZero() {
        XCTAssertThrowsError(try sol.marketQuantity(Decimal(string: "0.5")!, price: 150, reduceOnly: false)) { error in
            XCTAssertEqual(error as? FilterError, .roundsToZero(symbol: "SOLUSDT", quantity: Decimal(string: "0.5")!, stepSize: 1))
        }
        XCTAssertThrowsError(try sol.marketQuantity(0, price: 150, reduceOnly: false))
    }

    func testMinimumNotionalBlocksEntriesButNotReduceOnlyExits() throws {
        // 0.001 BTC at 60,000 = 60 USDT < 100.
        XCTAssertThrowsError(try btc.marketQuantity(Decimal(string: "0.0015")!, price: 60_000, reduceOnly: false)) { error in
            guard case .belowMinimumNotional(_, let notional, let minimum)? = error as? FilterError else { return XCTFail("\(error)") }
            XCTAssertEqual(notional, 60)
            XCTAssertEqual(minimum, 100)
        }
        XCTAssertEqual(try btc.marketQuantity(Decimal(string: "0.0015")!, price: 60_000, reduceOnly: true), Decimal(string: "0.001")!)
        XCTAssertEqual(try btc.marketQuantity(Decimal(string: "0.0021")!, price: 60_000, reduceOnly: false), Decimal(string: "0.002")!)
    }

    func testQuantityLimits() {
        XCTAssertThrowsError(try btc.marketQuantity(2_000, price: 60_000, reduceOnly: false)) { error in
            XCTAssertEqual(error as? FilterError, .aboveMaximumQuantity(symbol: "BTCUSDT", quantity: 2_000, maximum: 1_000))
        }
        let withMinimum = SymbolFilters(symbol: "X", tickSize: 0.1, stepSize: 0.001, minQty: 0.01, maxQty: 10, minNotional: 0)
        XCTAssertThrowsError(try withMinimum.marketQuantity(Decimal(string: "0.005")!, price: 10, reduceOnly: false)) { error in
            XCTAssertEqual(error as? FilterError,
                           .belowMinimumQuantity(symbol: "X", quantity: Decimal(string: "0.005")!, minimum: Decimal(string: "0.01")!))
        }
    }

    func testDecimalStringsParseStrictlyAndPrintPlain() {
        XCTAssertEqual(Decimal.parse("0.00100000"), Decimal(string: "0.001"))
        XCTAssertNil(Decimal.parse(""))
        XCTAssertNil(Decimal.parse("abc"))
        XCTAssertEqual(Decimal.parse("-1.5e-3"), Decimal(string: "-0.0015"))
        XCTAssertEqual(Decimal.parse(".5"), Decimal(string: "0.5"))
        XCTAssertEqual(Decimal.parse("+7."), 7)
        for whole in ["1.5-2", "1e", "1e300", "NaN", "inf", "-", ".", "1.2.3", "--1", "1e+", "٣", "½", "1 2", "0x10"] {
            XCTAssertNil(Decimal.parse(whole), "\(whole) parses whole or not at all")
        }
        XCTAssertEqual(Decimal(string: "0.00000001")!.plainString, "0.00000001")
        XCTAssertEqual(Decimal(string: "60000.1")!.plainString, "60000.1")
        XCTAssertEqual(Decimal(-2).plainString, "-2")
    }

    func testUnknownEnumValueFromTheExchangeIsADecodingError() {
        let json = #"{"orderId":1,"symbol":"BTCUSDT","status":"SOMETHING_NEW","clientOrderId":"a","price":"0","avgPrice":"0","origQty":"1","executedQty":"1","cumQuote":"1","timeInForce":"GTC","type":"MARKET","reduceOnly":false,"closePosition":false,"side":"BUY","positionSide":"BOTH","stopPrice":"0","workingType":"CONTRACT_PRICE","priceProtect":false,"origType":"MARKET","updateTime":1}"#
        XCTAssertThrowsError(try JSONDecoder().decode(OrderResponse.self, from: Data(json.utf8)))
    }
}
