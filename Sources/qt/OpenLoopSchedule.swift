import Dispatch

/// Open-loop pacing: the i-th send is due at start + i / rate, however long the earlier ones took,
/// so a slow answer does not thin out the load behind it.
struct OpenLoopSchedule {
    let rate: Double
    private let start = DispatchTime.now().uptimeNanoseconds

    init(rate: Double) { self.rate = rate }

    /// Sleeps until send `index` is due (at once when it is late).
    func waitForSlot(_ index: Int) async throws {
        let due = start + UInt64(Double(index) / rate * 1e9)
        let now = DispatchTime.now().uptimeNanoseconds
        if due > now { try await Task.sleep(nanoseconds: due - now) }
    }
}
