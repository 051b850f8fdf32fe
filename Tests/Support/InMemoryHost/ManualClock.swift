import Host
import Synchronization

/// Wall-clock time that moves only when a test moves it.
public final class ManualClock: PluginClock {
    private let now: Atomic<Int64>

    public init(nowMs: Int64) {
        now = Atomic(nowMs)
    }

    public func nowMs() -> Int64 { now.load(ordering: .relaxed) }

    public func advance(byMs milliseconds: Int64) {
        now.add(milliseconds, ordering: .relaxed)
    }
}
