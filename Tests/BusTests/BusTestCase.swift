import Bus
import Messages
import NatsServerKit
import XCTest

/// Starts a real nats-server per test and a provisioned connection to it; stops both after.
class BusTestCase: XCTestCase {
    var server: NatsServer!
    var bus: BusConnection!

    override func setUp() async throws {
        server = try NatsServer()
        bus = try BusConnection(options(for: server))
        _ = try await bus.provision()
    }

    override func tearDown() async throws {
        bus?.close()
        server?.stop()
        // XCTest keeps every test case object to the end of the run: released here, the server's
        // temporary store is removed now rather than never.
        server = nil
        bus = nil
        server = nil
    }

    func options(for server: NatsServer) -> ConnectionOptions {
        var options = ConnectionOptions(servers: [server.url], name: "bus-tests")
        options.reconnectWaitMs = 100
        options.reconnectJitterMs = 50
        return options
    }

    func kline(_ symbol: String, close: String, at minute: Int64) -> Kline {
        var bar = Kline()
        bar.symbol = symbol
        bar.openTimeMs = minute * 60_000
        bar.closeTimeMs = minute * 60_000 + 59_999
        bar.open = close
        bar.high = close
        bar.low = close
        bar.close = close
        bar.volume = "1.5"
        bar.meta.eventTimeMs = bar.closeTimeMs
        return bar
    }

    func outgoing(_ bar: Kline, id: String) throws -> OutgoingMessage {
        try OutgoingMessage(bar, subject: Subjects.kline(bar.symbol), id: id, producer: "test@bus-tests")
    }

    /// Collects up to `count` deliveries, failing after `seconds`.
    func take<M: BusMessage>(_ count: Int, from consumer: Consumer<M>, seconds: Double = 10,
                             ack: Bool = true) async throws -> [Delivery<M>] {
        let deadline = Date().addingTimeInterval(seconds)
        var result: [Delivery<M>] = []
        var iterator = consumer.makeAsyncIterator()
        while result.count < count, Date() < deadline {
            guard let delivery = try await iterator.next() else { break }
            if ack { try delivery.ack() }
            result.append(delivery)
        }
        return result
    }
}
