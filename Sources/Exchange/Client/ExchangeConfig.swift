import Foundation

/// How the client reaches the exchange. The node config's `exchange:` section maps onto this.
public struct ExchangeConfig: Sendable {
    /// `https://fapi.binance.com`, `https://testnet.binancefuture.com`, or the simulator's URL.
    public var baseURL: String
    /// How long a signed request stays valid after its `timestamp` (Binance's default is 5000).
    public var recvWindowMs: Int64 = 5_000
    public var timeoutMs: Int = 10_000
    public var connectTimeoutMs: Int = 3_000
    /// Retries of reads and order queries after a network error, timeout or 5xx (never of a new order).
    public var readRetries: Int = 3
    /// First back-off of those retries; doubled each time, with jitter.
    public var retryBaseDelayMs: Int = 200
    /// Threads (each with its own keep-alive connection) for concurrent requests.
    public var connections: Int = 4
    /// How long to wait out a 429/418 for a read before giving up.
    public var maxRateLimitWaitMs: Int = 60_000
    /// The IP's request weight per minute (Binance: 2,400); nil: as `exchangeInfo` announces it
    /// (no budget is kept before the first `exchangeInfo`).
    public var weightLimitPerMinute: Int?
    /// The share of that limit this client spends at most per minute; reads beyond it wait for
    /// the next minute (orders are never held). Several processes behind one IP split the limit.
    public var weightShare = 0.8
    /// Re-read the server time this often (its offset is added to every `timestamp`).
    public var timeSyncIntervalMs: Int64 = 300_000

    public init(baseURL: String) {
        self.baseURL = baseURL.hasSuffix("/") ? String(baseURL.dropLast()) : baseURL
    }
}
