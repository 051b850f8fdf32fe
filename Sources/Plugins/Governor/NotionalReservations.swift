import Foundation
import Host
import Messages

/// The room under `max_total_notional` shared by every governor in the fleet (DESIGN.md §3.3:
/// limits that span symbols are reserved by compare-and-set in `qt_state`, never judged from one
/// host's partial view). One key, `governor.notional`, maps each symbol with an entry on its way
/// to `notional|until|plan`. A reservation counts until its wall-clock `until` (the plan's
/// way through the portfolio gate and its 60 s permit) or while the ledger holds a claim for
/// the symbol; once the ledger shows the position, the position's own notional counts instead.
struct NotionalReservations {
    static let stateName = "notional"

    let context: HandlerContext
    let rounds: StateRounds
    let maxTotal: Decimal

    /// Reserves what `size` makes of the room left (ledger positions and other live reservations
    /// taken off), by compare-and-set; a redelivered plan finds its own reservation and keeps it.
    /// `alongside` goes out with the reservation's compare-and-set (`StateRounds.rewrite`).
    func reserve(_ plan: Plan, ledger: LedgerReading, untilMs: Int64, nowMs: Int64,
                 alongside: (@Sendable () async throws -> Void)? = nil,
                 size: (_ room: Decimal) throws -> Decimal) async throws -> Decimal {
        let openNotional = ledger.openNotional
        return try await rounds.rewrite(Self.stateName, context: context, alongside: alongside) { stored in
            var reservations = (stored?.values ?? [:]).filter { symbol, value in
                guard let reservation = Reservation(value) else { return false }
                return ledger.open[symbol] == nil && (reservation.untilMs > nowMs || ledger.claimed.contains(symbol))
            }
            let others = reservations.filter { $0.key != plan.symbol }.compactMap { Reservation($0.value)?.notional }
            let room = maxTotal - openNotional - others.reduce(Decimal(0), +)
            guard room > 0 else {
                throw GateRefusal(reason: .notionalCap, detail: "open notional \(openNotional.plainString) USDT and "
                                  + "\(others.count) reserved entries leave no room under \(maxTotal.plainString)")
            }
            let notional = try size(room)
            reservations[plan.symbol] = Reservation(notional: notional, untilMs: untilMs, planID: plan.planID).value
            var state = PluginState()
            state.values = reservations
            state.symbols = reservations.keys.sorted()
            return (state, notional)
        }
    }

    struct Reservation {
        let notional: Decimal
        let untilMs: Int64
        let planID: String

        init(notional: Decimal, untilMs: Int64, planID: String) {
            self.notional = notional
            self.untilMs = untilMs
            self.planID = planID
        }

        init?(_ value: String) {
            let parts = value.split(separator: "|", omittingEmptySubsequences: false)
            guard parts.count == 3, let notional = Decimal.parse(String(parts[0])), let until = Int64(parts[1]) else { return nil }
            self.init(notional: notional, untilMs: until, planID: String(parts[2]))
        }

        var value: String { "\(notional.plainString)|\(untilMs)|\(planID)" }
    }
}
