import Exchange
import Foundation
import Host
import Synchronization

/// Symbol filters from `exchangeInfo`, loaded once and reloaded when a symbol is missing (a new
/// listing). A failed load is transient: the input comes back later.
final class FilterCache: Sendable {
    private let exchange: any FuturesExchange
    private let filters = Mutex<[String: SymbolFilters]>([:])

    init(exchange: any FuturesExchange) {
        self.exchange = exchange
    }

    func filters(for symbol: String) async throws -> SymbolFilters {
        if let known = filters.withLock({ $0[symbol] }) { return known }
        let loaded = try await exchange.symbolFilters()
        filters.withLock { $0 = loaded }
        guard let found = loaded[symbol] else {
            throw PluginError.permanent("\(symbol) is not a symbol of the exchange (exchangeInfo has \(loaded.count) symbols)")
        }
        return found
    }
}
