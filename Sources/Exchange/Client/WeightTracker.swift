import Foundation
import Synchronization

/// Request weight as Binance reports it (`X-MBX-USED-WEIGHT-1M`) and the back-off a 429 or 418
/// imposes (`Retry-After`): no request is sent before that time has passed. It also keeps this
/// client's own spending under a share of the IP's per-minute limit, so a 429 does not happen
/// in the first place (DESIGN.md §8).
final class WeightTracker: Sendable {
    private struct State {
        var usedWeight = 0
        var blockedUntil: Date?
        /// This client's own spending in the current wall-clock minute (Binance counts per minute).
        var minute: Int64 = 0
        var spent = 0
        var spentTotal = 0
        /// nil until known: no budget is applied before the exchange announced its limit.
        var limit: Int?
    }

    private let state: Mutex<State>
    /// The share of the IP's per-minute limit this client keeps under (reads wait; orders never do).
    let share: Double

    init(limitPerMinute: Int? = nil, share: Double = 0.8) {
        state = Mutex(State(limit: limitPerMinute))
        self.share = share
    }

    /// The IP's limit as the exchange announces it (`exchangeInfo.rateLimits`, REQUEST_WEIGHT per minute).
    func setLimit(perMinute limit: Int) {
        guard limit > 0 else { return }
        state.withLock { $0.limit = limit }
    }

    var limitPerMinute: Int? { state.withLock { $0.limit } }

    /// Weight this client spent in the current minute, and since it started.
    var spentThisMinute: Int { state.withLock { $0.minute == Self.minute(Date()) ? $0.spent : 0 } }
    var spentTotal: Int { state.withLock { $0.spentTotal } }

    private static func minute(_ date: Date) -> Int64 { Int64(date.timeIntervalSince1970 / 60) }

    /// Charges `weight` to this minute when it stays within the budget (the larger of what we
    /// spent and what the exchange says the IP used, plus `weight`, under `share` of the limit)
    /// and returns 0; otherwise returns the milliseconds until the next minute starts. `force`
    /// charges regardless (orders: a protective order is never held back for weight).
    func charge(_ weight: Int, force: Bool, now: Date = Date()) -> Int {
        state.withLock { state in
            let minute = Self.minute(now)
            if minute != state.minute { state.minute = minute; state.spent = 0; state.usedWeight = 0 }
            if !force, let limit = state.limit, case let budget = Int(Double(limit) * share), max(state.spent, state.usedWeight) + weight > budget, state.spent > 0 || state.usedWeight > 0 {
                return Int(((Double(minute + 1) * 60 - now.timeIntervalSince1970) * 1000).rounded(.up)) + 50
            }
            state.spent += weight
            state.spentTotal += weight
            return 0
        }
    }
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
        state.withLock { state in
            if state.minute == Self.minute(Date()) { state.usedWeight = weight }
        }
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
