import Foundation

/// Binance's error codes that this system acts on, by their documented names. Any other code
/// still arrives typed as `BinanceError` with `known == nil` and the number and message intact.
public enum BinanceErrorCode: Int, Sendable, CaseIterable {
    case unknown = -1000
    case disconnected = -1001
    case unauthorized = -1002
    case tooManyRequests = -1003
    case unexpectedResponse = -1006
    case timeout = -1007
    case invalidTimestamp = -1021
    case invalidSignature = -1022
    case illegalCharacters = -1100
    case mandatoryParameterMissing = -1102
    case badPrecision = -1111
    case invalidOrderType = -1116
    case invalidSide = -1117
    case badInterval = -1120
    case badSymbol = -1121
    case cancelRejected = -2011
    case listenKeyDoesNotExist = -1125
    case noSuchOrder = -2013
    case badAPIKeyFormat = -2014
    case rejectedAPIKey = -2015
    case marginInsufficient = -2019
    case reduceOnlyRejected = -2022
    case quantityLessThanZero = -4003
    case quantityLessThanMinimum = -4004
    case quantityGreaterThanMaximum = -4005
    case invalidLeverage = -4028
    case noNeedToChangePositionSide = -4059
    case duplicateClientOrderID = -4116
    case useAlgoOrderAPI = -4120
    case minimumNotional = -4164
}

/// An error answer from Binance (or the simulator): `{"code": -1021, "msg": "..."}`.
public struct BinanceError: Error, Sendable, Equatable, CustomStringConvertible {
    public let code: Int
    public let message: String
    public let httpStatus: Int

    public init(code: Int, message: String, httpStatus: Int) {
        self.code = code
        self.message = message
        self.httpStatus = httpStatus
    }

    public init(_ known: BinanceErrorCode, _ message: String, httpStatus: Int = 400) {
        self.init(code: known.rawValue, message: message, httpStatus: httpStatus)
    }

    public var known: BinanceErrorCode? { BinanceErrorCode(rawValue: code) }

    public var description: String {
        "Binance \(code)\(known.map { " (\($0))" } ?? ""): \(message) [HTTP \(httpStatus)]"
    }
}

/// Everything the exchange client throws.
public enum ExchangeError: Error, Sendable, CustomStringConvertible {
    /// Binance answered with an error code: the request was processed and refused.
    case api(BinanceError)
    /// 429 (or 418: the IP is banned): nothing was executed; wait `retryAfterSeconds`.
    case rateLimited(httpStatus: Int, retryAfterSeconds: Int)
    /// A request that changes state got no definite answer (network error, timeout, 5xx, or
    /// Binance's "execution status unknown"): it may or may not have been executed. Query by
    /// client order id; never send a second order with a new id.
    case unknownOutcome(String)
    /// A read failed after its retries (network error, timeout, 5xx).
    case unavailable(String)
    /// The answer was not what this endpoint returns.
    case decoding(endpoint: String, detail: String)
    /// A request this client refuses to send (missing credentials, invalid argument).
    case invalidRequest(String)
    /// A quantity or price that the symbol's filters cannot accept.
    case filter(FilterError)

    public var description: String {
        switch self {
        case .api(let error): return error.description
        case .rateLimited(let status, let seconds): return "rate limited (HTTP \(status)); retry after \(seconds) s"
        case .unknownOutcome(let detail): return "outcome unknown: \(detail)"
        case .unavailable(let detail): return "exchange unavailable: \(detail)"
        case .decoding(let endpoint, let detail): return "unexpected answer from \(endpoint): \(detail)"
        case .invalidRequest(let detail): return "invalid request: \(detail)"
        case .filter(let error): return error.description
        }
    }

    /// The Binance code, when Binance answered with one.
    public var binanceCode: BinanceErrorCode? {
        if case .api(let error) = self { return error.known }
        return nil
    }
}
