import Foundation
@testable import Host
@testable import InMemoryHost
import Messages
@testable import Plugins
import XCTest

/// `BucketView.awaitArrival`: the executor waits for a permit written beside its plan, and is
/// resumed by the watch's delivery of that key, by its timeout, or by the end of the watch;
/// never left waiting.
final class BucketViewArrivalTests: XCTestCase {
    let host = InMemoryHost()
    let view = BucketView<Permit>("qt_permits")
    /// Far longer than any delivery: a wait that lasts this long was not resumed by the delivery.
    let patienceNs: UInt64 = 20_000_000_000

    func context() throws -> HandlerContext {
        let manifest = PluginManifest(name: "arrival-reader", version: "1.0.0", kvReads: ["qt_permits"])
        let settings = try NodeConfig.settings("", for: manifest, file: "in-memory arrival-reader")
        let scope = PluginScope(manifest: manifest, settings: settings, hostID: host.hostID,
                                metrics: HostMetrics(hostID: host.hostID).plugin(manifest.name), backend: MemoryBackend(host: host), clock: host.clock)
        return HandlerContext(scope: scope, eventTimeMs: host.clock.nowMs(), cause: nil)
    }

    func permit(_ planID: String) -> Permit {
        var permit = Permit()
        permit.planID = planID
        permit.kind = .p33
        return permit
    }

    /// A reader waiting for `key` with all the patience in the world; its value is how long it waited.
    func waitInTheBackground(for key: String) -> Task<Duration, Never> {
        let view = view, patience = patienceNs
        return Task {
            let started = ContinuousClock.now
            await view.awaitArrival(of: key, timeoutNs: patience)
            return ContinuousClock.now - started
        }
    }

    func testAWaitingReaderIsResumedByTheKeysDelivery() async throws {
        let context = try context()
        let before = try await view.read("plan-1", context)
        guard case .missing = before else { return XCTFail("expected no permit yet, got \(before)") }
        let waiting = waitInTheBackground(for: "plan-1")
        try await Task.sleep(nanoseconds: 50_000_000)
        _ = try await host.kv("qt_permits").put("plan-1", permit("plan-1"))
        let waited = await waiting.value
        XCTAssertLessThan(waited, .seconds(10), "resumed by the delivery, not by the timeout")
        let after = try await view.read("plan-1", context)
        guard case .value(let found, _) = after else { return XCTFail("expected the delivered permit, got \(after)") }
        XCTAssertEqual(found.planID, "plan-1")
    }

    /// The journal names the keys changed since a version (in any order, with repeats), and a
    /// reload (the watch ended) answers nil: the reader then looks at every key.
    func testTheJournalNamesTheKeysChangedSinceAVersionAndNothingAcrossAReload() async throws {
        let context = try context()
        let bucket = host.kv("qt_permits")
        _ = try await bucket.put("plan-a", permit("plan-a"))
        let first = try await view.readChanges(since: -1, context)
        XCTAssertNil(first.changed, "nothing was read before: every key")
        _ = try await bucket.put("plan-b", permit("plan-b"))
        _ = try await bucket.put("plan-a", permit("plan-a"))
        for _ in 0..<100 where Set((try await view.readChanges(since: first.version, context)).changed ?? []) != ["plan-a", "plan-b"] {
            try await Task.sleep(nanoseconds: 10_000_000)
        }
        let later = try await view.readChanges(since: first.version, context)
        XCTAssertEqual(Set(later.changed ?? []), ["plan-a", "plan-b"], "\(String(describing: later.changed))")
        let none = try await view.readChanges(since: later.version, context)
        XCTAssertEqual(none.changed, [], "nothing since")
        bucket.endWatches()
        try await Task.sleep(nanoseconds: 200_000_000)  // the view's follower sees its watch end
        let reloaded = try await view.readChanges(since: later.version, context)
        XCTAssertNil(reloaded.changed, "a reload starts the journal over")
        XCTAssertEqual(Set(reloaded.values.keys).intersection(["plan-a", "plan-b"]), ["plan-a", "plan-b"])
    }

    func testAKeyThatNeverComesEndsTheWaitAtTheTimeout() async throws {
        let context = try context()
        _ = try await view.read("plan-2", context)
        let started = ContinuousClock.now
        await view.awaitArrival(of: "plan-2", timeoutNs: 100_000_000)
        let waited = ContinuousClock.now - started
        XCTAssertGreaterThanOrEqual(waited, .milliseconds(100))
        XCTAssertLessThan(waited, .seconds(10))
        XCTAssertTrue(view.neverSaw("plan-2"))
    }

    func testAKeyTheViewHoldsAndAnEndedWatchDoNotWait() async throws {
        let context = try context()
        _ = try await host.kv("qt_permits").put("plan-3", permit("plan-3"))
        _ = try await view.read("plan-3", context)
        let started = ContinuousClock.now
        await view.awaitArrival(of: "plan-3", timeoutNs: patienceNs)
        XCTAssertLessThan(ContinuousClock.now - started, .seconds(10), "a key the view holds is not waited for")

        let waiting = waitInTheBackground(for: "plan-4")
        try await Task.sleep(nanoseconds: 50_000_000)
        host.kv("qt_permits").endWatches()
        let waited = await waiting.value
        XCTAssertLessThan(waited, .seconds(10), "the end of the watch resumes the waiter, which then reads the bucket")
    }
}
