import Exchange
import ExchangeSimulator
import Foundation
import Synchronization
import XCTest

/// The WebSocket client against the simulator's stream server: combined streams, connections
/// of at most N streams, SUBSCRIBE / UNSUBSCRIBE as the set changes, reconnect after a drop.
final class StreamSetTests: XCTestCase {
    private final class Received: Sendable {
        let events = Mutex<[StreamEvent]>([])
        let connects = Mutex<[Set<String>]>([])
        var klines: [KlineEvent] { events.withLock { $0.compactMap { if case .kline(let k) = $0 { k } else { nil } } } }
    }

    private var simulator: SimulatorServer!

    override func setUp() async throws {
        var config = SimulatorConfig(credentials: Credentials.generate())
        config.symbols = 10
        config.historyBars = 50
        config.barMs = 100
        simulator = try await SimulatorServer.start(config)
    }

    override func tearDown() async throws {
        await simulator.stop()
    }

    private func waitUntil(_ what: String, seconds: Double = 10, _ condition: () -> Bool) async throws {
        let deadline = ContinuousClock.now + .milliseconds(Int64(seconds * 1000))
        while ContinuousClock.now < deadline {
            if condition() { return }
            try await Task.sleep(for: .milliseconds(20))
        }
        XCTFail("not reached within \(seconds) s: \(what)")
        throw CancellationError()
    }

    func testStreamsSpreadOverConnectionsFollowChangesAndSurviveDrops() async throws {
        let received = Received()
        var options = StreamOptions()
        options.maxStreamsPerConnection = 3
        options.reconnectBaseDelayMs = 20
        let streams = StreamSet(baseURL: simulator.streamURL + "/market", options: options,
                                onEvent: { event in received.events.withLock { $0.append(event) } },
                                onConnect: { names in received.connects.withLock { $0.append(names) } })
        let symbols = Array(simulator.exchange.symbols.prefix(5))
        streams.update(Set(symbols.map { $0.lowercased() + "@kline_1m" }))
        try await waitUntil("two connections (3 + 2 streams)") { simulator.streamConnections == 2 && streams.openConnections == 2 }
        try await waitUntil("closed bars of every symbol") { Set(received.klines.map(\.symbol)) == Set(symbols) }
        XCTAssertTrue(received.klines.allSatisfy(\.bar.closed))

        // Unsubscribing stops a symbol's bars; subscribing a new one starts them.
        let dropped = symbols[0], added = simulator.exchange.symbols[7]
        streams.update(Set((symbols.dropFirst() + [added]).map { $0.lowercased() + "@kline_1m" }))
        try await waitUntil("bars of the added symbol") { received.klines.contains { $0.symbol == added } }
        try await Task.sleep(for: .milliseconds(300))
        let mark = received.events.withLock { $0.count }
        try await Task.sleep(for: .milliseconds(500))
        let after = received.events.withLock { Array($0.dropFirst(mark)) }
        XCTAssertFalse(after.contains { if case .kline(let k) = $0 { k.symbol == dropped } else { false } }, "unsubscribed")
        XCTAssertTrue(after.contains { if case .kline(let k) = $0 { k.symbol == added } else { false } }, "subscribed")

        // Dropped connections reconnect, and each reconnection is reported with its streams.
        let connectsBefore = received.connects.withLock { $0.count }
        XCTAssertEqual(simulator.dropStreamConnections(), 2)
        try await waitUntil("both reconnect") { received.connects.withLock { $0.count } >= connectsBefore + 2 }
        let resumed = received.events.withLock { $0.count }
        try await waitUntil("bars flow again") { received.events.withLock { $0.count } > resumed + 5 }
        await streams.stop()
        try await waitUntil("closed") { simulator.streamConnections == 0 }
    }

    func testMarkPricesForTheWholeMarketComeAsOneArray() async throws {
        let received = Received()
        let streams = StreamSet(baseURL: simulator.streamURL, onEvent: { event in received.events.withLock { $0.append(event) } })
        streams.update(["!markPrice@arr@1s"])
        try await waitUntil("a mark array", seconds: 5) {
            received.events.withLock { $0.contains { if case .markPrices(let marks) = $0 { marks.count == 10 } else { false } } }
        }
        await streams.stop()
    }
}
