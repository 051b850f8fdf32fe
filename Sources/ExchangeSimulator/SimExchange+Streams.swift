import Exchange
import Foundation

/// What the stream server sends after one step of the market: every payload already encoded
/// as Binance sends it, keyed by the stream it belongs to.
struct StreamBatch: Sendable {
    /// `<symbol>@kline_1m` → closed bars, oldest first.
    var klines: [String: [String]] = [:]
    /// One mark per symbol when the 1 s mark stream is due (empty otherwise).
    var marks: [MarkPriceEvent] = []
    /// listenKey → user data events, in the order they happened.
    var user: [String: [String]] = [:]

    var isEmpty: Bool { klines.isEmpty && marks.isEmpty && user.isEmpty }
}

/// The streams behind the WebSocket server: closed bars, marks and user data events, and the
/// listenKeys that name a user data stream (valid 60 minutes from the last keep-alive).
extension SimExchange {
    static let listenKeyLifetimeMs: Int64 = 60 * 60_000
    static let markStreamIntervalMs: Int64 = 1_000

    /// Advances the market to now and collects what the streams owe their subscribers:
    /// closed bars of `klineSymbols` not sent yet, marks when a second has passed, and account
    /// events (which also end an expired listenKey's stream with `listenKeyExpired`).
    func streamStep(klineSymbols: Set<String>, wantsMarks: Bool) -> StreamBatch {
        withLock {
            advanceLocked()
            var batch = StreamBatch()
            let wallMs = wallClock()
            let simulatedMs = clock.simulatedMs(wallMs: wallMs)
            let encoder = JSONEncoder()
            // A symbol nobody listens to starts again from its next bar when someone does.
            for symbol in streamedBarOpen.keys where !klineSymbols.contains(symbol) { streamedBarOpen[symbol] = nil }
            for symbol in klineSymbols {
                guard let index = market.index[symbol], let newest = market.closed[index].last else { continue }
                let after = streamedBarOpen[symbol] ?? newest.openTime
                streamedBarOpen[symbol] = after
                let bars = market.closed[index].reversed().prefix { $0.openTime > after }.reversed()
                guard !bars.isEmpty else { continue }
                let listing = market.listings[index]
                batch.klines[symbol] = bars.compactMap { bar in
                    let event = KlineEvent(eventTime: bar.openTime + SimClock.barLengthMs, symbol: symbol,
                                           bar: .init(binanceKline(bar, listing: listing), symbol: symbol, closed: true))
                    return (try? encoder.encode(event)).map { String(decoding: $0, as: UTF8.self) }
                }
                streamedBarOpen[symbol] = newest.openTime
            }
            if wantsMarks, wallMs >= nextMarkWallMs {
                nextMarkWallMs = wallMs + Self.markStreamIntervalMs
                let eightHours: Int64 = 8 * 3_600_000
                batch.marks = market.listings.indices.map { index in
                    MarkPriceEvent(eventTime: simulatedMs, symbol: market.listings[index].symbol, markPrice: markDecimal(index),
                                   fundingRate: 0.0001, nextFundingTime: (simulatedMs / eightHours + 1) * eightHours)
                }
            }
            let payloads = userPayloads(account.drainEvents(), nowMs: simulatedMs, encoder: encoder)
            for (key, expires) in listenKeys {
                if expires <= wallMs {
                    listenKeys[key] = nil
                    let expired = ListenKeyExpired(eventTime: simulatedMs, listenKey: key)
                    batch.user[key] = [(try? encoder.encode(expired)).map { String(decoding: $0, as: UTF8.self) } ?? ""]
                } else if !payloads.isEmpty {
                    batch.user[key] = payloads
                }
            }
            return batch
        }
    }

    private func userPayloads(_ events: [SimAccount.Event], nowMs: Int64, encoder: JSONEncoder) -> [String] {
        var payloads: [String] = []
        func add<T: Encodable>(_ value: T) {
            if let data = try? encoder.encode(value) { payloads.append(String(decoding: data, as: UTF8.self)) }
        }
        for event in events {
            switch event {
            case .trade(let trade, let order):
                let position = account.positions[trade.symbol] ?? SimAccount.Position()
                let mark = market.index[trade.symbol].map(markDecimal) ?? trade.price
                add(AccountUpdate(eventTime: nowMs, transactionTime: trade.time, reason: "ORDER",
                                  balances: [.init(asset: "USDT", walletBalance: account.walletBalance,
                                                   balanceChange: trade.realizedPnl - trade.commission)],
                                  positions: [.init(symbol: trade.symbol, positionAmount: position.amount, entryPrice: position.entryPrice,
                                                    unrealizedProfit: account.unrealizedPnL(trade.symbol, mark: mark))]))
                add(OrderTradeUpdate(eventTime: nowMs, order: .init(trade: trade, order: order)))
            case .algo(let algo):
                add(AlgoUpdate(eventTime: nowMs, order: .init(algo)))
            }
        }
        return payloads
    }

    /// Whether `name` is a listenKey that is valid now.
    func isListenKey(_ name: String) -> Bool {
        withLock { listenKeys[name].map { $0 > wallClock() } ?? false }
    }

    /// Every listenKey expires now (fault knob): subscribers get `listenKeyExpired` at the next step.
    public func expireListenKeys() {
        withLock { for key in listenKeys.keys { listenKeys[key] = wallClock() } }
    }

    // MARK: Endpoints

    func newListenKey(_ request: Request) throws -> Reply {
        if let valid = listenKeys.first(where: { $0.value > request.wallMs })?.key {
            listenKeys[valid] = request.wallMs + Self.listenKeyLifetimeMs
            return try json(ListenKey(listenKey: valid))
        }
        let alphabet = Array("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789")
        let key = String((0..<64).map { _ in alphabet[Int.random(in: 0..<alphabet.count, using: &faultRandom)] })
        listenKeys[key] = request.wallMs + Self.listenKeyLifetimeMs
        return try json(ListenKey(listenKey: key))
    }

    func keepAliveListenKey(_ request: Request) throws -> Reply {
        guard let valid = listenKeys.first(where: { $0.value > request.wallMs })?.key else {
            throw BinanceError(.listenKeyDoesNotExist, "This listenKey does not exist.")
        }
        listenKeys[valid] = request.wallMs + Self.listenKeyLifetimeMs
        return try json(ListenKey(listenKey: valid))
    }

    func closeListenKey(_ request: Request) throws -> Reply {
        if let key = request.parameters["listenKey"] { listenKeys[key] = nil } else { listenKeys.removeAll() }
        return Reply(status: 200, body: Data("{}".utf8))
    }
}
