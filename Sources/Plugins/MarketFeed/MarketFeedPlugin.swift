import Exchange
import Foundation
import Host
import Identity
import Messages

/// Publishes closed 1m bars on `qt.market.kline.<SYM>` for the universe's symbols and every
/// symbol with an open position in the ledger (R4: no list of its own). A symbol seen for the
/// first time is backfilled; after that each poll fetches from the last published bar on, so a
/// gap (the feed was down, a poll failed) is refetched, never skipped. A bar's message id is
/// `H(market-feed, kline, symbol, open time, 0)`: a bar published twice is stored once.
///
/// Streaming (the node config's `exchange.stream_url` set): closed bars come from each symbol's
/// `<sym>@kline_1m` stream (DESIGN.md §8) and are published by the `stream` timer in order; a
/// (re)connection or a gap in a symbol's bars is filled over REST from its cursor first, so the
/// published sequence has no gap and no duplicate. Only the host holding the singleton timers
/// holds the connections (`StreamLease`). Without `stream_url` it polls REST:
///
/// Request weight: one `premiumIndex` for all symbols per poll (its `time` is the exchange's
/// clock) tells which symbols can have a newly closed bar; only those are asked for klines, in
/// pages under 100 bars (the cheapest weight). 566 symbols polled every 5 s cost about 700 of
/// Binance's 2,400 per minute instead of 6,800.
public final class MarketFeedPlugin: Plugin {
    public static let name = "market-feed"
    public static let barIntervalMs: Int64 = 60_000
    static let cursorState = "cursors"
    /// Under 100 bars a klines request weighs 1 on Binance.
    static let pageLimit = 99

    public static func registration(exchanges: ExchangeClients) -> PluginRegistration {
        PluginRegistration(
            manifest: PluginManifest(
                name: name, version: "1.0.0",
                outputs: [OutputSpec("klines", subject: "qt.market.kline.*", type: Kline.self)],
                kvReads: ["qt_universe", "qt_ledger"],
                kvWrites: ["qt_state"],
                timers: [TimerSpec("poll", intervalMs: 5_000, singleton: true, intervalSecondsSetting: "interval_s"),
                         TimerSpec("stream", intervalMs: 250, singleton: true, intervalSecondsSetting: "stream_interval_s")],
                config: [
                    ConfigKey("interval_s", .double, default: .double(5), range: 0.2...3600,
                              help: "how often to poll the exchange for closed bars (streaming: to refresh the symbols streamed)"),
                    ConfigKey("stream_interval_s", .double, default: .double(0.25), range: 0.02...60,
                              help: "streaming: how often bars received from the streams are published"),
                    ConfigKey("backfill_bars", .int, default: .int(301), range: 1...1500, help: "closed bars fetched for a symbol seen for the first time"),
                    ConfigKey("max_pages_per_poll", .int, default: .int(10), range: 1...100, help: "pages of 99 bars one symbol may fetch per poll"),
                ]),
            make: { setup in
                MarketFeedPlugin(exchange: try exchanges.client(setup, plugin: name), streamURL: setup.exchange?.streamURL,
                                 backfillBars: max(1, min(try setup.settings.int("backfill_bars"), 1_499)),
                                 maxPages: max(1, try setup.settings.int("max_pages_per_poll")))
            })
    }

    private let exchange: any FuturesExchange
    private let backfillBars: Int
    private let maxPages: Int
    private let received = KlineStreamBuffer()
    private let streams: StreamLease?

    init(exchange: any FuturesExchange, streamURL: String?, backfillBars: Int, maxPages: Int) {
        self.exchange = exchange
        self.backfillBars = backfillBars
        self.maxPages = maxPages
        if let streamURL {
            let received = received
            streams = StreamLease {
                StreamSet(baseURL: streamURL, onEvent: { received.receive($0) }, onConnect: { received.connected($0) })
            }
        } else {
            streams = nil
        }
    }

    public func stop() async { await streams?.close() }

    public func handle(_ input: Input, context: HandlerContext) async throws {
        throw PluginError.contract("\(Self.name) has no inputs")
    }

    public func tick(_ timer: String, context: HandlerContext) async throws {
        defer { context.recordWeight(of: exchange) }
        switch (timer, streams) {
        case ("poll", nil): try await poll(context)
        case ("poll", let streams?):
            streams.touch(wanted: Set(try await Self.symbolsToFeed(context).map(KlineStreamBuffer.streamName)))
        case ("stream", let streams?):
            // The first stream tick on this host opens the connections; the poll tick names the symbols.
            if !streams.isRunning { streams.touch(wanted: Set(try await Self.symbolsToFeed(context).map(KlineStreamBuffer.streamName))) }
            streams.touch()
            try await publishReceived(context)
        default: return
        }
    }

    /// Publishes the bars the streams delivered, in order per symbol, after a REST backfill
    /// where a symbol (re)connected or its next bar is not the one after its cursor.
    private func publishReceived(_ context: HandlerContext) async throws {
        let (bars, resync) = received.take()
        guard !bars.isEmpty || !resync.isEmpty else { return }
        let stored = try await context.loadState(Self.cursorState)
        var cursors = stored?.state.values.compactMapValues { Int64($0) } ?? [:]
        var firstError: Error?
        for symbol in Set(bars.keys).union(resync).sorted() {
            var cursor = cursors[symbol]
            do {
                if resync.contains(symbol) || cursor == nil { cursor = try await feed(symbol, after: cursor, context: context) ?? cursor }
                var published = false
                for bar in (bars[symbol] ?? []).sorted(by: { $0.openTime < $1.openTime }) where bar.openTime > cursor ?? .min {
                    if let known = cursor, bar.openTime != known + Self.barIntervalMs {
                        cursor = try await feed(symbol, after: known, context: context) ?? known
                        if bar.openTime <= cursor! { continue }
                        // REST does not have the missing bars yet: publish nothing past the gap.
                        guard bar.openTime == cursor! + Self.barIntervalMs else { received.resync(symbol); break }
                    }
                    let id = ContentID.content(plugin: Self.name, kind: "kline", symbol: symbol, eventTimeMs: bar.openTime, revision: 0)
                    try context.emit("klines", Self.message(bar, symbol: symbol), subject: Subjects.kline(symbol), id: id)
                    cursor = bar.openTime
                    published = true
                }
                if published { try await context.publishNow() }
                cursors[symbol] = cursor
            } catch {
                // Its cursor stays where the bus has it; the next drain backfills from there.
                received.resync(symbol)
                firstError = firstError ?? error
            }
        }
        var state = stored?.state ?? PluginState()
        state.values = cursors.mapValues(String.init)
        _ = try await context.saveState(Self.cursorState, state, expectedRevision: stored?.revision ?? 0)
        if let firstError { throw firstError }
    }

    private func poll(_ context: HandlerContext) async throws {
        let symbols = try await Self.symbolsToFeed(context)
        guard !symbols.isEmpty else { return }
        let stored = try await context.loadState(Self.cursorState)
        var cursors = stored?.state.values.compactMapValues { Int64($0) } ?? [:]
        let exchangeTimes = Dictionary(try await exchange.premiumIndexes().map { ($0.symbol, $0.time) }, uniquingKeysWith: max)
        var firstError: Error?
        for symbol in symbols {
            // The bar after the cursor closes at cursor + 2 intervals: nothing new to ask for before.
            if let cursor = cursors[symbol], let now = exchangeTimes[symbol], now < cursor + 2 * Self.barIntervalMs { continue }
            do {
                if let newest = try await feed(symbol, after: cursors[symbol], context: context) { cursors[symbol] = newest }
            } catch {
                // One symbol's failure must not starve the others; its cursor stays, so the next
                // poll refetches from there.
                firstError = firstError ?? error
            }
        }
        var state = PluginState()
        state.values = cursors.mapValues(String.init)
        state.symbols = symbols
        _ = try await context.saveState(Self.cursorState, state, expectedRevision: stored?.revision ?? 0)
        if let firstError { throw firstError }
    }

    /// Publishes the closed bars of `symbol` after `cursor` (or a backfill) and returns the open
    /// time of the newest one published.
    private func feed(_ symbol: String, after cursor: Int64?, context: HandlerContext) async throws -> Int64? {
        var newest = cursor
        for _ in 0..<maxPages {
            let page: [BinanceKline]
            if let newest {
                page = try await exchange.klines(symbol: symbol, startTime: newest + Self.barIntervalMs, limit: Self.pageLimit)
            } else {
                page = try await exchange.klines(symbol: symbol, limit: backfillBars + 1)
            }
            // The last bar of an answer may still be forming: it is published by a later poll.
            let closed = page.dropLast().filter { bar in newest.map { bar.openTime > $0 } ?? true }
            guard !closed.isEmpty else { break }
            for bar in closed {
                let id = ContentID.content(plugin: Self.name, kind: "kline", symbol: symbol, eventTimeMs: bar.openTime, revision: 0)
                try context.emit("klines", Self.message(bar, symbol: symbol), subject: Subjects.kline(symbol), id: id)
            }
            try await context.publishNow()
            newest = closed.last?.openTime
            if page.count < Self.pageLimit { break }
        }
        return newest
    }

    static func message(_ bar: BinanceKline, symbol: String) -> Kline {
        var kline = Kline()
        kline.symbol = symbol
        kline.openTimeMs = bar.openTime
        kline.closeTimeMs = bar.closeTime
        kline.open = bar.open.plainString
        kline.high = bar.high.plainString
        kline.low = bar.low.plainString
        kline.close = bar.close.plainString
        kline.volume = bar.volume.plainString
        kline.quoteVolume = bar.quoteVolume.plainString
        kline.trades = bar.trades
        kline.meta.eventTimeMs = bar.closeTime
        return kline
    }

    /// Every universe candidate, active or filtered out, and every symbol with an open (or
    /// unreadable) ledger entry, sorted. A filtered-out candidate needs its bars too: the universe
    /// judges it again by a market state that only its bars keep current.
    static func symbolsToFeed(_ context: HandlerContext) async throws -> [String] {
        var symbols = Set<String>()
        if let universe = try await context.kv("qt_universe").get(Universe.self, "active") {
            symbols.formUnion(universe.value.entries.map(\.symbol))
        }
        let ledger = try await context.kv("qt_ledger")
        // A symbol whose entry cannot be read may still hold a position: it keeps its klines.
        let scan = try await LedgerPosition.scan(ledger)
        symbols.formUnion(scan.open.map(\.symbol))
        symbols.formUnion(scan.unreadable.keys)
        return symbols.sorted()
    }
}
