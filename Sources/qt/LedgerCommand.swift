import ArgumentParser
import Bus
import Exchange
import Foundation
import Messages

/// `qt ledger [SYM]` and `qt ledger adopt SYM`: the source of truth for positions, read by an
/// operator; adopting is the one ledger write outside the executor.
struct LedgerCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "ledger",
        abstract: "Print the ledger with revisions (one symbol: its history), compare it with the exchange, or adopt an exchange position.",
        subcommands: [Show.self, Check.self, Adopt.self], defaultSubcommand: Show.self)

    struct Show: AsyncParsableCommand {
        static let configuration = CommandConfiguration(commandName: "show", abstract: "Print every entry, or one symbol's history.")
        @OptionGroup var connection: ConnectionArguments
        @Argument(help: "A symbol: print the revisions the bucket keeps for it.") var symbol: String?

        func run() async throws {
            try await reportingErrors {
                let bus = try connection.connect()
                defer { bus.close() }
                let ledger = try await bus.keyValue("qt_ledger")
                printLine(pad(LedgerCommand.header))
                if let symbol {
                    let history = try await ledger.history(symbol)
                    guard !history.isEmpty else { throw BusError.notFound("ledger entry \(symbol)") }
                    for entry in history {
                        guard let value = try entry.decoded(as: LedgerEntry.self) else {
                            printLine(pad([symbol, String(entry.revision), "(\(entry.operation.rawValue))"]))
                            continue
                        }
                        printLine(pad(LedgerCommand.row(value, symbol: symbol, revision: entry.revision)))
                    }
                    return
                }
                for key in try await ledger.keys().sorted() {
                    guard let (value, revision) = try await ledger.get(LedgerEntry.self, key) else { continue }
                    printLine(pad(LedgerCommand.row(value, symbol: key, revision: revision)))
                }
            }
        }
    }

    struct Check: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Compare every symbol's ledger position with the exchange's; exit 1 when they differ or a claim is pending.")
        @OptionGroup var connection: ConnectionArguments
        @Option(name: .customLong("exchange-url"), help: "Exchange base URL (default: $QT_EXCHANGE_URL, then the local simulator).")
        var exchangeURL: String?
        @Option(help: "Seconds to keep comparing while orders in flight settle (0: once).") var settle = 0.0

        func run() async throws {
            try await reportingErrors {
                let url = exchangeURL ?? ProcessInfo.processInfo.environment["QT_EXCHANGE_URL"] ?? "http://127.0.0.1:8081"
                let exchange = BinanceFutures(config: ExchangeConfig(baseURL: url), credentials: try Credentials.fromEnvironment())
                let bus = try connection.connect()
                defer { bus.close() }
                let deadline = Date().addingTimeInterval(settle)
                var check: LedgerCheck
                repeat {
                    let positions = try await exchange.positionRisk()
                    check = try await LedgerCheck.compare(bus, exchange: Dictionary(positions.map { ($0.symbol, $0.positionAmt) }, uniquingKeysWith: +))
                    if check.agrees || Date() >= deadline { break }
                    try await Task.sleep(nanoseconds: 1_000_000_000)
                } while true
                printLine(check.summary)
                if !check.agrees { throw ExitCode.failure }
            }
        }
    }

    struct Adopt: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Take the exchange's position of SYM into the ledger (after a reconcile alert), recording who and when.")
        @OptionGroup var connection: ConnectionArguments
        @Argument(help: "The symbol, e.g. BTCUSDT.") var symbol: String
        @Option(name: .customLong("exchange-url"), help: "Exchange base URL (default: $QT_EXCHANGE_URL, then the local simulator).")
        var exchangeURL: String?
        @Option(help: "Who (default: $USER).") var by: String?

        func run() async throws {
            try await reportingErrors {
                let environment = ProcessInfo.processInfo.environment
                let url = exchangeURL ?? environment["QT_EXCHANGE_URL"] ?? "http://127.0.0.1:8081"
                let exchange = BinanceFutures(config: ExchangeConfig(baseURL: url), credentials: try Credentials.fromEnvironment())
                guard let position = try await exchange.positionRisk(symbol: symbol).first(where: { $0.symbol == symbol }) else {
                    throw ValidationError("the exchange at \(url) reports no \(symbol) position")
                }
                let bus = try connection.connect()
                defer { bus.close() }
                let ledger = try await bus.keyValue("qt_ledger")
                let current = try await ledger.get(LedgerEntry.self, symbol)
                if let claim = current?.value.pendingClientOrderID, !claim.isEmpty {
                    throw ValidationError("\(symbol) has an order in flight (\(claim)); adopt once the executor has settled it")
                }
                let nowMs = Int64(Date().timeIntervalSince1970 * 1000)
                var entry = current?.value ?? LedgerEntry()
                entry.symbol = symbol
                entry.positionAmt = position.positionAmt.plainString
                entry.entryPrice = position.positionAmt == 0 ? "" : position.entryPrice.plainString
                if entry.openedAtMs == 0 { entry.openedAtMs = nowMs }
                if position.positionAmt == 0 {
                    entry.openedAtMs = 0
                    entry.stopPrice = ""
                    entry.stopAlgoID = ""
                    entry.tranchesTaken = 0
                }
                entry.adoptedBy = by ?? environment["USER"] ?? "operator"
                entry.adoptedAtMs = nowMs
                entry.meta.eventTimeMs = nowMs
                // Compare-and-set: a fill the executor applies meanwhile wins, and adopting is tried again.
                let revision = if let current {
                    try await ledger.update(symbol, message: entry, expectedRevision: current.revision)
                } else {
                    try await ledger.create(symbol, message: entry)
                }
                printLine("adopted \(symbol): position \(entry.positionAmt) at \(entry.entryPrice.isEmpty ? "-" : entry.entryPrice) "
                          + "(revision \(revision), by \(entry.adoptedBy))")
            }
        }
    }

    static let header = ["SYMBOL", "REV", "AMOUNT", "ENTRY", "REALIZED", "STOP", "TRANCHES", "CLAIM", "LAST PLAN", "ADOPTED BY"]

    static func row(_ entry: LedgerEntry, symbol: String, revision: UInt64) -> [String] {
        func orDash(_ text: String) -> String { text.isEmpty ? "-" : text }
        return [symbol, String(revision), orDash(entry.positionAmt), orDash(entry.entryPrice), orDash(entry.realizedPnl),
                orDash(entry.stopPrice), String(entry.tranchesTaken), orDash(entry.pendingClientOrderID), orDash(entry.lastPlanID),
                orDash(entry.adoptedBy)]
    }
}
