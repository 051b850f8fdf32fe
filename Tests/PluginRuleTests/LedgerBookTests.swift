import Exchange
import Foundation
import Messages
@testable import Plugins
import XCTest

/// How executions change a ledger entry: averages on increase, realized PnL on reduction, the
/// flat entry cleared, a flip opened at the execution price, and each trade id applied once.
final class LedgerBookTests: XCTestCase {
    func execution(_ side: Messages.OrderSide, _ quantity: String, at price: String, pnl: String = "0", trades: [String]) -> LedgerBook.Execution {
        LedgerBook.Execution(side: side, quantity: Decimal.parse(quantity)!, price: Decimal.parse(price)!,
                             realizedPnl: Decimal.parse(pnl)!, tradeIDs: trades)
    }

    func testIncreaseAveragesReductionKeepsEntryAndFlatClears() throws {
        var entry = LedgerEntry()
        entry.symbol = "BTCUSDT"
        XCTAssertEqual(try LedgerBook.apply(execution(.buy, "2", at: "100", trades: ["1"]), to: &entry, eventTimeMs: 10), .applied)
        XCTAssertEqual(entry.positionAmt, "2")
        XCTAssertEqual(entry.openedAtMs, 10)
        _ = try LedgerBook.apply(execution(.buy, "2", at: "110", trades: ["2"]), to: &entry, eventTimeMs: 20)
        XCTAssertEqual(entry.positionAmt, "4")
        XCTAssertEqual(entry.entryPrice, "105")
        XCTAssertEqual(entry.openedAtMs, 10, "an increase keeps the opening time")
        entry.stopAlgoID = "qs-1"
        entry.stopPrice = "100"
        entry.tranchesTaken = 1
        _ = try LedgerBook.apply(execution(.sell, "1", at: "120", pnl: "15", trades: ["3"]), to: &entry, eventTimeMs: 30)
        XCTAssertEqual(entry.positionAmt, "3")
        XCTAssertEqual(entry.entryPrice, "105")
        XCTAssertEqual(entry.realizedPnl, "15")
        XCTAssertEqual(entry.stopAlgoID, "qs-1", "a reduction keeps the stop")
        _ = try LedgerBook.apply(execution(.sell, "3", at: "90", pnl: "-45", trades: ["4", "5"]), to: &entry, eventTimeMs: 40)
        XCTAssertEqual(entry.positionAmt, "0")
        XCTAssertEqual(entry.realizedPnl, "-30")
        XCTAssertEqual(entry.stopAlgoID, "")
        XCTAssertEqual(entry.stopPrice, "")
        XCTAssertEqual(entry.tranchesTaken, 0)
        XCTAssertEqual(entry.appliedFillIds, ["1", "2", "3", "4", "5"])
    }

    /// The executor prices its own fills from the order response and the claimed entry: the PnL
    /// must be the one the exchange books (the trade list's `realizedPnl`), long and short.
    func testRealizedPnlIsTheReducedPartTimesTheMoveFromTheEntry() throws {
        var long = LedgerEntry()
        long.symbol = "BTCUSDT"
        XCTAssertEqual(try LedgerBook.realizedPnl(side: .buy, quantity: 2, price: 100, against: long), 0, "a first entry realizes nothing")
        _ = try LedgerBook.apply(execution(.buy, "2", at: "100", trades: ["1"]), to: &long, eventTimeMs: 10)
        _ = try LedgerBook.apply(execution(.buy, "2", at: "110", trades: ["2"]), to: &long, eventTimeMs: 20)
        XCTAssertEqual(try LedgerBook.realizedPnl(side: .buy, quantity: 1, price: 130, against: long), 0, "an increase realizes nothing")
        XCTAssertEqual(try LedgerBook.realizedPnl(side: .sell, quantity: 1, price: 120, against: long), 15)
        XCTAssertEqual(try LedgerBook.realizedPnl(side: .sell, quantity: 4, price: 90, against: long), -60)
        XCTAssertEqual(try LedgerBook.realizedPnl(side: .sell, quantity: 9, price: 90, against: long), -60,
                       "only the part that closes realizes; the rest would open the other way")

        var short = LedgerEntry()
        short.symbol = "ETHUSDT"
        _ = try LedgerBook.apply(execution(.sell, "1.5", at: "2000", trades: ["3"]), to: &short, eventTimeMs: 10)
        XCTAssertEqual(try LedgerBook.realizedPnl(side: .buy, quantity: 0.5, price: 1900, against: short), 50)
        XCTAssertEqual(try LedgerBook.realizedPnl(side: .buy, quantity: 1.5, price: 2100, against: short), -150)

        var unreadable = long
        unreadable.entryPrice = "abc"
        XCTAssertThrowsError(try LedgerBook.realizedPnl(side: .sell, quantity: 1, price: 120, against: unreadable))
    }

    func testATradeIdIsAppliedOnce() throws {
        var entry = LedgerEntry()
        _ = try LedgerBook.apply(execution(.sell, "1.5", at: "10", trades: ["7"]), to: &entry, eventTimeMs: 1)
        let once = entry
        XCTAssertEqual(try LedgerBook.apply(execution(.sell, "1.5", at: "10", trades: ["7"]), to: &entry, eventTimeMs: 2), .alreadyApplied)
        XCTAssertEqual(entry, once)
        XCTAssertEqual(entry.positionAmt, "-1.5")
    }

    /// The executor records its own order's fill by the order id; a trade of that order arriving as
    /// a `Fill` later (position-brain after `qt_orders` forgot the order) is the same fill.
    func testATradeOfAnOrderAppliedByItsOrderIdIsAlreadyApplied() throws {
        var entry = LedgerEntry()
        _ = try LedgerBook.apply(execution(.buy, "2", at: "10", trades: [LedgerBook.orderFillID(501)]), to: &entry, eventTimeMs: 1)
        let once = entry
        var trade = execution(.buy, "2", at: "10", trades: ["9001"])
        trade.exchangeOrderID = 501
        XCTAssertEqual(try LedgerBook.apply(trade, to: &entry, eventTimeMs: 2), .alreadyApplied)
        XCTAssertEqual(entry, once)
        trade.exchangeOrderID = 502
        XCTAssertEqual(try LedgerBook.apply(trade, to: &entry, eventTimeMs: 3), .applied, "another order's trade is new")
        XCTAssertEqual(entry.positionAmt, "4")
    }

    func testCrossingZeroOpensTheRestAtTheExecutionPrice() throws {
        var entry = LedgerEntry()
        _ = try LedgerBook.apply(execution(.buy, "1", at: "50", trades: ["1"]), to: &entry, eventTimeMs: 1)
        entry.tranchesTaken = 2
        _ = try LedgerBook.apply(execution(.sell, "3", at: "60", trades: ["2"]), to: &entry, eventTimeMs: 5)
        XCTAssertEqual(entry.positionAmt, "-2")
        XCTAssertEqual(entry.entryPrice, "60")
        XCTAssertEqual(entry.openedAtMs, 5)
        XCTAssertEqual(entry.tranchesTaken, 0)
    }

    func testABrokenLedgerValueIsNamedNotZeroed() {
        var entry = LedgerEntry()
        entry.symbol = "ETHUSDT"
        entry.positionAmt = "one"
        XCTAssertThrowsError(try LedgerBook.apply(execution(.buy, "1", at: "5", trades: ["1"]), to: &entry, eventTimeMs: 1)) { error in
            XCTAssertTrue("\(error)".contains("qt_ledger/ETHUSDT: position_amt is \"one\""), "\(error)")
        }
    }
}
