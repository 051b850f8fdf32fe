import Exchange
import Foundation
import Host

/// Protective stops through Binance's Algo Order API (DESIGN.md §5 step 7): STOP_MARKET,
/// `closePosition=true`, mark price. Ids are derived from the plan, so placing again after a
/// crash finds the stop placed before instead of adding a second one.
struct ProtectiveStops: Sendable {
    let exchange: any FuturesExchange

    static func clientAlgoID(planID: String) -> String { "qs-" + planID.prefix(32) }

    func place(_ stop: NewStopOrder) async throws {
        do {
            _ = try await exchange.newStopOrder(stop)
        } catch let error as ExchangeError {
            // A lost answer or a repeat: the stop is there if the exchange knows the id.
            if case .api(let refusal) = error, refusal.known != .duplicateClientOrderID {
                throw PluginError.permanent("protective stop \(stop.clientAlgoId) for \(stop.symbol) at \(stop.triggerPrice.plainString): \(refusal)")
            }
            do {
                _ = try await exchange.queryAlgoOrder(clientAlgoId: stop.clientAlgoId)
            } catch {
                throw PluginError.transient("protective stop \(stop.clientAlgoId) for \(stop.symbol): \(error)")
            }
        }
    }

    /// Cancels a stop; one already gone (triggered, cancelled, never placed) needs nothing.
    func cancel(clientAlgoID: String) async throws {
        guard !clientAlgoID.isEmpty else { return }
        do {
            _ = try await exchange.cancelAlgoOrder(clientAlgoId: clientAlgoID)
        } catch let error as ExchangeError {
            if case .api = error { return }
            throw PluginError.transient("cancel of protective stop \(clientAlgoID): \(error)")
        }
    }
}
