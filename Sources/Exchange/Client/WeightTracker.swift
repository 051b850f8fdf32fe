import Foundation

/// Request weight as Binance reports it (`X-MBX-USED-WEIGHT-1M`) and the back-off a 429 or 418
/// imposes (`Retry-After`): no request is sent before that time has passed.
final class WeightTracker: @unchecked Sendable {
    private let lock = NSLock()
    private var usedWeight = 0
    private var blockedUntil: Date?

    var used: Int { lock.withLock { usedWeight } }

    func record(headers: [String: String]) {
        guard let text = headers["x-mbx-used-weight-1m"], let weight = Int(text) else { return }
        lock.withLock { usedWeight = weight }
    }

    func block(forSeconds seconds: Int) {
        let until = Date().addingTimeInterval(TimeInterval(max(1, seconds)))
        lock.withLock {
            if let current = blockedUntil, current > until { return }
            blockedUntil = until
        }
    }

    /// How long until requests may go again (0 when they may now).
    func waitMs() -> Int {
        lock.withLock {
            guard let until = blockedUntil else { return 0 }
            let remaining = until.timeIntervalSinceNow
            if remaining <= 0 { blockedUntil = nil; return 0 }
            return Int((remaining * 1000).rounded(.up))
        }
    }
}
