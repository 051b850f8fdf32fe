import Exchange
import Foundation
import Kernels
import Messages
@testable import Plugins
import XCTest

/// The market-state plugin's slides give what the full kernel gives for the window in hand, whatever
/// came before: a window that grows by one close, one at capacity, the same bar again, a gap that
/// starts the window again, two closes at once (held bars released), a slide lost to a failed
/// write or a moved partition, and a window some other host extended meanwhile.
final class MarketStateSlidesTests: XCTestCase {
    func testEverySlideEqualsTheFullKernelOfItsWindow() {
        var random = SeededGenerator(seed: 3)
        var price = 100.0
        var window = CloseWindow()
        var slide: MarketStateSlides.Slide?
        var openMs: Int64 = 0
        var checked = 0
        for step in 0..<700 {
            if step == 350 {
                // Another host handled two bars (its window is what this host loads) while this one kept its old slide.
                for _ in 0..<2 {
                    openMs += 60_000
                    price *= exp(0.003 * random.gaussian())
                    window.closes.append(price)
                    window.closes.removeFirst()
                    window.lastOpenTimeMs = openMs
                }
            }
            let previous = window
            if step == 600 {
                // A bar that filled a hole released the one held behind it: two closes at once, at capacity.
                openMs += 60_000
                price *= exp(0.003 * random.gaussian())
                window.closes.append(price)
                window.closes.removeFirst()
            }
            openMs += step == 400 ? 180_000 : 60_000  // a gap at step 400
            price *= exp(0.003 * random.gaussian())
            if step == 400 || previous.closes.isEmpty {
                window = CloseWindow()
                window.closes = [price]
            } else {
                window.closes.append(price)
                if window.closes.count > MarketStatePlugin.windowCloses { window.closes.removeFirst() }
            }
            window.lastOpenTimeMs = openMs
            if step == 330 { slide = nil }  // a failed write: the slide was not put back
            slide = MarketStateSlides.advance(slide, previous: previous, to: window)
            // The full kernel is the slow side: every step around warm-up and the four events
            // (lost slide, another host's bars, the gap, two closes at once), every third elsewhere.
            let nearEvent = [256, 330, 350, 400, 600, 656].contains { (($0 - 2)...($0 + 12)).contains(step) }
            guard nearEvent || step % 3 == 0 else { continue }
            XCTAssertEqual(slide?.values, MarketStateKernel.compute(closes: window.closes), "step \(step)")
            // The same bar again changes nothing.
            XCTAssertEqual(MarketStateSlides.advance(slide, previous: previous, to: window).values, slide?.values, "step \(step), again")
            if slide?.values != nil { checked += 1 }
        }
        XCTAssertGreaterThan(checked, 100)  // of the states from close 257 to the gap, and from 256 closes after it
    }
}
