@testable import Exchange
import ExchangeSimulator
import XCTest

/// Signatures, clocks, rate limits and lost answers: what the client does when the exchange
/// refuses or goes quiet.
final class FailureHandlingTests: SimulatorTestCase {
    func testAWrongSignatureIsATyped1022() async throws {
        let forged = makeClient(credentials: Credentials(apiKey: credentials.apiKey, secret: "not-the-secret"))
        let error = await exchangeError { try await forged.account() }
        XCTAssertEqual(error?.binanceCode, .invalidSignature)
        guard case .api(let binance)? = error else { return XCTFail("\(String(describing: error))") }
        XCTAssertEqual(binance.code, -1022)
        XCTAssertEqual(binance.httpStatus, 400)
    }

    func testAnUnknownAPIKeyIsRejected() async throws {
        let stranger = makeClient(credentials: Credentials(apiKey: "someone-else", secret: credentials.secret))
        let error = await exchangeError { try await stranger.balance() }
        XCTAssertEqual(error?.binanceCode, .rejectedAPIKey)
    }

    func testATimestampOutsideRecvWindowIsATyped1021() async throws {
        // 30 ms on the wire against a 5 ms window: every request arrives too old, even after the
        // client re-reads the server time and tries once more.
        exchange.faults = SimulatorFaults(latencyMs: 30)
        let impatient = makeClient { $0.recvWindowMs = 5 }
        let error = await exchangeError { try await impatient.positionRisk() }
        XCTAssertEqual(error?.binanceCode, .invalidTimestamp)
        exchange.faults = SimulatorFaults()
        let positions = try await impatient.positionRisk()
        XCTAssertEqual(positions.count, 5, "with the latency gone the same client gets through")
    }

    /// A negative or out-of-range limit trapped the simulator (and with it `qt up`); it is a
    /// Binance-style error now, and the simulator keeps answering.
    func testANegativeOrHugeLimitIsABinanceErrorNotATrap() async throws {
        for limit in [-5, 0, 1_001, Int.max] {
            let error = await exchangeError { try await self.client.userTrades(symbol: "BTCUSDT", fromId: nil, startTime: nil, endTime: nil, limit: limit) }
            guard case .api(let refusal)? = error else { return XCTFail("limit \(limit): \(String(describing: error))") }
            XCTAssertTrue([-1100, -1130].contains(refusal.code), "limit \(limit): \(refusal)")
        }
        let trades = try await client.userTrades(symbol: "BTCUSDT")
        XCTAssertEqual(trades.count, 0, "the simulator still answers")
    }

    func testAnAbsurdRetryAfterIsClampedNotOverflowed() {
        XCTAssertEqual(WeightTracker.retryAfterSeconds(header: "9223372036854775807", status: 429), 3 * 86_400)
        XCTAssertEqual(WeightTracker.retryAfterSeconds(header: "-5", status: 429), 1)
        XCTAssertEqual(WeightTracker.retryAfterSeconds(header: "1e9", status: 418), 120, "not a whole number: the status's default")
        XCTAssertEqual(WeightTracker.retryAfterSeconds(header: nil, status: 429), 60)
        let tracker = WeightTracker()
        tracker.block(forSeconds: Int.max)
        XCTAssertLessThanOrEqual(abs(tracker.waitMs() - 3 * 86_400 * 1000), 1_000, "a wait in ms that fits an Int")
    }

    func testA429WithRetryAfterIsWaitedOutForReadsAndRefusesOrdersMeanwhile() async throws {
        exchange.rateLimitNext(1, retryAfterSeconds: 1)
        let started = Date()
        let info = try await client.exchangeInfo()
        XCTAssertEqual(info.symbols.count, 5)
        XCTAssertGreaterThanOrEqual(Date().timeIntervalSince(started), 0.95, "the read waited out Retry-After")

        exchange.rateLimitNext(1, retryAfterSeconds: 2)
        _ = await exchangeError { try await self.client.positionRisk(symbol: "NOPEUSDT") }  // takes the 429, then -1121
        let quantity = try await quantity("ETHUSDT", notional: 50)
        exchange.rateLimitNext(1, retryAfterSeconds: 2)
        let error = await exchangeError {
            try await self.client.newOrder(NewOrder(symbol: "ETHUSDT", side: .buy, quantity: quantity, clientOrderId: "qt-429"))
        }
        guard case .rateLimited(429, let seconds)? = error else { return XCTFail("\(String(describing: error))") }
        XCTAssertEqual(seconds, 2)
        XCTAssertEqual(exchange.acceptedOrders, 0, "a refused order was not placed and not retried")
    }

    func testAResponseDroppedAfterTheFillIsAnUnknownOutcomeThatAQueryResolves() async throws {
        let quantity = try await quantity("BTCUSDT", notional: 150)
        exchange.faults = SimulatorFaults(dropResponseAfterFillRate: 1)
        let error = await exchangeError {
            try await self.client.newOrder(NewOrder(symbol: "BTCUSDT", side: .buy, quantity: quantity, clientOrderId: "qt-dropped"))
        }
        guard case .unknownOutcome? = error else { return XCTFail("\(String(describing: error))") }
        exchange.faults = SimulatorFaults()

        let order = try await client.queryOrder(symbol: "BTCUSDT", clientOrderId: "qt-dropped")
        XCTAssertEqual(order.status, .filled)
        XCTAssertEqual(order.executedQty, quantity)
        XCTAssertEqual(exchange.acceptedOrders, 1, "exactly one order was placed")
        XCTAssertEqual(exchange.positionAmount("BTCUSDT"), quantity)
    }

    func testServerErrorsAreRetriedForReadsButNeverForOrders() async throws {
        let quantity = try await quantity("ETHUSDT", notional: 50)
        try await client.syncTime()
        exchange.faults = SimulatorFaults(serverErrorRate: 1)
        let read = await exchangeError { try await self.client.account() }
        guard case .unavailable? = read else { return XCTFail("\(String(describing: read))") }
        let order = await exchangeError {
            try await self.client.newOrder(NewOrder(symbol: "ETHUSDT", side: .buy, quantity: quantity, clientOrderId: "qt-5xx"))
        }
        guard case .unknownOutcome? = order else { return XCTFail("\(String(describing: order))") }
        XCTAssertEqual(exchange.acceptedOrders, 0)

        exchange.faults = SimulatorFaults(serverErrorRate: 0.5)
        for _ in 0..<10 {
            let account = try await client.account()  // retries get through
            XCTAssertEqual(account.assets.first?.asset, "USDT")
        }
    }
}

/// The stop through the Algo Order API; `/fapi/v1/order` refuses it as Binance has since 2025-12-09.
final class ConditionalOrderTests: SimulatorTestCase {
    override func configure(_ config: inout SimulatorConfig) {
        config.barMs = 20
    }

    func testStopMarketIsRefusedOnTheOrderEndpointAndTriggersThroughTheAlgoAPI() async throws {
        let symbol = "ETHUSDT"
        let quantity = try await quantity(symbol, notional: 300)
        let opened = try await client.newOrder(NewOrder(symbol: symbol, side: .buy, quantity: quantity, clientOrderId: "qt-long"))

        var stop = NewOrder(symbol: symbol, side: .sell, quantity: quantity, reduceOnly: true, clientOrderId: "qt-stop-legacy")
        stop.type = "STOP_MARKET"
        stop.stopPrice = opened.avgPrice * Decimal(string: "0.99")!
        let refused = await exchangeError { try await self.client.newOrder(stop) }
        XCTAssertEqual(refused?.binanceCode, .useAlgoOrderAPI)
        guard case .api(let error)? = refused else { return XCTFail() }
        XCTAssertEqual(error.code, -4120)

        let filters = try await client.symbolFilters()[symbol]!
        let mark = try await client.premiumIndex(symbol: symbol).markPrice
        // Below the entry too: the price may have risen since the open, and the realized PnL below must be a loss.
        let trigger = filters.roundPrice(min(mark, opened.avgPrice) * Decimal(string: "0.997")!, .down)
        let placed = try await client.newStopOrder(NewStopOrder(symbol: symbol, side: .sell, triggerPrice: trigger, clientAlgoId: "qt-sl-1"))
        XCTAssertEqual(placed.algoStatus, .new)
        XCTAssertTrue(placed.closePosition)
        XCTAssertEqual(placed.workingType, .markPrice)
        let open = try await client.openAlgoOrders(symbol: symbol)
        XCTAssertEqual(open.map(\.clientAlgoId), ["qt-sl-1"])
        let duplicate = await exchangeError {
            try await self.client.newStopOrder(NewStopOrder(symbol: symbol, side: .sell, triggerPrice: trigger, clientAlgoId: "qt-sl-1"))
        }
        XCTAssertEqual(duplicate?.binanceCode, .duplicateClientOrderID, "an open order's client id is protected")

        exchange.force(symbol: symbol, regime: .trend, bars: 500, trendUp: false)
        var finished: AlgoOrder?
        for _ in 0..<200 {
            let state = try await client.queryAlgoOrder(clientAlgoId: "qt-sl-1")
            if state.algoStatus != .new { finished = state; break }
            try await Task.sleep(nanoseconds: 50_000_000)
        }
        let fired = try XCTUnwrap(finished, "the stop never triggered")
        XCTAssertEqual(fired.algoStatus, .finished)
        XCTAssertEqual(fired.executedQty, quantity)
        XCTAssertLessThanOrEqual(fired.avgPrice, trigger, "filled at or below the trigger, at the mark")

        let position = try await client.positionRisk(symbol: symbol)
        XCTAssertEqual(position.first?.positionAmt, 0, "the stop flattened the position")
        let trades = try await client.userTrades(symbol: symbol)
        XCTAssertEqual(trades.count, 2)
        XCTAssertEqual(String(trades[1].orderId), fired.actualOrderId)
        XCTAssertEqual(trades[1].side, .sell)
        XCTAssertLessThan(trades[1].realizedPnl, 0)
        let stopFill = try await client.queryOrder(symbol: symbol, clientOrderId: "qt-sl-1")
        XCTAssertEqual(stopFill.origType, "STOP_MARKET")
        let remaining = try await client.openAlgoOrders()
        XCTAssertTrue(remaining.isEmpty)
        XCTAssertEqual(exchange.acceptedOrders, 1, "the close was the exchange's, not a client order")
    }

    func testAnAlgoOrderCanBeCancelledOnce() async throws {
        let symbol = "BNBUSDT"
        let quantity = try await quantity(symbol, notional: 100)
        _ = try await client.newOrder(NewOrder(symbol: symbol, side: .sell, quantity: quantity, clientOrderId: "qt-short"))
        let filters = try await client.symbolFilters()[symbol]!
        let mark = try await client.premiumIndex(symbol: symbol).markPrice
        let trigger = filters.roundPrice(mark * Decimal(string: "1.5")!, .up)
        _ = try await client.newStopOrder(NewStopOrder(symbol: symbol, side: .buy, triggerPrice: trigger, clientAlgoId: "qt-sl-short"))
        let cancelled = try await client.cancelAlgoOrder(clientAlgoId: "qt-sl-short")
        XCTAssertEqual(cancelled.algoStatus, .canceled)
        let again = await exchangeError { try await self.client.cancelAlgoOrder(clientAlgoId: "qt-sl-short") }
        XCTAssertEqual(again?.binanceCode, .cancelRejected)
        let wouldFire = await exchangeError {
            try await self.client.newStopOrder(NewStopOrder(symbol: symbol, side: .buy, triggerPrice: filters.roundPrice(mark * Decimal(string: "0.9")!, .down),
                                                            clientAlgoId: "qt-sl-now"))
        }
        guard case .api(let error)? = wouldFire else { return XCTFail() }
        XCTAssertEqual(error.code, -2021, "a stop that would trigger at once is refused")
    }

    func testAFilledOrdersClientIDIsNotProtectedByTheExchange() async throws {
        let quantity = try await quantity("ETHUSDT", notional: 60)
        _ = try await client.newOrder(NewOrder(symbol: "ETHUSDT", side: .buy, quantity: quantity, clientOrderId: "qt-same"))
        let second = try await client.newOrder(NewOrder(symbol: "ETHUSDT", side: .buy, quantity: quantity, clientOrderId: "qt-same"))
        XCTAssertEqual(second.status, .filled, "as on Binance: only open orders' ids are protected (qt_orders protects the rest)")
        XCTAssertEqual(exchange.acceptedOrders, 2)
    }
}

final class DeterminismTests: XCTestCase {
    func testTheSameSeedGivesTheSamePrices() {
        func run(seed: UInt64) -> SimExchange {
            var config = SimulatorConfig(credentials: Credentials.generate())
            config.seed = seed
            config.symbols = 30
            config.historyBars = 300
            return SimExchange(config: config)
        }
        let first = run(seed: 7), second = run(seed: 7), other = run(seed: 8)
        XCTAssertEqual(first.symbols, second.symbols)
        for symbol in first.symbols {
            XCTAssertEqual(first.closes(symbol).prefix(300), second.closes(symbol).prefix(300), symbol)
        }
        XCTAssertNotEqual(first.closes("BTCUSDT").prefix(300), other.closes("BTCUSDT").prefix(300))
        XCTAssertEqual(first.closes("BTCUSDT").count, 300)
    }

    func testSixHundredSymbolsAreListedWithValidFilters() throws {
        var config = SimulatorConfig(credentials: Credentials.generate())
        config.symbols = 566
        config.historyBars = 300
        let exchange = SimExchange(config: config)
        XCTAssertEqual(Set(exchange.symbols).count, 566)
        let reply = exchange.handle(method: "GET", path: "/fapi/v1/exchangeInfo", query: "", body: "", apiKey: nil)
        let info = try JSONDecoder().decode(ExchangeInfo.self, from: reply.body)
        for symbol in info.symbols {
            let filters = try SymbolFilters(symbol)
            XCTAssertGreaterThan(filters.stepSize, 0)
            XCTAssertGreaterThan(filters.tickSize, 0)
            let mark = try XCTUnwrap(exchange.mark(symbol.symbol))
            XCTAssertNoThrow(try filters.marketQuantity(filters.minNotional * 2 / mark + filters.stepSize, price: mark, reduceOnly: false),
                             "\(symbol.symbol) can take a small order")
        }
    }
}
