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
                timers: [TimerSpec("poll", intervalMs: 5_000, singleton: true, intervalSecondsSetting: "interval_s")],
                config: [
                    ConfigKey("interval_s", .double, default: .double(5), range: 0.2...3600, help: "seconds between polls of positions and account"),
                    ConfigKey("tolerance", .double, default: .double(0), range: 0...1_000_000_000,
                              help: "largest |exchange − ledger| position difference that is not a divergence"),
                ]),
            make: { setup in
                PositionBrainPlugin(exchange: try exchanges.client(setup, plugin: name),
                                    tolerance: Decimal(try setup.settings.double("tolerance")))
            })
    }

    private let exchange: any FuturesExchange
    private let tolerance: Decimal
    /// Symbols whose last snapshot had a position: they get one more (flat) snapshot when it closes.
    private let snapshotted = LockedSet()

    init(exchange: any FuturesExchange, tolerance: Decimal) {
        self.exchange = exchange
        self.tolerance = tolerance
    }

    public func prepare() async throws {
        if try await exchange.isHedgeMode() {
            throw PluginError.permanent(
                "the account is in hedge mode (dualSidePosition=true); Quantum Trader trades one-way positions. "
                + "Switch with POST /fapi/v1/positionSide/dual dualSidePosition=false (Binance: Preferences → Position Mode → "
                + "One-way) while no position or order is open, then start the host again")
        }
    }

    public func handle(_ input: Input, context: HandlerContext) async throws {
        throw PluginError.contract("\(Self.name) has no inputs")
    }

    public func tick(_ timer: String, context: HandlerContext) async throws {
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
        let filled = try await TradePoll(exchange: exchange, context: context).run(symbols: polled, ledger: ledgerEntries)

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

final class LockedSet: Sendable {
    private let members = Mutex<Set<String>>([])
    func contains(_ member: String) -> Bool { members.withLock { $0.contains(member) } }
    func insert(_ member: String) { members.withLock { _ = $0.insert(member) } }
    func remove(_ member: String) { members.withLock { _ = $0.remove(member) } }
}
