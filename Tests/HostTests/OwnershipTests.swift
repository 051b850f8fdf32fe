import Foundation
import Synchronization
import Host
import XCTest

/// Every publish, KV write and exchange call of a keyed plugin asks whether this host owns the
/// symbol's partition. The answer must cost the same on the millionth ask as on the first.
final class OwnershipTests: XCTestCase {
    func testTheOwnershipCheckDoesNotGrowWithUse() {
        let ownership = Ownership()
        ownership.current = { $0.hasPrefix("BTC") }
        let owned = Mutex(0)
        let finished = DispatchSemaphore(value: 0)
        // A small stack: a check that wrapped itself in more thunks on every read (it did, through
        // `Mutex.withLock`'s inout) overflows it within a few thousand asks and takes the test down.
        let asker = Thread {
            for ask in 0..<100_000 where ownership.current?(ask.isMultiple(of: 2) ? "BTCUSDT" : "ETHUSDT") == true {
                owned.withLock { $0 += 1 }
            }
            finished.signal()
        }
        asker.stackSize = 256 * 1024
        asker.start()
        finished.wait()
        XCTAssertEqual(owned.withLock { $0 }, 50_000)
        ownership.current = nil
        XCTAssertNil(ownership.current)
    }
}
