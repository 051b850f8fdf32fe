import Foundation
import Synchronization

/// Request weight as Binance reports it (`X-MBX-USED-WEIGHT-1M`) and the back-off a 429 or 418
/// imposes (`Retry-After`): no request is sent before that time has passed.
final class WeightTracker: Sendable {
    private struct State {
        var usedWeight = 0
        var blockedUntil: Date?
    }

    private let state = Mutex(State())

    /// Binance's IP bans grow from 2 minutes to 3 days; a longer `Retry-After` is taken as 3 days.
    static let longestBanSeconds = 3 * 86_400

    /// The back-off a 429 or 418 asks for: the header when it is a whole number of seconds
    /// (clamped to 1 s … 3 days, so no arithmetic on it can overflow), else 60 s (429) or 120 s (418).
    static func retryAfterSeconds(header: String?, status: Int) -> Int {
        guard let header, let seconds = Int(header.trimmingCharacters(in: .whitespaces)) else { return status == 418 ? 120 : 60 }
        return min(max(seconds, 1), longestBanSeconds)
    }

    var used: Int { state.withLock { $0.usedWeight } }

    func record(headers: [String: String]) {
        guard let text = headers["x-mbx-used-weight-1m"], let weight = Int(text) else { return }
        state.withLock { $0.usedWeight = weight }
    }

    func block(forSeconds seconds: Int) {
        let until = Date().addingTimeInterval(TimeInterval(min(max(1, seconds), Self.longestBanSeconds)))
        state.withLock { state in
            if let current = state.blockedUntil, current > until { return }
            state.blockedUntil = until
        }
    }

    /// How long until requests may go again (0 when they may now).
    func waitMs() -> Int {
        state.withLock { state in
            guard let until = state.blockedUntil else { return 0 }
            let remaining = until.timeIntervalSinceNow
            if remaining <= 0 { state.blockedUntil = nil; return 0 }
            return Int((remaining * 1000).rounded(.up))
        }
    }
}
