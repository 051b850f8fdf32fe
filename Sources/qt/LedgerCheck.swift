import Bus
import Foundation
import Messages

/// Every symbol's ledger position against the exchange's (`qt ledger check`, the end of
/// `qt bench e2e`): the books agree when each amount is equal and no claim is left pending.
struct LedgerCheck {
    private(set) var symbols = 0
    private(set) var withPosition = 0
    private(set) var differences: [String] = []
    var agrees: Bool { differences.isEmpty }

    /// `exchange`: each symbol's position amount as the exchange reports it (absent: flat).
    static func compare(_ bus: BusConnection, exchange: [String: Decimal], symbols listed: [String] = []) async throws -> LedgerCheck {
        let ledger = try await bus.keyValue("qt_ledger")
        let keys = try await ledger.keys()
        let symbols = Set(keys).union(listed).union(exchange.filter { $0.value != 0 }.keys).sorted()
        var check = LedgerCheck()
        for symbol in symbols {
            check.symbols += 1
            let entry = try await ledger.get(LedgerEntry.self, symbol)?.value
            let ledgerAmount = Decimal.parse(entry?.positionAmt ?? "") ?? 0
            let exchangeAmount = exchange[symbol] ?? 0
            if ledgerAmount != 0 || exchangeAmount != 0 { check.withPosition += 1 }
            if ledgerAmount != exchangeAmount {
                check.differences.append("\(symbol): ledger \(ledgerAmount), exchange \(exchangeAmount)")
            }
            if let claim = entry?.pendingClientOrderID, !claim.isEmpty { check.differences.append("\(symbol): claim \(claim) still pending") }
        }
        return check
    }

    var summary: String {
        agrees ? "books: ledger = exchange for all \(symbols) symbols (\(withPosition) with a position), no claim pending"
            : "books DIFFER on \(differences.count): " + differences.prefix(10).joined(separator: "; ")
    }
}
