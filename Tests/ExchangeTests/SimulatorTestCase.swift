import Exchange
import ExchangeSimulator
import Foundation
import XCTest

/// Starts a simulator on a free loopback port and a real client pointed at it.
class SimulatorTestCase: XCTestCase {
    var server: SimulatorServer!
    var client: BinanceFutures!
    var credentials = Credentials.generate()

    var exchange: SimExchange { server.exchange }

    /// Override to change the simulator before it starts.
    func configure(_ config: inout SimulatorConfig) {}

    override func setUp() async throws {
        var config = SimulatorConfig(credentials: credentials)
        config.symbols = 5
        config.historyBars = 400
        configure(&config)
        server = try await SimulatorServer.start(config)
        client = makeClient()
    }

    override func tearDown() async throws {
        client = nil
        await server?.stop()
    }

    func makeClient(credentials: Credentials? = nil, configure: (inout ExchangeConfig) -> Void = { _ in }) -> BinanceFutures {
        var config = ExchangeConfig(baseURL: server.baseURL)
        config.timeoutMs = 3_000
        config.retryBaseDelayMs = 20
        configure(&config)
        return BinanceFutures(config: config, credentials: credentials ?? self.credentials)
    }

    /// Runs `body` and returns the `ExchangeError` it throws (failing if it does not throw one).
    func exchangeError<T>(_ body: () async throws -> T, file: StaticString = #filePath, line: UInt = #line) async -> ExchangeError? {
        do {
            _ = try await body()
            XCTFail("expected an ExchangeError", file: file, line: line)
        } catch let error as ExchangeError {
            return error
        } catch {
            XCTFail("expected an ExchangeError, got \(error)", file: file, line: line)
        }
        return nil
    }

    /// A quantity worth about `notional` USDT at the current mark, on the symbol's step.
    func quantity(_ symbol: String, notional: Decimal) async throws -> Decimal {
        let filters = try await client.symbolFilters()[symbol]!
        let mark = try await client.premiumIndex(symbol: symbol).markPrice
        return max(filters.minQty, filters.roundQuantityDown(notional / mark))
    }
}
