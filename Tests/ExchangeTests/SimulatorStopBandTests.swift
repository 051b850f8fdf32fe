@testable import Exchange
@testable import ExchangeSimulator
import Foundation
import XCTest

/// The simulator skips a symbol's exact (Decimal) stop check when the raw mark is far from every
/// live trigger (`SimAccount.LiveStops.mightFire`). That shortcut must never skip a mark that,
/// rounded to the tick as the exact check rounds it, fires a stop.
final class SimulatorStopBandTests: XCTestCase {
    func testNoMarkTheBandSkipsWouldHaveFiredAStop() {
        var random = SystemRandomNumberGenerator()
        for tick in [Decimal(string: "0.1")!, Decimal(string: "0.0001")!, Decimal(string: "0.00001")!, 1] {
            let filters = SymbolFilters(symbol: "BANDUSDT", tickSize: tick, stepSize: Decimal(string: "0.001")!, minQty: 0, maxQty: 1_000_000, minNotional: 0)
            let tickValue = tick.doubleValue
            for _ in 0..<200 {
                let base = Double.random(in: 0.01...50_000, using: &random)
                let triggers = (0..<3).map { _ in filters.roundPrice(Decimal(base * Double.random(in: 0.98...1.02, using: &random)), .nearest) }
                let kinds: [(type: String, side: OrderSide)] = [("STOP_MARKET", .sell), ("STOP_MARKET", .buy), ("TAKE_PROFIT_MARKET", .sell)]
                var band = SimAccount.LiveStops()
                for (trigger, kind) in zip(triggers, kinds) {
                    if SimAccount.firesAtOrBelow(type: kind.type, side: kind.side) {
                        band.highestFiringBelow = max(band.highestFiringBelow, trigger.doubleValue)
                    } else {
                        band.lowestFiringAbove = min(band.lowestFiringAbove, trigger.doubleValue)
                    }
                }
                for _ in 0..<50 {
                    // Marks near a trigger (within a few ticks) and anywhere in the range.
                    let near = triggers.randomElement(using: &random)!.doubleValue + Double(Int.random(in: -3...3, using: &random)) * tickValue / 2
                    for price in [near, base * Double.random(in: 0.97...1.03, using: &random)] where price > 0 {
                        let rounded = filters.roundPrice(Decimal(price), .nearest)
                        let fires = zip(triggers, kinds).contains { SimAccount.fires(type: $1.type, side: $1.side, trigger: $0, mark: rounded) }
                        if fires {
                            XCTAssertTrue(band.mightFire(at: price, tick: tickValue),
                                          "mark \(price) rounds to \(rounded) and fires one of \(triggers), but the band skipped it")
                        }
                    }
                }
            }
        }
    }

    func testAMarkFarFromEveryTriggerIsSkipped() {
        var band = SimAccount.LiveStops()
        band.highestFiringBelow = 90
        band.lowestFiringAbove = 110
        XCTAssertFalse(band.mightFire(at: 100, tick: 0.1))
        XCTAssertTrue(band.mightFire(at: 90.05, tick: 0.1), "within a tick of a stop below")
        XCTAssertTrue(band.mightFire(at: 111, tick: 0.1), "past a take-profit above")
    }
}
