import Bus
import Exchange
import ExchangeSimulator
import Foundation
import Messages
import NatsServerKit
import XCTest

/// `qt control` and `qt ledger` as an operator uses them, against nats-server and the simulator.
final class OperatorCommandTests: XCTestCase {
    var server: NatsServer!
    var simulator: SimulatorServer!
    let credentials = Credentials.generate()

    override func setUp() async throws {
        server = try NatsServer()
        var config = SimulatorConfig(credentials: credentials)
        config.symbols = 20
        simulator = try await SimulatorServer.start(config)
    }

    override func tearDown() async throws {
        await simulator?.stop()
        server?.stop()
        server = nil
    }

    func qt(_ arguments: String...) throws -> ChildProcess.Result {
        var environment = ProcessInfo.processInfo.environment
        environment["NATS_URL"] = server.url
        environment["QT_EXCHANGE_URL"] = simulator.baseURL
        environment[Credentials.defaultKeyVariable] = credentials.apiKey
        environment[Credentials.defaultSecretVariable] = credentials.revealSecret()
        return try ChildProcess.run(try qtBinary(), arguments, environment: environment)
    }

    func testControlSetsAndReportsTheTradingState() throws {
        XCTAssertEqual(try qt("streams", "provision").status, 0)
        let fresh = try qt("control", "status")
        XCTAssertEqual(fresh.status, 0, fresh.stderr)
        XCTAssertTrue(fresh.stdout.contains("trading_state: ACTIVE (never set)"), fresh.stdout)

        let halt = try qt("control", "halt", "--reason", "exchange incident", "--by", "alice")
        XCTAssertEqual(halt.status, 0, halt.stderr)
        let halted = try qt("control", "status")
        XCTAssertTrue(halted.stdout.contains("trading_state: HALTED"), halted.stdout)
        XCTAssertTrue(halted.stdout.contains("set by alice"), halted.stdout)
        XCTAssertTrue(halted.stdout.contains("reason: exchange incident"), halted.stdout)

        XCTAssertEqual(try qt("control", "reduce").status, 0)
        XCTAssertTrue(try qt("control", "status").stdout.contains("trading_state: REDUCING"))
        XCTAssertEqual(try qt("control", "resume").status, 0)
        XCTAssertTrue(try qt("control", "status").stdout.contains("trading_state: ACTIVE (revision"))
    }

    func testLedgerPrintsRevisionsAndAdoptTakesTheExchangePosition() async throws {
        XCTAssertEqual(try qt("streams", "provision").status, 0)
        let symbol = simulator.exchange.symbols[5]
        let client = BinanceFutures(config: ExchangeConfig(baseURL: simulator.baseURL), credentials: credentials)
        let filters = try await client.symbolFilters()
        let mark = try XCTUnwrap(simulator.exchange.mark(symbol))
        let quantity = try XCTUnwrap(filters[symbol]).marketQuantity(150 / mark, price: mark, reduceOnly: false)
        _ = try await client.newOrder(NewOrder(symbol: symbol, side: .sell, quantity: quantity, clientOrderId: "manual-1"))

        // The manual order left the exchange short and the ledger empty: `ledger check` says so and fails.
        let before = try qt("ledger", "check")
        XCTAssertEqual(before.status, 1, before.stdout + before.stderr)
        XCTAssertTrue(before.stdout.contains("\(symbol): ledger 0, exchange \(-quantity)"), before.stdout)

        let adopt = try qt("ledger", "adopt", symbol, "--by", "bob")
        XCTAssertEqual(adopt.status, 0, adopt.stderr)
        let after = try qt("ledger", "check")
        XCTAssertEqual(after.status, 0, after.stdout + after.stderr)
        XCTAssertTrue(after.stdout.contains("books: ledger = exchange for all 1 symbols (1 with a position), no claim pending"), after.stdout)
        let bus = try BusConnection(ConnectionOptions(servers: [server.url]))
        defer { bus.close() }
        let entry = try await bus.keyValue("qt_ledger").get(LedgerEntry.self, symbol)
        XCTAssertEqual(entry?.value.positionAmt, (-quantity).plainString)
        XCTAssertEqual(entry?.value.adoptedBy, "bob")
        XCTAssertGreaterThan(entry?.value.adoptedAtMs ?? 0, 0)
        XCTAssertEqual(entry?.revision, 1)

        var claimed = try XCTUnwrap(entry?.value)
        claimed.pendingClientOrderID = "qt-in-flight"
        try await bus.keyValue("qt_ledger").put(symbol, message: claimed)
        let refused = try qt("ledger", "adopt", symbol)
        XCTAssertNotEqual(refused.status, 0, "an order in flight: adopting waits")
        XCTAssertTrue(refused.stderr.contains("in flight"), refused.stderr)
        let pending = try qt("ledger", "check")
        XCTAssertEqual(pending.status, 1, "a claim in flight is not agreement")
        XCTAssertTrue(pending.stdout.contains("\(symbol): claim qt-in-flight still pending"), pending.stdout)

        let all = try qt("ledger")
        XCTAssertEqual(all.status, 0, all.stderr)
        let row = try XCTUnwrap(all.lines.first { $0.hasPrefix(symbol) }, all.stdout)
        XCTAssertEqual(row.split(separator: " ", omittingEmptySubsequences: true)[1], "2", "the revision column")
        let history = try qt("ledger", "show", symbol)
        XCTAssertEqual(history.lines.filter { $0.hasPrefix(symbol) }.count, 2, history.stdout)
        XCTAssertTrue(history.stdout.contains("bob"))
    }
}
