import Exchange
import Foundation
import Synchronization
import Host
import Identity
import Messages

/// Every `interval_s` (wall clock, singleton): reads positions and the account from the
/// exchange, writes `qt_snapshot` (`<SYM>` and `_account`), and compares each position with the
/// ledger. A divergence puts the symbol on reconcile hold (`qt_state/position-brain.reconcile`:
/// entries blocked, exits allowed) and raises an `Alert`; the hold lifts when they agree again
/// or an operator adopts the position. It never edits the ledger: trades the executor did not
/// place go out as fills (`TradePoll`). A symbol whose ledger entry
/// has an order in flight (a claim) is not compared: the two legitimately differ for a moment.
///
/// With the node config's `exchange.user_stream_url`, fills come from the user data stream as they
/// happen (`stream` timer): `ORDER_TRADE_UPDATE` trades the executor did not place become fills at
/// once (a triggered stop reaches the ledger within a drain, not a poll), `ACCOUNT_UPDATE` updates
/// the position snapshots, `ALGO_UPDATE` tells which order a stop became. The REST trade poll
/// (`TradePoll`) then runs as the reconciliation: every `reconcile_interval_s`, and at once after
/// a reconnect or a new listenKey, finding whatever the stream missed, with the same fill ids.
public final class PositionBrainPlugin: Plugin {
    public static let name = "position-brain"
    public static let holdState = "reconcile"

    public static func registration(exchanges: ExchangeClients) -> PluginRegistration {
        PluginRegistration(
            manifest: PluginManifest(
                name: name, version: "1.0.0",
                outputs: [OutputSpec("alerts", subject: "qt.alert.*", type: Alert.self),
                          OutputSpec("fills", subject: "qt.exec.fill.*", type: Fill.self)],
                kvReads: ["qt_ledger", "qt_snapshot", "qt_orders"],
                kvWrites: ["qt_snapshot", "qt_state"],
                timers: [TimerSpec("poll", intervalMs: 5_000, singleton: true, intervalSecondsSetting: "interval_s"),
                         TimerSpec("stream", intervalMs: 100, singleton: true, intervalSecondsSetting: "stream_interval_s")],
                config: [
                    ConfigKey("interval_s", .double, default: .double(5), range: 0.2...3600, help: "seconds between polls of positions and account"),
                    ConfigKey("stream_interval_s", .double, default: .double(0.1), range: 0.02...60,
                              help: "streaming: how often user data events are turned into fills and snapshots"),
                    ConfigKey("reconcile_interval_s", .double, default: .double(180), range: 1...86_400,
                              help: "streaming: seconds between REST reconciliations of trades (also after every reconnect)"),
                    ConfigKey("tolerance", .double, default: .double(0), range: 0...1_000_000_000,
                              help: "largest |exchange − ledger| position difference that is not a divergence"),
                ]),
            make: { setup in
                let exchange = try exchanges.client(setup, plugin: name)
                return PositionBrainPlugin(exchange: exchange, tolerance: Decimal(try setup.settings.double("tolerance")),
                                           userStream: setup.exchange?.userStreamURL.map { UserDataStream(exchange: exchange, baseURL: $0) },
                                           reconcileInterval: .milliseconds(Int64(try setup.settings.double("reconcile_interval_s") * 1000)))
            })
    }

    private let exchange: any FuturesExchange
    private let tolerance: Decimal
    /// Symbols whose last snapshot had a position: they get one more (flat) snapshot when it closes.
    private let snapshotted = LockedSet()
    private let userStream: UserDataStream?
    private let reconcileInterval: Duration
    private let reconciliation = ReconcileSchedule()
    private let stopOrders = StopOrderMap()
    /// Symbols the stream published a fill for since the last poll: not compared until the next.
    private let streamFilled = LockedSet()

    init(exchange: any FuturesExchange, tolerance: Decimal, userStream: UserDataStream? = nil, reconcileInterval: Duration = .seconds(180)) {
        self.exchange = exchange
        self.tolerance = tolerance
        self.userStream = userStream
        self.reconcileInterval = reconcileInterval
    }

    public func prepare() async throws {
        if try await exchange.isHedgeMode() {
            throw PluginError.permanent(
                "the account is in hedge mode (dualSidePosition=true); Quantum Trader trades one-way positions. "
                + "Switch with POST /fapi/v1/positionSide/dual dualSidePosition=false (Binance: Preferences → Position Mode → "
                + "One-way) while no position or order is open, then start the host again")
        }
    }

    public func stop() async { await userStream?.close() }

    public func handle(_ input: Input, context: HandlerContext) async throws {
        throw PluginError.contract("\(Self.name) has no inputs")
    }

    public func tick(_ timer: String, context: HandlerContext) async throws {
        defer { context.recordWeight(of: exchange) }
        switch timer {
        case "stream": if let userStream { try await drain(userStream, context: context) }
        default: try await poll(context)
        }
    }

    private func poll(_ context: HandlerContext) async throws {
        async let positionsRead = exchange.positionRisk()
        async let accountRead = exchange.account()
        let (positions, account) = try await (positionsRead, accountRead)
        let nowMs = context.eventTimeMs
        let snapshots = try await context.kv("qt_snapshot")

        var exchangeAmounts: [String: Decimal] = [:]
        for position in positions where position.positionAmt != 0 || snapshotted.contains(position.symbol) {
            exchangeAmounts[position.symbol] = position.positionAmt
            try await snapshots.put(position.symbol, Self.snapshot(position, asOfMs: nowMs))
            if position.positionAmt != 0 { snapshotted.insert(position.symbol) } else { snapshotted.remove(position.symbol) }
        }
        try await snapshots.put("_account", Self.snapshot(account, asOfMs: nowMs))
        Self.recordAccount(account, openPositions: exchangeAmounts.values.filter { $0 != 0 }.count, context: context)

        let ledger = try await context.kv("qt_ledger")
        var ledgerEntries: [String: LedgerPosition] = [:]
        var unreadable: Set<String> = []
        for key in try await ledger.keys() {
            // An entry that cannot be read is held (the sentinel alerts); it is neither polled nor
            // compared, and it stops no other symbol.
            do {
                if let found = try await ledger.get(LedgerEntry.self, key) {
                    ledgerEntries[key] = try LedgerPosition(symbol: key, entry: found.value, revision: found.revision)
                }
            } catch is UnreadableValue {
                unreadable.insert(key)  // the sentinel alerts, once; a log line per poll would drown the rest
            }
        }
        let polled = Set(ledgerEntries.filter { $0.value.isOpen }.keys).union(exchangeAmounts.keys).subtracting(unreadable)
        // Streaming, the trade poll is the reconciliation: on its schedule, or at once when asked.
        var filled: Set<String> = []
        if userStream == nil || reconciliation.isDue(every: reconcileInterval) {
            filled = try await TradePoll(exchange: exchange, context: context).run(symbols: polled, ledger: ledgerEntries)
            reconciliation.done()
        }
        filled.formUnion(streamFilled.drain())

        let stored = try await context.loadState(Self.holdState)
        var held = Set(stored?.state.symbols ?? [])
        let before = held
        let compared = Set(ledgerEntries.filter { $0.value.isOpen }.keys).union(exchangeAmounts.filter { $0.value != 0 }.keys)
            .subtracting(unreadable)
        for symbol in compared.sorted() {
            let ledgerEntry = ledgerEntries[symbol]
            if let ledgerEntry, !ledgerEntry.entry.pendingClientOrderID.isEmpty { continue }
            // A fill just published reaches the ledger through the executor: compare next poll.
            if filled.contains(symbol) { continue }
            let ledgerAmount = ledgerEntry?.amount ?? 0
            let exchangeAmount = exchangeAmounts[symbol] ?? 0
            let difference = abs(exchangeAmount - ledgerAmount)
            if difference > tolerance {
                guard held.insert(symbol).inserted else { continue }
                var alert = Alert()
                alert.kind = .reconcile
                alert.severity = .critical
                alert.plugin = Self.name
                alert.symbol = symbol
                alert.message = "\(symbol): exchange position \(exchangeAmount.plainString), ledger \(ledgerAmount.plainString); "
                    + "entries on hold until they agree or `qt ledger adopt \(symbol)`"
                alert.details = ["exchange": exchangeAmount.plainString, "ledger": ledgerAmount.plainString]
                alert.meta.eventTimeMs = nowMs
                let id = ContentID.content(plugin: Self.name, kind: "reconcile", symbol: symbol, eventTimeMs: nowMs, revision: 0)
                try context.emit("alerts", alert, subject: Subjects.alert(.reconcile), id: id)
            } else {
                held.remove(symbol)
            }
        }
        // Symbols neither side holds any more agree by definition.
        held.formIntersection(compared)
        if held != before {
            var state = PluginState()
            state.symbols = held.sorted()
            _ = try await context.saveState(Self.holdState, state, expectedRevision: stored?.revision ?? 0)
        }
    }

    /// Turns what the user data stream delivered into fills and snapshots.
    private func drain(_ stream: UserDataStream, context: HandlerContext) async throws {
        try await stream.maintain()
        let received = stream.take()
        if received.reconcile { reconciliation.request() }
        for algo in received.algos where !algo.actualOrderId.isEmpty { stopOrders.record(algo) }
        if !received.trades.isEmpty {
            let orders = try await context.kv("qt_orders")
            let ledger = try await context.kv("qt_ledger")
            for order in received.trades {
                guard let trade = order.trade else { continue }
                // The executor's own orders reach the ledger through the executor.
                if let record = try await orders.get(OrderRecord.self, order.clientOrderId)?.value,
                   record.exchangeOrderID == 0 || record.exchangeOrderID == trade.orderId { continue }
                var origin = FillOrigin.external, clientOrderID = ""
                if order.isLiquidation {
                    origin = .liquidation
                } else if let stopID = try? await ledger.get(LedgerEntry.self, trade.symbol)?.value.stopAlgoID, !stopID.isEmpty,
                          stopID == order.clientOrderId || stopOrders.clientAlgoID(ofOrder: trade.orderId) == stopID {
                    origin = .stop
                    clientOrderID = stopID
                }
                try TradePoll.emit(trade, origin: origin, clientOrderID: clientOrderID, context: context)
                streamFilled.insert(trade.symbol)
            }
            try await context.publishNow()
        }
        if !received.accounts.isEmpty { try await writeSnapshots(received.accounts, context: context) }
    }

    /// Position snapshots from `ACCOUNT_UPDATE` (amount, entry, unrealized PnL; the mark implied by
    /// them); leverage and liquidation price stay as the last poll read them.
    private func writeSnapshots(_ updates: [AccountUpdate], context: HandlerContext) async throws {
        var latest: [String: (AccountUpdate.Position, Int64)] = [:]
        for update in updates { for position in update.change.positions { latest[position.symbol] = (position, update.eventTime) } }
        let snapshots = try await context.kv("qt_snapshot")
        for (symbol, (position, eventTime)) in latest {
            var snapshot = (try? await snapshots.get(PositionSnapshot.self, symbol)?.value) ?? PositionSnapshot()
            guard eventTime >= snapshot.asOfMs else { continue }
            snapshot.symbol = symbol
            snapshot.positionAmt = position.positionAmount.plainString
            snapshot.entryPrice = position.entryPrice.plainString
            snapshot.unrealizedPnl = position.unrealizedProfit.plainString
            if position.positionAmount != 0 {
                let mark = position.entryPrice + position.unrealizedProfit / position.positionAmount
                snapshot.markPrice = mark.plainString
                snapshot.notional = (position.positionAmount * mark).plainString
                snapshotted.insert(symbol)
            } else {
                snapshot.notional = "0"
                snapshotted.remove(symbol)
            }
            snapshot.asOfMs = eventTime
            snapshot.meta.eventTimeMs = eventTime
            try await snapshots.put(symbol, snapshot)
        }
    }

    static func snapshot(_ position: PositionRisk, asOfMs: Int64) -> PositionSnapshot {
        var snapshot = PositionSnapshot()
        snapshot.symbol = position.symbol
        snapshot.positionAmt = position.positionAmt.plainString
        snapshot.entryPrice = position.entryPrice.plainString
        snapshot.markPrice = position.markPrice.plainString
        snapshot.unrealizedPnl = position.unRealizedProfit.plainString
        snapshot.leverage = Int32(truncating: NSDecimalNumber(decimal: position.leverage))
        snapshot.liquidationPrice = position.liquidationPrice.plainString
        snapshot.notional = position.notional.plainString
        snapshot.asOfMs = asOfMs
        snapshot.meta.eventTimeMs = asOfMs
        return snapshot
    }

    /// The account as the exchange reported it, for the PnL panels of deploy/grafana.
    static func recordAccount(_ account: AccountInfo, openPositions: Int, context: HandlerContext) {
        context.record(account.totalMarginBalance.doubleValue, as: "account_equity_usdt")
        context.record(account.totalWalletBalance.doubleValue, as: "account_wallet_balance_usdt")
        context.record(account.totalUnrealizedProfit.doubleValue, as: "account_unrealized_pnl_usdt")
        context.record(account.marginRatio.doubleValue, as: "account_margin_ratio")
        context.record(Double(openPositions), as: "open_positions")
    }

    static func snapshot(_ account: AccountInfo, asOfMs: Int64) -> AccountSnapshot {
        var snapshot = AccountSnapshot()
        snapshot.totalWalletBalance = account.totalWalletBalance.plainString
        snapshot.totalMarginBalance = account.totalMarginBalance.plainString
        snapshot.totalMaintMargin = account.totalMaintMargin.plainString
        snapshot.totalUnrealizedPnl = account.totalUnrealizedProfit.plainString
        snapshot.availableBalance = account.availableBalance.plainString
        snapshot.marginRatio = account.marginRatio.doubleValue
        snapshot.dualSidePosition = false
        snapshot.asOfMs = asOfMs
        snapshot.meta.eventTimeMs = asOfMs
        return snapshot
    }
}

/// When the trade reconciliation last ran, and whether a reconnect asked for one now.
final class ReconcileSchedule: Sendable {
    private let state = Mutex<(last: ContinuousClock.Instant?, requested: Bool)>((nil, true))

    func isDue(every interval: Duration) -> Bool {
        state.withLock { $0.requested || $0.last.map { ContinuousClock.now - $0 >= interval } ?? true }
    }

    func request() { state.withLock { $0.requested = true } }
    func done() { state.withLock { $0 = (.now, false) } }
}

/// Which MARKET order each triggered conditional order became (`ALGO_UPDATE`'s `ai`), so a
/// stream trade can be told to be a protective stop's; the newest 10,000 are kept.
final class StopOrderMap: Sendable {
    private let orders = Mutex<[Int64: String]>([:])

    func record(_ algo: AlgoUpdate.Order) {
        guard let orderID = Int64(algo.actualOrderId) else { return }
        orders.withLock { orders in
            if orders.count >= 10_000 { orders.removeAll() }
            orders[orderID] = algo.clientAlgoId
        }
    }

    func clientAlgoID(ofOrder orderID: Int64) -> String? { orders.withLock { $0[orderID] } }
}

final class LockedSet: Sendable {
    private let members = Mutex<Set<String>>([])
    func contains(_ member: String) -> Bool { members.withLock { $0.contains(member) } }
    func insert(_ member: String) { members.withLock { _ = $0.insert(member) } }
    func remove(_ member: String) { members.withLock { _ = $0.remove(member) } }
    func drain() -> Set<String> { members.withLock { members in defer { members.removeAll() }; return members } }
}
