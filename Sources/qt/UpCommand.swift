import ArgumentParser
import Bus
import Foundation
import NatsServerKit

/// `qt up`: everything on one machine. What exists today: an embedded nats-server with
/// JetStream and the provisioned topology. The simulator, the host and the plugins come with
/// later issues; this command says so instead of pretending.
struct Up: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Run Quantum Trader on one machine (today: NATS with the provisioned topology).")

    @Option(help: "Data directory for the NATS store (default: a fresh one under .qt/).") var data: String?
    @Option(name: .customLong("nats-port"), help: "NATS client port (default: a free one).") var natsPort: Int = -1
    @Option(help: "Stop after this many seconds (default: run until Ctrl-C).") var duration: Double?

    func run() async throws {
        try await reportingErrors {
            let directory = URL(fileURLWithPath: data ?? ".qt/run-\(Int(Date().timeIntervalSince1970))")
            let server = try NatsServer(storeDirectory: directory.appendingPathComponent("nats"), port: natsPort)
            defer { server.stop() }
            let bus = try BusConnection(ConnectionOptions(servers: [server.url], name: "qt-up"))
            defer { bus.close() }
            let results = try await bus.provision()
            let created = results.filter { $0.action == .created }.count
            printLine("NATS:       \(server.url)   (JetStream store: \(directory.path)/nats)")
            printLine("topology:   \(results.count) streams and buckets provisioned (\(created) created)")
            printLine("try:        NATS_URL=\(server.url) qt streams ls")
            printLine("not built yet: the exchange simulator (issue 4), the plugin host and the plugins (issues 3, 5, 6),")
            printLine("               the live status view and summary (issue 7). No trading happens in this run.")
            printLine(duration.map { "running for \($0) s; Ctrl-C stops earlier" } ?? "running; Ctrl-C stops")
            await waitForStop(seconds: duration)
            printLine("stopping: NATS closed cleanly")
        }
    }

    private func waitForStop(seconds: Double?) async {
        await withCheckedContinuation { (continuation: CheckedContinuation<Void, Never>) in
            let once = Once(continuation)
            for signalNumber in [SIGINT, SIGTERM] {
                signal(signalNumber, SIG_IGN)
                let source = DispatchSource.makeSignalSource(signal: signalNumber, queue: .global())
                source.setEventHandler { once.fire() }
                source.resume()
                once.keep(source)
            }
            if let seconds {
                DispatchQueue.global().asyncAfter(deadline: .now() + seconds) { once.fire() }
            }
        }
    }
}

private final class Once: @unchecked Sendable {
    private let lock = NSLock()
    private var continuation: CheckedContinuation<Void, Never>?
    private var sources: [DispatchSourceSignal] = []

    init(_ continuation: CheckedContinuation<Void, Never>) { self.continuation = continuation }

    func keep(_ source: DispatchSourceSignal) { lock.withLock { sources.append(source) } }

    func fire() {
        let pending: CheckedContinuation<Void, Never>? = lock.withLock {
            defer { continuation = nil }
            return continuation
        }
        pending?.resume()
    }
}
