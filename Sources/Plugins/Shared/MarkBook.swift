import Exchange
import Foundation
import Synchronization

/// The latest mark price of every symbol, from the all-market mark stream
/// (`!markPrice@arr@1s`, one stream for the whole exchange), so a gate that sizes an order
/// reads the mark from market data instead of spending a REST request per intent. A mark older
/// than `maxAge` (the stream is down, the symbol is new) is read over REST instead.
final class MarkBook: Sendable {
    static let allMarketStream = "!markPrice@arr@1s"

    private let exchange: any FuturesExchange
    private let maxAge: Duration
    private final class Table: Sendable {
        let marks = Mutex<[String: (price: Decimal, at: ContinuousClock.Instant)]>([:])
    }

    private let table = Table()
    private let streams: StreamSet?
    private let started = Atomic<Bool>(false)

    init(exchange: any FuturesExchange, streamURL: String?, maxAge: Duration = .seconds(5)) {
        self.exchange = exchange
        self.maxAge = maxAge
        let table = table
        streams = streamURL.map { url in
            StreamSet(baseURL: url, onEvent: { event in
                guard case .markPrices(let updates) = event else { return }
                let now = ContinuousClock.now
                table.marks.withLock { marks in
                    for update in updates where update.markPrice > 0 { marks[update.symbol] = (update.markPrice, now) }
                }
            })
        }
    }

    /// Whether the last mark came from the stream (for counting REST calls in tests).
    private let restReads = Atomic<Int>(0)
    var marksReadOverREST: Int { restReads.load(ordering: .relaxed) }

    func stop() async { await streams?.stop() }

    func mark(_ symbol: String) async throws -> Decimal {
        if let streams, !started.exchange(true, ordering: .relaxed) { streams.update([Self.allMarketStream]) }
        if let fresh = table.marks.withLock({ $0[symbol] }), ContinuousClock.now - fresh.at <= maxAge { return fresh.price }
        restReads.add(1, ordering: .relaxed)
        return try await exchange.premiumIndex(symbol: symbol).markPrice
    }
}
