import Foundation

/// `qt host --config node.yaml`: load and check the config, start the host, run until
/// SIGTERM/SIGINT, drain. Shared by `qt` and the test host binary.
public enum HostRunner {
    public static func run(configPath: String, registry: PluginRegistry) async throws {
        let config = try NodeConfig.load(path: configPath, registry: registry)
        let host = PluginHost(config: config, registry: registry)
        try await host.start()
        FileHandle.standardError.write(Data("qt host \(config.hostID): running \(config.plugins.map(\.name).joined(separator: ", ")); http :\(host.httpPort ?? 0)\n".utf8))
        await waitForTermination()
        FileHandle.standardError.write(Data("qt host \(config.hostID): draining\n".utf8))
        await host.shutdown()
        FileHandle.standardError.write(Data("qt host \(config.hostID): stopped\n".utf8))
    }

    /// Suspends until SIGTERM or SIGINT, or until `seconds` passed when given.
    public static func waitForTermination(orAfter seconds: Double? = nil) async {
        await withCheckedContinuation { (continuation: CheckedContinuation<Void, Never>) in
            let signalled = SignalLatch(continuation)
            for number in [SIGINT, SIGTERM] {
                signal(number, SIG_IGN)
                let source = DispatchSource.makeSignalSource(signal: number, queue: .global())
                source.setEventHandler { signalled.fire() }
                source.resume()
                signalled.keep(source)
            }
            if let seconds {
                DispatchQueue.global().asyncAfter(deadline: .now() + seconds) { signalled.fire() }
            }
        }
    }
}

private final class SignalLatch: @unchecked Sendable {
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
