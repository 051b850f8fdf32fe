import CurlHTTP
import Foundation
import Synchronization

/// The Binance USDⓈ-M futures REST client: one instance per process, shared by every plugin
/// that touches the exchange. Blocking libcurl calls run on the transport's own threads.
///
/// Failure policy (DESIGN.md §8): reads and order queries are retried with jittered back-off
/// after network errors, timeouts and 5xx; anything that changes state (new order, cancel,
/// leverage, position mode, algo orders) is sent once, and a missing or 5xx answer is reported
/// as `ExchangeError.unknownOutcome`, for the caller to resolve by querying its client order id.
/// A 429/418 blocks every request until `Retry-After` has passed.
public final class BinanceFutures: Sendable {
    public let config: ExchangeConfig
    private let credentials: Credentials?
    private let transport: CurlTransport
    private let weights: WeightTracker
    private let clock = ServerClock()

    public init(config: ExchangeConfig, credentials: Credentials?) {
        self.config = config
        self.credentials = credentials
        weights = WeightTracker(limitPerMinute: config.weightLimitPerMinute, share: config.weightShare)
        self.transport = CurlTransport(threads: config.connections, timeoutMs: config.timeoutMs,
                                       connectTimeoutMs: config.connectTimeoutMs)
    }

    deinit { transport.shutdown() }

    /// The last `X-MBX-USED-WEIGHT-1M` the exchange reported.
    public var usedWeight: Int { weights.used }

    /// Request weight this client spent in the current minute and since it started (Binance's
    /// weights, `RequestWeight`), and the per-minute budget it keeps under.
    public var weightSpentThisMinute: Int { weights.spentThisMinute }
    public var weightSpentTotal: Int { weights.spentTotal }
    public var weightBudgetPerMinute: Int { weights.limitPerMinute.map { Int(Double($0) * weights.share) } ?? 0 }

    func learnWeightLimit(_ info: ExchangeInfo) {
        if let limit = info.rateLimits.first(where: { $0.rateLimitType == "REQUEST_WEIGHT" && $0.interval == "MINUTE" && $0.intervalNum == 1 }) {
            weights.setLimit(perMinute: limit.limit)
        }
    }

    /// Milliseconds to add to the local clock to get the exchange's.
    public var serverTimeOffsetMs: Int64 { clock.offsetMs }

    enum Security { case none, apiKey, signed }
    enum Retry { case readOrQuery, never }

    /// Sends one request and decodes its answer; see the type's failure policy.
    func call<T: Decodable>(_ method: String, _ path: String, _ parameters: [(String, String)] = [],
                            security: Security = .none, retry: Retry = .readOrQuery, as type: T.Type) async throws -> T {
        let body = try await send(method, path, parameters, security: security, retry: retry)
        do {
            return try JSONDecoder().decode(T.self, from: body)
        } catch {
            throw ExchangeError.decoding(endpoint: "\(method) \(path)",
                                         detail: "\(error); body: \(String(decoding: body.prefix(300), as: UTF8.self))")
        }
    }

    private func send(_ method: String, _ path: String, _ parameters: [(String, String)], security: Security,
                      retry: Retry) async throws -> Data {
        var attempt = 0
        var resynced = false
        while true {
            let blockedMs = weights.waitMs()
            if blockedMs > 0 {
                guard retry == .readOrQuery, blockedMs <= config.maxRateLimitWaitMs else {
                    throw ExchangeError.rateLimited(httpStatus: 429, retryAfterSeconds: (blockedMs + 999) / 1000)
                }
                try await Task.sleep(nanoseconds: UInt64(blockedMs) * 1_000_000)
            }
            let weight = RequestWeight.of(method: method, path: path,
                                          parameters: Dictionary(parameters, uniquingKeysWith: { $1 }))
            let waitMs = weights.charge(weight, force: retry == .never)
            if waitMs > 0 {
                guard waitMs <= config.maxRateLimitWaitMs else {
                    throw ExchangeError.rateLimited(httpStatus: 0, retryAfterSeconds: (waitMs + 999) / 1000)
                }
                try await Task.sleep(nanoseconds: UInt64(waitMs) * 1_000_000)
                continue
            }
            let request = try await makeRequest(method, path, parameters, security: security)
            let response: TransportResponse
            do {
                response = try await transport.perform(request)
            } catch let error as TransportError {
                let what = "\(method) \(path): \(error)"
                guard retry == .readOrQuery else { throw ExchangeError.unknownOutcome(what) }
                attempt += 1
                guard attempt <= config.readRetries else { throw ExchangeError.unavailable(what) }
                try await backOff(attempt)
                continue
            }
            weights.record(headers: response.headers)
            switch response.status {
            case 200..<300:
                return response.body
            case 429, 418:
                let seconds = WeightTracker.retryAfterSeconds(header: response.headers["retry-after"], status: response.status)
                weights.block(forSeconds: seconds)
                attempt += 1
                guard retry == .readOrQuery, attempt <= config.readRetries, seconds * 1000 <= config.maxRateLimitWaitMs else {
                    throw ExchangeError.rateLimited(httpStatus: response.status, retryAfterSeconds: seconds)
                }
            case 500...:
                let what = "\(method) \(path): HTTP \(response.status) \(String(decoding: response.body.prefix(200), as: UTF8.self))"
                guard retry == .readOrQuery else { throw ExchangeError.unknownOutcome(what) }
                attempt += 1
                guard attempt <= config.readRetries else { throw ExchangeError.unavailable(what) }
                try await backOff(attempt)
            default:
                let error = Self.apiError(response)
                // Binance's "execution status unknown" codes: the request may have gone through.
                if retry == .never, error.known == .timeout || error.known == .unexpectedResponse {
                    throw ExchangeError.unknownOutcome("\(method) \(path): \(error)")
                }
                // A clock that drifted: read the server time again and retry once.
                if error.known == .invalidTimestamp, security == .signed, !resynced {
                    resynced = true
                    try await syncTime()
                    continue
                }
                throw ExchangeError.api(error)
            }
        }
    }

    static func apiError(_ response: TransportResponse) -> BinanceError {
        if let answer = try? JSONDecoder().decode(CodeMessage.self, from: response.body) {
            return BinanceError(code: answer.code, message: answer.msg, httpStatus: response.status)
        }
        return BinanceError(code: BinanceErrorCode.unknown.rawValue,
                            message: "HTTP \(response.status): \(String(decoding: response.body.prefix(200), as: UTF8.self))",
                            httpStatus: response.status)
    }

    private func backOff(_ attempt: Int) async throws {
        let base = config.retryBaseDelayMs << min(attempt - 1, 6)
        let jittered = Double(base) * Double.random(in: 0.5...1.5)
        try await Task.sleep(nanoseconds: UInt64(jittered * 1_000_000))
    }

    private func makeRequest(_ method: String, _ path: String, _ parameters: [(String, String)],
                             security: Security) async throws -> TransportRequest {
        var query = QueryString.encode(parameters)
        var headers: [String] = []
        if security != .none {
            guard let credentials else {
                throw ExchangeError.invalidRequest("\(method) \(path) needs an API key: set QT_API_KEY and QT_API_SECRET")
            }
            headers.append("X-MBX-APIKEY: \(credentials.apiKey)")
            if security == .signed {
                if clock.needsSync(intervalMs: config.timeSyncIntervalMs) { try await syncTime() }
                let signed = QueryString.encode(parameters + [("recvWindow", String(config.recvWindowMs)),
                                                              ("timestamp", String(clock.nowMs()))])
                query = signed + "&signature=" + RequestSigner.signature(of: signed, secret: credentials.secret)
            }
        }
        return TransportRequest(method: method, url: config.baseURL + path + (query.isEmpty ? "" : "?" + query), headers: headers)
    }

    /// Reads `/fapi/v1/time` and sets the offset added to every signed `timestamp`.
    @discardableResult
    public func syncTime() async throws -> Int64 {
        let sent = ServerClock.localMs()
        let answer = try await call("GET", "/fapi/v1/time", as: ServerTime.self)
        let received = ServerClock.localMs()
        clock.set(offsetMs: answer.serverTime - (sent + received) / 2, atMs: received)
        return clock.offsetMs
    }
}

/// The exchange's clock as an offset from the local one.
final class ServerClock: Sendable {
    /// The offset and when it was measured (local ms); nil before the first sync.
    private let sync = Mutex<(offset: Int64, syncedAt: Int64?)>((0, nil))

    static func localMs() -> Int64 { Int64(Date().timeIntervalSince1970 * 1000) }

    var offsetMs: Int64 { sync.withLock { $0.offset } }

    func nowMs() -> Int64 { Self.localMs() + offsetMs }

    func needsSync(intervalMs: Int64) -> Bool {
        sync.withLock { $0.syncedAt.map { Self.localMs() - $0 > intervalMs } ?? true }
    }

    func set(offsetMs: Int64, atMs: Int64) {
        sync.withLock { $0 = (offsetMs, atMs) }
    }
}

/// `key=value&…` in the given order, values percent-encoded: the exact string that is signed.
package enum QueryString {
    private static let unreserved = CharacterSet(charactersIn: "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_.~")

    package static func encode(_ parameters: [(String, String)]) -> String {
        parameters.map { "\($0.0)=\($0.1.addingPercentEncoding(withAllowedCharacters: unreserved) ?? $0.1)" }
            .joined(separator: "&")
    }

    /// Splits a query string into its pairs (percent-decoded), in order.
    package static func decode(_ query: String) -> [(String, String)] {
        query.split(separator: "&").map { pair in
            let parts = pair.split(separator: "=", maxSplits: 1, omittingEmptySubsequences: false)
            let key = String(parts[0]).removingPercentEncoding ?? String(parts[0])
            let value = parts.count > 1 ? (String(parts[1]).removingPercentEncoding ?? String(parts[1])) : ""
            return (key, value)
        }
    }
}
