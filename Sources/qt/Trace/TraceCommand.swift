import ArgumentParser
import Bus
import Foundation

/// `qt trace <id>` and `qt trace --symbol SYM --last N`: the causal chain of a signal or
/// proposal through every gate to the order and the ledger (R8), from the streams and KV.
struct TraceCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "trace",
        abstract: "Print the causal chain of an intent, proposal, plan or client order id: decisions, plans, permit, order, result, ledger.")

    @OptionGroup var connection: ConnectionArguments
    @Argument(help: "An intent, proposal, plan, message or trace id (8 characters or more may be a prefix), or a client order id.")
    var id: String?
    @Option(help: "List the latest chains of this symbol instead.") var symbol: String?
    @Option(help: "How many chains --symbol lists.") var last = 5

    func validate() throws {
        guard (id == nil) != (symbol == nil) else { throw ValidationError("give an id or --symbol SYM, not both and not neither") }
        guard last > 0 else { throw ValidationError("--last must be at least 1") }
    }

    func run() async throws {
        try await reportingErrors {
            let bus = try connection.connect()
            defer { bus.close() }
            if let symbol {
                let chains = CausalChain.latest(last, in: try await CausalChain.load(bus, symbol: symbol))
                guard !chains.isEmpty else { throw ValidationError("no intents, proposals, plans or orders on \(symbol)") }
                for (index, chain) in chains.enumerated() {
                    if index > 0 { printLine("") }
                    for line in try await chain.render(bus) { printLine(line) }
                }
                return
            }
            let id = id ?? ""
            // A client order id is "qt-" + the plan id's first 32 characters.
            let key = id.hasPrefix("qt-") ? String(id.dropFirst(3)) : id
            guard let chain = CausalChain.find(key, in: try await CausalChain.load(bus, symbol: nil)) else {
                throw ValidationError("no message names \(id) on the signal, exit, plan, exec or decision subjects")
            }
            for line in try await chain.render(bus) { printLine(line) }
        }
    }
}
