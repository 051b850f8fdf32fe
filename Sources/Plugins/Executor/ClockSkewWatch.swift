import Exchange
import Foundation
import Host
import Identity
import Messages
import Synchronization

/// This host's clock against the exchange's: signed requests carry the measured offset anyway,
/// but a host more than a second off judges plan expiry, permits and snapshot ages wrongly, so
/// it says so (a WARNING `clock` alert, at most once an hour per host).
final class ClockSkewWatch: Sendable {
    static let limitMs: Int64 = 1_000
    static let repeatAfterMs: Int64 = 3_600_000

    private let exchange: any FuturesExchange
    private let lastAlertMs = Mutex<Int64?>(nil)

    init(exchange: any FuturesExchange) {
        self.exchange = exchange
    }

    func check(context: HandlerContext) async throws {
        let offsetMs: Int64
        do {
            offsetMs = try await exchange.syncTime()
        } catch {
            return  // the exchange's own errors show where they matter (orders, snapshots)
        }
        let nowMs = context.clock.nowMs()
        guard abs(offsetMs) > Self.limitMs, Self.isDue(last: lastAlertMs.withLock { $0 }, nowMs: nowMs) else { return }
        var alert = Alert()
        alert.kind = .clock
        alert.severity = .warning
        alert.plugin = ExecutorPlugin.name
        alert.subject = "host/\(context.hostID)"
        alert.message = "host \(context.hostID)'s clock is \(abs(offsetMs)) ms \(offsetMs > 0 ? "behind" : "ahead of") the exchange's "
            + "(more than \(Self.limitMs) ms): fix its time sync (chrony, NTP)"
        alert.details = ["host": context.hostID, "offset_ms": String(offsetMs)]
        alert.meta.eventTimeMs = context.eventTimeMs
        let id = ContentID.content(plugin: ExecutorPlugin.name, kind: "clock-skew", symbol: context.hostID,
                                   eventTimeMs: nowMs / Self.repeatAfterMs, revision: 0)
        try context.emit("alerts", alert, subject: Subjects.alert(.clock), id: id)
        try await context.publishNow()
        lastAlertMs.withLock { $0 = nowMs }
    }

    static func isDue(last: Int64?, nowMs: Int64) -> Bool {
        last.map { nowMs - $0 >= repeatAfterMs } ?? true
    }
}
