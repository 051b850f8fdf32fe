import Exchange
import Foundation
import Kernels

/// The simulated exchange behind the HTTP server: Binance's endpoints, checks and errors over a
/// seeded market and one account. Thread-safe (one lock); the server calls `handle` per request.
public final class SimExchange: @unchecked Sendable {
    /// What the HTTP layer sends back.
    public struct Reply: Sendable {
        public var status: Int
        public var body: Data
        public var headers: [(String, String)] = []
        /// The order was executed; close the connection instead of answering (fault knob).
        public var dropResponse = false
    }

    public let config: SimulatorConfig
    let clock: SimClock
    private let lock = NSLock()
    var market: SimMarket
    var account: SimAccount
    private var currentFaults: SimulatorFaults
    var faultRandom: SeededGenerator
    /// Per symbol, the open time of the last closed bar its kline stream sent.
    var streamedBarOpen: [String: Int64] = [:]
    var nextMarkWallMs: Int64 = 0
    /// listenKey → wall time it expires.
    var listenKeys: [String: Int64] = [:]
    private var rateLimitedReplies = 0
    private var rateLimitRetryAfter = 1
    private var weightMinute: Int64 = 0
    private var weightUsed = 0
    private var ordersPlaced = 0
    private var requestCounts: [String: Int] = [:]
    private var weightCharged = 0
    /// clientAlgoId → wall time (ms) the stop triggered and filled.
    private var stopTriggers: [String: Int64] = [:]
    /// Each symbol's rounded mark and the market step it is for (guarded by the exchange's lock).
    private var markMemo: [Int: (step: Int64, mark: Decimal)] = [:]
    private var weightByPath: [String: Int] = [:]
    let wallClock: @Sendable () -> Int64
    /// `btcusdt` → `BTCUSDT`: stream names are lower case.
    let symbolsByLowercase: [String: String]

    public init(config: SimulatorConfig, wallClock: @escaping @Sendable () -> Int64 = { Int64(Date().timeIntervalSince1970 * 1000) }) {
        self.config = config
        self.wallClock = wallClock
        clock = SimClock(wallStartMs: wallClock(), barMs: config.barMs, simulatedStartMs: config.simulatedStartMs)
        market = SimMarket(listings: SimListing.listings(count: max(1, config.symbols), seed: config.seed),
                           seed: config.seed, historyBars: config.historyBars, simStartMs: clock.simStartMs)
        account = SimAccount(walletBalance: config.startingBalance, takerFeeRate: config.takerFeeRate,
                             slippageBps: config.slippageBps)
        symbolsByLowercase = Dictionary(uniqueKeysWithValues: market.listings.map { ($0.symbol.lowercased(), $0.symbol) })
        currentFaults = config.faults
        faultRandom = SeededGenerator(seed: config.seed, stream: "faults")
    }

    // MARK: Controls for tests and scenarios (not Binance endpoints)

    public var symbols: [String] { market.listings.map(\.symbol) }

    public var faults: SimulatorFaults {
        get { lock.withLock { currentFaults } }
        set { lock.withLock { currentFaults = newValue } }
    }

    /// The next `count` requests are answered 429 with `Retry-After: retryAfterSeconds`.
    public func rateLimitNext(_ count: Int, retryAfterSeconds: Int) {
        lock.withLock { rateLimitedReplies = count; rateLimitRetryAfter = retryAfterSeconds }
    }

    /// Forces a symbol's market into `regime` for `bars` bars from now.
    public func force(symbol: String, regime: MarketRegime, bars: Int, trendUp: Bool = true) {
        lock.withLock {
            advanceLocked()
            if let index = market.index[symbol] { market.force(index, regime: regime, bars: bars, trendUp: trendUp) }
        }
    }

    /// Requests received on `"GET /fapi/v1/klines"` (method, space, path) since the start.
    public func requests(_ endpoint: String) -> Int { lock.withLock { requestCounts[endpoint] ?? 0 } }

    /// The wall time (ms since 1970) the simulator triggered and filled the conditional order `clientAlgoId`.
    public func stopTriggeredAtWallMs(_ clientAlgoId: String) -> Int64? { lock.withLock { stopTriggers[clientAlgoId] } }

    /// Requests and weight per endpoint since the start, heaviest first.
    public var weightByEndpoint: [(endpoint: String, requests: Int, weight: Int)] {
        lock.withLock {
            requestCounts.map { ($0.key, $0.value, weightByPath[$0.key] ?? 0) }.sorted { $0.weight > $1.weight }
        }
    }

    /// Request weight charged since the start, over every client (the simulator sees one IP).
    public var weightSpent: Int { lock.withLock { weightCharged } }

    /// Every `-1003` / 429 the weight limit has answered since the start.
    public private(set) var weightLimitRefusals: Int {
        get { lock.withLock { refusals } }
        set { refusals = newValue }
    }
    private var refusals = 0

    /// New orders accepted through `POST /fapi/v1/order` (stop triggers not included).
    public var acceptedOrders: Int { lock.withLock { ordersPlaced } }

    public func mark(_ symbol: String) -> Decimal? {
        lock.withLock {
            advanceLocked()
            return market.index[symbol].map { markDecimal($0) }
        }
    }

    public func positionAmount(_ symbol: String) -> Decimal {
        lock.withLock { account.positions[symbol]?.amount ?? 0 }
    }

    /// Closes of `symbol`'s closed bars, oldest first (for determinism checks).
    public func closes(_ symbol: String) -> [Double] {
        lock.withLock { market.index[symbol].map { market.closed[$0].map(\.close) } ?? [] }
    }

    public var simulatedNowMs: Int64 { clock.simulatedMs(wallMs: wallClock()) }

    // MARK: Requests

    /// Handles one HTTP request. `query` is the raw query string as sent (what was signed).
    public func handle(method: String, path: String, query: String, body: String, apiKey: String?) -> Reply {
        lock.lock()
        defer { lock.unlock() }
        guard let endpoint = Self.endpoints[method + " " + path] else {
            let known = Self.endpoints.keys.contains { $0.hasSuffix(" " + path) }
            return error(BinanceError(.unknown, known ? "Method \(method) not allowed on \(path)." : "Unknown endpoint \(path).",
                                      httpStatus: known ? 405 : 404))
        }
        var parameters: [String: String] = [:]
        for (key, value) in QueryString.decode(query) + QueryString.decode(body) { parameters[key] = value }
        let weight = RequestWeight.of(method: method, path: path, parameters: parameters)
        requestCounts[method + " " + path, default: 0] += 1
        weightCharged += weight
        weightByPath[method + " " + path, default: 0] += weight
        if rateLimitedReplies > 0 {
            rateLimitedReplies -= 1
            var reply = error(BinanceError(.tooManyRequests, "Too many requests; please use the websocket for live updates.", httpStatus: 429))
            reply.headers.append(("Retry-After", String(rateLimitRetryAfter)))
            return reply
        }
        let wallMs = wallClock() + Int64(currentFaults.clockSkewMs)
        if let limited = chargeWeight(weight, wallMs: wallMs) { return limited }
        if currentFaults.serverErrorRate > 0, Double.random(in: 0..<1, using: &faultRandom) < currentFaults.serverErrorRate {
            return withWeight(error(BinanceError(code: -1001, message: "Internal error; unable to process your request. Please try again.",
                                                 httpStatus: 503)))
        }
        do {
            if endpoint.security != .none { try authenticate(endpoint.security, query: query, body: body, apiKey: apiKey,
                                                             parameters: parameters, wallMs: wallMs) }
            advanceLocked()
            var reply = try endpoint.handler(self)(Request(parameters: parameters, wallMs: wallMs,
                                                           simulatedMs: clock.simulatedMs(wallMs: wallMs)))
            if endpoint.countsAsOrder {
                ordersPlaced += 1
                if currentFaults.dropResponseAfterFillRate > 0,
                   Double.random(in: 0..<1, using: &faultRandom) < currentFaults.dropResponseAfterFillRate {
                    reply.dropResponse = true
                }
            }
            return withWeight(reply)
        } catch let binance as BinanceError {
            return withWeight(error(binance))
        } catch {
            return withWeight(self.error(BinanceError(.unknown, "\(error)")))
        }
    }

    struct Request {
        let parameters: [String: String]
        let wallMs: Int64
        let simulatedMs: Int64

        func required(_ name: String) throws -> String {
            guard let value = parameters[name], !value.isEmpty else {
                throw BinanceError(.mandatoryParameterMissing, "Mandatory parameter '\(name)' was not sent, was empty/null, or malformed.")
            }
            return value
        }

        func decimal(_ name: String) throws -> Decimal {
            let text = try required(name)
            guard let value = Decimal.parse(text) else {
                throw BinanceError(.illegalCharacters, "Illegal characters found in parameter '\(name)'; legal range is '^([0-9]{1,20})(\\.[0-9]{1,20})?$'.")
            }
            return value
        }

        func int(_ name: String) throws -> Int64? {
            guard let text = parameters[name] else { return nil }
            guard !text.isEmpty, text.utf8.count <= 20, text.utf8.allSatisfy({ $0 >= 0x30 && $0 <= 0x39 }), let value = Int64(text) else {
                throw BinanceError(.illegalCharacters, "Illegal characters found in parameter '\(name)'; legal range is '^[0-9]{1,20}$'.")
            }
            return value
        }

        func bool(_ name: String) throws -> Bool {
            switch parameters[name]?.lowercased() {
            case nil, "false": return false
            case "true": return true
            default: throw BinanceError(.illegalCharacters, "Illegal characters found in parameter '\(name)'; legal range is 'true, false'.")
            }
        }
    }

    enum Security { case none, apiKey, signed }

    /// An endpoint's security and handler; its weight is `RequestWeight`'s.
    struct Endpoint: Sendable {
        let security: Security
        let countsAsOrder: Bool
        let handler: @Sendable (SimExchange) -> (Request) throws -> Reply

        init(_ security: Security, countsAsOrder: Bool = false,
             _ handler: @escaping @Sendable (SimExchange) -> (Request) throws -> Reply) {
            self.security = security
            self.countsAsOrder = countsAsOrder
            self.handler = handler
        }
    }

    /// Binance's checks for USER_DATA and TRADE endpoints, in Binance's order: API key, then
    /// timestamp against `recvWindow` (wall time), then the HMAC of the exact parameters.
    private func authenticate(_ security: Security, query: String, body: String, apiKey: String?, parameters: [String: String],
                              wallMs: Int64) throws {
        guard let apiKey, !apiKey.isEmpty else { throw BinanceError(.badAPIKeyFormat, "API-key format invalid.", httpStatus: 401) }
        guard apiKey == config.credentials.apiKey else {
            throw BinanceError(.rejectedAPIKey, "Invalid API-key, IP, or permissions for action.", httpStatus: 401)
        }
        guard security == .signed else { return }
        guard let stampText = parameters["timestamp"], let timestamp = Int64(stampText) else {
            throw BinanceError(.mandatoryParameterMissing, "Mandatory parameter 'timestamp' was not sent, was empty/null, or malformed.")
        }
        let recvWindow = parameters["recvWindow"].flatMap { Int64($0) } ?? 5_000
        guard recvWindow > 0, recvWindow <= 60_000 else {
            throw BinanceError(code: -1131, message: "recvWindow must be less than 60000", httpStatus: 400)
        }
        if timestamp > wallMs + 1_000 {
            throw BinanceError(.invalidTimestamp, "Timestamp for this request was 1000ms ahead of the server's time.")
        }
        if wallMs - timestamp > recvWindow {
            throw BinanceError(.invalidTimestamp, "Timestamp for this request is outside of the recvWindow.")
        }
        guard let signature = parameters["signature"], !signature.isEmpty else {
            throw BinanceError(.mandatoryParameterMissing, "Mandatory parameter 'signature' was not sent, was empty/null, or malformed.")
        }
        let payload = Self.withoutSignature(query) + Self.withoutSignature(body)
        guard RequestSigner.matches(signature.lowercased(), RequestSigner.signature(of: payload, secret: config.credentials.secret)) else {
            throw BinanceError(.invalidSignature, "Signature for this request is not valid.")
        }
    }

    static func withoutSignature(_ parameters: String) -> String {
        parameters.split(separator: "&").filter { !$0.hasPrefix("signature=") }.joined(separator: "&")
    }

    private func chargeWeight(_ weight: Int, wallMs: Int64) -> Reply? {
        let minute = wallMs / 60_000
        if minute != weightMinute { weightMinute = minute; weightUsed = 0 }
        weightUsed += weight
        guard weightUsed > config.weightLimitPerMinute else { return nil }
        refusals += 1
        var reply = withWeight(error(BinanceError(.tooManyRequests, "Too many requests; current limit of IP is \(config.weightLimitPerMinute) "
                                                  + "request weight per 1 MINUTE. Please use the websocket for live updates.", httpStatus: 429)))
        reply.headers.append(("Retry-After", String(max(1, 60 - (wallMs / 1_000) % 60))))
        return reply
    }

    private func withWeight(_ reply: Reply) -> Reply {
        var reply = reply
        reply.headers.append(("X-MBX-USED-WEIGHT-1M", String(weightUsed)))
        return reply
    }

    func error(_ error: BinanceError) -> Reply {
        Reply(status: error.httpStatus, body: (try? JSONEncoder().encode(CodeMessage(code: error.code, msg: error.message))) ?? Data())
    }

    func json<T: Encodable>(_ value: T) throws -> Reply {
        Reply(status: 200, body: try JSONEncoder().encode(value), headers: [("Content-Type", "application/json")])
    }

    func withLock<T>(_ body: () throws -> T) rethrows -> T {
        lock.lock()
        defer { lock.unlock() }
        return try body()
    }

    /// A bar as the klines endpoint and the kline stream show it: prices on the tick, volumes on the step.
    func binanceKline(_ bar: SimBar, listing: SimListing) -> BinanceKline {
        let round = { (value: Double) in listing.filters.roundPrice(Decimal(value), .nearest) }
        return BinanceKline(openTime: bar.openTime, open: round(bar.open), high: round(bar.high), low: round(bar.low), close: round(bar.close),
                            volume: SymbolFilters.floor(Decimal(bar.volume), to: listing.filters.stepSize),
                            closeTime: bar.openTime + SimClock.barLengthMs - 1, quoteVolume: SymbolFilters.floor(Decimal(bar.quoteVolume), to: 0.0001),
                            trades: bar.trades, takerBuyBaseVolume: SymbolFilters.floor(Decimal(bar.volume / 2), to: listing.filters.stepSize),
                            takerBuyQuoteVolume: SymbolFilters.floor(Decimal(bar.quoteVolume / 2), to: 0.0001))
    }

    /// Generates the market up to the simulated present, firing stops as the mark crosses them.
    func advanceLocked() {
        let now = clock.simulatedMs(wallMs: wallClock())
        guard account.hasOpenAlgoOrders else {
            market.advance(toSimulatedMs: now) { _, _, _ in }
            return
        }
        let listings = market.listings
        var account = self.account
        let openBefore = account.openAlgoOrders.map(\.clientAlgoId)
        // Only a symbol with a live stop near the mark needs the mark as a Decimal at each step
        // (every request advances all 566 symbols; the conversion and rounding were a tenth of the
        // e2e bench's CPU, and then, with hundreds of stops live, most of the simulator's).
        let liveStops = account.liveStopsBySymbol
        let ticks = liveStops.keys.reduce(into: [String: Double]()) { ticks, symbol in
            ticks[symbol] = market.index[symbol].map { listings[$0].filters.tickSize.doubleValue } ?? 0
        }
        market.advance(toSimulatedMs: now) { symbol, price, timeMs in
            let listing = listings[symbol]
            guard let stops = liveStops[listing.symbol], stops.mightFire(at: price, tick: ticks[listing.symbol] ?? 0) else { return }
            account.triggerStops(stops.ids, listing: listing, mark: listing.filters.roundPrice(Decimal(price), .nearest), nowMs: timeMs)
        }
        self.account = account
        let wallMs = wallClock()
        for clientAlgoId in openBefore where account.algoOrder(algoId: nil, clientAlgoId: clientAlgoId)?.algoStatus == .finished {
            stopTriggers[clientAlgoId] = wallMs
        }
    }

    func markDecimal(_ symbol: Int) -> Decimal {
        // Margin asks for every position's mark on each order; a mark changes only with a step.
        if let known = markMemo[symbol], known.step == market.stepsDone { return known.mark }
        let mark = market.listings[symbol].filters.roundPrice(Decimal(market.mark(symbol)), .nearest)
        markMemo[symbol] = (market.stepsDone, mark)
        return mark
    }

    func listing(_ request: Request) throws -> (Int, SimListing) {
        let symbol = try request.required("symbol")
        guard let index = market.index[symbol] else { throw BinanceError(.badSymbol, "Invalid symbol.") }
        return (index, market.listings[index])
    }

    /// Marks of the symbols with a position: what margin needs.
    func positionMarks() -> [String: Decimal] { marks(of: Array(account.positions.keys)) }

    /// Reads `market` alone (never `account`), so an account change under way may ask for it.
    func marks(of symbols: [String]) -> [String: Decimal] {
        var marks: [String: Decimal] = [:]
        for symbol in symbols { if let index = market.index[symbol] { marks[symbol] = markDecimal(index) } }
        return marks
    }
}
