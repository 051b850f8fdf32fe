import Foundation

/// Binance's request weight for the USDⓈ-M endpoints this product uses, as Binance lists them
/// (some depend on a parameter: a klines `limit`, whether a `symbol` was given). Both sides read
/// it: the client budgets its spending before a request goes out, the simulator charges it.
package enum RequestWeight {
    package static func of(method: String, path: String, parameters: [String: String]) -> Int {
        let hasSymbol = parameters["symbol"].map { !$0.isEmpty } ?? false
        switch (method, path) {
        case ("GET", "/fapi/v1/klines"):
            switch Int(parameters["limit"] ?? "") ?? 500 {
            case ..<100: return 1
            case ..<500: return 2
            case ...1_000: return 5
            default: return 10
            }
        case ("GET", "/fapi/v1/premiumIndex"): return hasSymbol ? 1 : 10
        case ("GET", "/fapi/v1/ticker/24hr"): return hasSymbol ? 1 : 40
        case ("GET", "/fapi/v1/openOrders"), ("GET", "/fapi/v1/openAlgoOrders"): return hasSymbol ? 1 : 40
        case ("GET", "/fapi/v1/userTrades"), ("GET", "/fapi/v1/allOrders"), ("GET", "/fapi/v1/allAlgoOrders"): return 5
        case ("GET", "/fapi/v2/positionRisk"), ("GET", "/fapi/v3/positionRisk"), ("GET", "/fapi/v2/account"), ("GET", "/fapi/v3/account"),
             ("GET", "/fapi/v2/balance"), ("GET", "/fapi/v3/balance"): return 5
        case ("GET", "/fapi/v1/commissionRate"): return 20
        case ("GET", "/fapi/v1/income"): return 30
        case ("GET", "/fapi/v1/positionSide/dual"): return 30
        default: return 1
        }
    }
}
