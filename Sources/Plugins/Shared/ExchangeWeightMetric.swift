import Exchange
import Host

extension HandlerContext {
    /// Reports the host's exchange client spending (`qt_plugin_value{value="exchange_weight_spent_1m"}`)
    /// and its budget, so an operator sees how close the host runs to Binance's IP limit.
    func recordWeight(of exchange: any FuturesExchange) {
        record(Double(exchange.weightSpentThisMinute), as: "exchange_weight_spent_1m")
        record(Double(exchange.weightBudgetPerMinute), as: "exchange_weight_budget_1m")
    }
}
