import Exchange
import XCTest

/// Every endpoint of the client against the simulator, over real HTTP.
final class ClientEndpointTests: SimulatorTestCase {
    func testMarketDataEndpoints() async throws {
        try await client.ping()
        let serverTime = try await client.serverTime()
        XCTAssertLessThan(abs(serverTime - Int64(Date().timeIntervalSince1970 * 1000)), 5_000, "time is wall time")

        let info = try await client.exchangeInfo()
        XCTAssertEqual(info.symbols.count, 5)
        XCTAssertTrue(info.symbols.allSatisfy { $0.contractType == "PERPETUAL" && $0.status == "TRADING" && $0.quoteAsset == "USDT" })
        let filters = try await client.symbolFilters()
        XCTAssertEqual(filters["BTCUSDT"]?.stepSize, Decimal(string: "0.001"))
        XCTAssertEqual(filters["BTCUSDT"]?.tickSize, Decimal(string: "0.1"))
        XCTAssertEqual(filters["SOLUSDT"]?.stepSize, 1)

        let klines = try await client.klines(symbol: "BTCUSDT", limit: 300)
        XCTAssertEqual(klines.count, 300)
        for (previous, next) in zip(klines, klines.dropFirst()) {
            XCTAssertEqual(next.openTime - previous.openTime, 60_000, "consecutive 1m bars")
        }
        XCTAssertTrue(klines.allSatisfy { $0.low <= $0.open && $0.low <= $0.close && $0.high >= $0.open && $0.high >= $0.close })
        XCTAssertTrue(klines.allSatisfy { $0.closeTime == $0.openTime + 59_999 })
        let fromStart = try await client.klines(symbol: "BTCUSDT", startTime: klines[10].openTime, limit: 5)
        XCTAssertEqual(fromStart.map(\.openTime), klines[10..<15].map(\.openTime))

        let ticker = try await client.ticker24h(symbol: "ETHUSDT")
        XCTAssertGreaterThan(ticker.quoteVolume, 0)
        XCTAssertGreaterThanOrEqual(ticker.highPrice, ticker.lowPrice)
        let tickers = try await client.tickers24h()
        XCTAssertEqual(tickers.count, 5)
        XCTAssertGreaterThan(tickers[0].quoteVolume, tickers[4].quoteVolume, "volumes are ranked like the real market's")

        let premium = try await client.premiumIndex(symbol: "BTCUSDT")
        XCTAssertGreaterThan(premium.markPrice, 0)
        XCTAssertTrue(filters["BTCUSDT"]!.isOnTick(premium.markPrice))
        let premiums = try await client.premiumIndexes()
        XCTAssertEqual(premiums.count, 5)
        XCTAssertGreaterThan(client.usedWeight, 0, "X-MBX-USED-WEIGHT-1M is tracked")
    }

    func testMarketTimesAreSimulatedAndRunFasterThanTheWallClock() async throws {
        let first = try await client.premiumIndex(symbol: "BTCUSDT").time
        try await Task.sleep(nanoseconds: 600_000_000)
        let second = try await client.premiumIndex(symbol: "BTCUSDT").time
        // 250 ms of wall time per simulated minute: 0.6 s is more than two simulated minutes.
        XCTAssertGreaterThan(second - first, 120_000)
    }

    func testUnknownSymbolIsTypedError() async throws {
        let error = await exchangeError { try await self.client.klines(symbol: "NOPEUSDT") }
        XCTAssertEqual(error?.binanceCode, .badSymbol)
    }

    func testAccountEndpointsAndAnOrderLifecycle() async throws {
        let hedge = try await client.isHedgeMode()
        XCTAssertFalse(hedge)
        let leverage = try await client.setLeverage(symbol: "ETHUSDT", leverage: 5)
        XCTAssertEqual(leverage.leverage, 5)

        let quantity = try await quantity("ETHUSDT", notional: 200)
        let opened = try await client.newOrder(NewOrder(symbol: "ETHUSDT", side: .buy, quantity: quantity, clientOrderId: "qt-open-1"))
        XCTAssertEqual(opened.status, .filled)
        XCTAssertEqual(opened.executedQty, quantity)
        XCTAssertEqual(opened.clientOrderId, "qt-open-1")

        let queried = try await client.queryOrder(symbol: "ETHUSDT", clientOrderId: "qt-open-1")
        XCTAssertEqual(queried.orderId, opened.orderId)
        let positions = try await client.positionRisk(symbol: "ETHUSDT")
        XCTAssertEqual(positions.first?.positionAmt, quantity)
        XCTAssertEqual(positions.first?.entryPrice, opened.avgPrice)
        XCTAssertEqual(positions.first?.leverage, 5)

        let account = try await client.account()
        XCTAssertEqual(account.positions.first { $0.symbol == "ETHUSDT" }?.positionAmt, quantity)
        XCTAssertGreaterThan(account.totalInitialMargin, 0)
        XCTAssertLessThan(account.totalWalletBalance, 10_000, "the taker fee was paid")
        let balances = try await client.balance()
        XCTAssertEqual(balances.first?.asset, "USDT")
        XCTAssertEqual(balances.first?.balance, account.totalWalletBalance)

        let closed = try await client.newOrder(NewOrder(symbol: "ETHUSDT", side: .sell, quantity: quantity, reduceOnly: true,
                                                        clientOrderId: "qt-close-1"))
        XCTAssertEqual(closed.status, .filled)
        let flat = try await client.positionRisk(symbol: "ETHUSDT")
        XCTAssertEqual(flat.first?.positionAmt, 0)

        let trades = try await client.userTrades(symbol: "ETHUSDT")
        XCTAssertEqual(trades.map(\.orderId), [opened.orderId, closed.orderId])
        XCTAssertEqual(trades[1].realizedPnl, (trades[1].price - trades[0].price) * quantity)
        let later = try await client.userTrades(symbol: "ETHUSDT", fromId: trades[1].id)
        XCTAssertEqual(later.map(\.id), [trades[1].id])
        let open = try await client.openOrders()
        XCTAssertTrue(open.isEmpty, "MARKET orders never rest")

        let cancel = await exchangeError { try await self.client.cancelOrder(symbol: "ETHUSDT", clientOrderId: "qt-close-1") }
        XCTAssertEqual(cancel?.binanceCode, .cancelRejected)
        let missing = await exchangeError { try await self.client.queryOrder(symbol: "ETHUSDT", clientOrderId: "qt-never-sent") }
        XCTAssertEqual(missing?.binanceCode, .noSuchOrder)
    }

    func testHedgeModeCanBeReadAfterItIsSet() async throws {
        try await client.setHedgeMode(true)
        let hedge = try await client.isHedgeMode()
        XCTAssertTrue(hedge)
        let again = await exchangeError { try await self.client.setHedgeMode(true) }
        XCTAssertEqual(again?.binanceCode, .noNeedToChangePositionSide)
    }

    func testMinimumNotionalAppliesToEntriesNotToReduceOnlyOrders() async throws {
        let filters = try await client.symbolFilters()["ETHUSDT"]!
        let tooSmall = await exchangeError {
            try await self.client.newOrder(NewOrder(symbol: "ETHUSDT", side: .buy, quantity: filters.minQty, clientOrderId: "qt-small"))
        }
        XCTAssertEqual(tooSmall?.binanceCode, .minimumNotional)

        let quantity = try await quantity("ETHUSDT", notional: 100)
        _ = try await client.newOrder(NewOrder(symbol: "ETHUSDT", side: .buy, quantity: quantity, clientOrderId: "qt-entry"))
        let dust = try await client.newOrder(NewOrder(symbol: "ETHUSDT", side: .sell, quantity: filters.minQty, reduceOnly: true,
                                                      clientOrderId: "qt-dust-exit"))
        XCTAssertEqual(dust.status, .filled, "reduce-only is exempt from MIN_NOTIONAL, as on Binance")
        let wrongWay = await exchangeError {
            try await self.client.newOrder(NewOrder(symbol: "ETHUSDT", side: .buy, quantity: filters.minQty, reduceOnly: true,
                                                    clientOrderId: "qt-wrong-way"))
        }
        XCTAssertEqual(wrongWay?.binanceCode, .reduceOnlyRejected)
        let offStep = await exchangeError {
            try await self.client.newOrder(NewOrder(symbol: "ETHUSDT", side: .buy, quantity: quantity + Decimal(string: "0.0001")!,
                                                    clientOrderId: "qt-off-step"))
        }
        XCTAssertEqual(offStep?.binanceCode, .badPrecision)
    }

    func testClientOrderIDsAreCheckedBeforeSending() async throws {
        let error = await exchangeError {
            try await self.client.newOrder(NewOrder(symbol: "ETHUSDT", side: .buy, quantity: 1, clientOrderId: String(repeating: "a", count: 37)))
        }
        guard case .invalidRequest? = error else { return XCTFail("\(String(describing: error))") }
        XCTAssertEqual(exchange.acceptedOrders, 0)
    }
}
