import Exchange
import Foundation
import Synchronization

/// The account's user data stream (DESIGN.md §8): a listenKey (`POST /fapi/v1/listenKey`, kept
/// alive every 30 minutes, replaced when Binance says it expired), one connection carrying it, and
/// the events received since the last drain. Every (re)connection and every new key asks for a
/// REST reconciliation, because events sent while nothing listened are gone.
final class UserDataStream: Sendable {
    static let keepAliveInterval: Duration = .seconds(30 * 60)

    /// What arrived since the last `take()`.
    struct Received: Sendable {
        var trades: [OrderTradeUpdate.Order] = []
        var accounts: [AccountUpdate] = []
        var algos: [AlgoUpdate.Order] = []
        /// A reconnect, a new listenKey or an undecodable event: reconcile over REST.
        var reconcile = false
    }

    private struct KeyState {
        var key: String?
        var keptAliveAt: ContinuousClock.Instant = .now
        var expired = false
    }

    private final class Inbox: Sendable {
        let received = Mutex(Received())
        let key = Mutex(KeyState())

        func receive(_ event: StreamEvent) {
            switch event {
            case .orderTradeUpdate(let update): received.withLock { $0.trades.append(update.order) }
            case .accountUpdate(let update): received.withLock { $0.accounts.append(update) }
            case .algoUpdate(let update): received.withLock { $0.algos.append(update.order) }
            case .listenKeyExpired(let expired):
                key.withLock { if $0.key == expired.listenKey { $0.expired = true } }
                received.withLock { $0.reconcile = true }
            case .unread, .reply, .kline, .markPrices: return
            }
        }
    }

    private let exchange: any FuturesExchange
    private let inbox = Inbox()
    private let lease: StreamLease

    init(exchange: any FuturesExchange, baseURL: String) {
        self.exchange = exchange
        let inbox = inbox
        lease = StreamLease {
            StreamSet(baseURL: baseURL, onEvent: { inbox.receive($0) },
                      onConnect: { _ in inbox.received.withLock { $0.reconcile = true } },
                      onUndecodable: { _, _ in inbox.received.withLock { $0.reconcile = true } })
        }
    }

    /// Keeps the key and the connection alive (called by the singleton timer that drains it).
    func maintain() async throws {
        let (key, expired, keepAliveDue) = inbox.key.withLock { state in
            (state.key, state.expired, ContinuousClock.now - state.keptAliveAt >= Self.keepAliveInterval)
        }
        if key == nil || expired {
            let fresh = try await exchange.newListenKey()
            inbox.key.withLock { $0 = KeyState(key: fresh) }
            inbox.received.withLock { $0.reconcile = true }
            lease.touch(wanted: [fresh])
            return
        }
        if keepAliveDue {
            do {
                try await exchange.keepAliveListenKey()
                inbox.key.withLock { $0.keptAliveAt = .now }
            } catch ExchangeError.api(let error) where error.known == .listenKeyDoesNotExist {
                inbox.key.withLock { $0.expired = true }
                return try await maintain()
            }
        }
        lease.touch(wanted: key.map { [$0] } ?? [])
    }

    var listenKey: String? { inbox.key.withLock { $0.key } }

    /// Closes the connection but keeps the listenKey: Binance gives one key per account, and the
    /// host that takes the timer over gets the same one (a DELETE would end its stream too).
    func close() async { await lease.close() }

    func take() -> Received {
        inbox.received.withLock { received in
            defer { received = Received() }
            return received
        }
    }
}
