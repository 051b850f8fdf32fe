import ArgumentParser
import Bus
import Foundation

@main
struct QT: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "qt",
        abstract: "Quantum Trader: a trading pipeline for Binance USDⓈ-M futures on NATS JetStream.",
        subcommands: [Up.self, Sim.self, HostCommand.self, Streams.self, KV.self, TopologyCommand.self, ControlCommand.self,
                      LedgerCommand.self, TraceCommand.self, ConsoleCommand.self, FleetCommand.self, ClusterCommand.self, PluginsCommand.self, AuthCommand.self, Bench.self]
    )
}

/// Runs a command body and turns any error into one line on stderr and a non-zero exit.
func reportingErrors(_ body: () async throws -> Void) async throws {
    do {
        try await body()
    } catch let exit as ExitCode {
        throw exit
    } catch {
        FileHandle.standardError.write(Data("qt: \(error)\n".utf8))
        throw ExitCode.failure
    }
}

/// stdout through stdio: a closed pipe (`qt streams tail … | head`) ends the process the
/// Unix way instead of trapping in FileHandle. Flushed per line, so a program reading a
/// long-running `qt sim` or `qt up` sees its URLs at once, not when it exits.
func printLine(_ text: String) {
    print(text)
    fflush(nil)  // every output stream; `stdout` itself is a global Swift 6 will not touch
}
