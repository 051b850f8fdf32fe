import Foundation

/// A real `nats-server -js` child process with its own store directory, on a port the server
/// picks itself (`-p -1 --ports_file_dir`), so tests running in parallel never race for a port.
///
/// `stop()` ends it (SIGTERM, then SIGKILL); `deinit` does the same, so a failing test that
/// forgets to stop it still leaves no server behind. `restart()` keeps the port and the store,
/// as an operator restarting the service would.
public final class NatsServer: @unchecked Sendable {
    public enum Failure: Error, CustomStringConvertible {
        case notInstalled
        case didNotStart(String)

        public var description: String {
            switch self {
            case .notInstalled:
                return "nats-server not found on PATH (or /usr/sbin): install it with `apt-get install -y nats-server`"
            case .didNotStart(let why):
                return "nats-server did not start: \(why)"
            }
        }
    }

    public let storeDirectory: URL
    public private(set) var port: Int = -1
    public var url: String { "nats://127.0.0.1:\(port)" }

    /// Ports file and log; always temporary (the store may live elsewhere).
    private let workDirectory: URL
    private var process: Process?
    private let lock = NSLock()
    private let extraArguments: [String]

    /// Starts a server. `storeDirectory` defaults to a fresh temporary folder, removed with the
    /// server object; a given one is kept.
    public init(storeDirectory: URL? = nil, port: Int = -1, extraArguments: [String] = []) throws {
        let temp = FileManager.default.temporaryDirectory
            .appendingPathComponent("qt-nats-\(UUID().uuidString.prefix(8))")
        try FileManager.default.createDirectory(at: temp, withIntermediateDirectories: true)
        self.workDirectory = temp
        self.storeDirectory = storeDirectory ?? temp.appendingPathComponent("store")
        self.extraArguments = extraArguments
        try start(port: port)
    }

    deinit {
        terminate()
        try? FileManager.default.removeItem(at: workDirectory)
    }

    public static func executablePath() -> String? {
        let path = ProcessInfo.processInfo.environment["PATH"] ?? ""
        let candidates = path.split(separator: ":").map(String.init) + ["/usr/sbin", "/usr/local/sbin", "/usr/bin"]
        return candidates.map { $0 + "/nats-server" }.first { FileManager.default.isExecutableFile(atPath: $0) }
    }

    public func stop() {
        terminate()
    }

    /// Stops and starts again on the same port with the same store.
    public func restart() throws {
        terminate()
        try start(port: port)
    }

    /// SIGKILL, as a crash would: no clean shutdown of the store.
    public func kill() {
        lock.lock(); defer { lock.unlock() }
        guard let process, process.isRunning else { return }
        Foundation.kill(process.processIdentifier, SIGKILL)
        process.waitUntilExit()
        self.process = nil
    }

    private func start(port requested: Int) throws {
        guard let executable = Self.executablePath() else { throw Failure.notInstalled }
        let portsDirectory = workDirectory.appendingPathComponent("ports-\(UUID().uuidString.prefix(6))")
        try FileManager.default.createDirectory(at: portsDirectory, withIntermediateDirectories: true)
        try FileManager.default.createDirectory(at: storeDirectory, withIntermediateDirectories: true)
        let log = workDirectory.appendingPathComponent("server.log")

        let process = Process()
        process.executableURL = URL(fileURLWithPath: executable)
        process.arguments = ["-js", "-a", "127.0.0.1", "-p", String(requested),
                             "-sd", storeDirectory.path, "--ports_file_dir", portsDirectory.path,
                             "-l", log.path] + extraArguments
        process.standardOutput = FileHandle.nullDevice
        process.standardError = FileHandle.nullDevice
        try process.run()

        let deadline = Date().addingTimeInterval(10)
        while Date() < deadline {
            if !process.isRunning {
                let text = (try? String(contentsOf: log, encoding: .utf8)) ?? ""
                throw Failure.didNotStart("exited with \(process.terminationStatus): \(text.suffix(500))")
            }
            if let found = readClientPort(in: portsDirectory) {
                lock.lock()
                self.process = process
                self.port = found
                lock.unlock()
                return
            }
            Thread.sleep(forTimeInterval: 0.02)
        }
        Foundation.kill(process.processIdentifier, SIGKILL)
        throw Failure.didNotStart("no ports file in \(portsDirectory.path) after 10 s")
    }

    /// The ports file is JSON: {"nats": ["nats://127.0.0.1:PORT"], ...}.
    private func readClientPort(in directory: URL) -> Int? {
        guard let names = try? FileManager.default.contentsOfDirectory(atPath: directory.path),
              let name = names.first(where: { $0.hasSuffix(".ports") }),
              let data = try? Data(contentsOf: directory.appendingPathComponent(name)),
              let json = try? JSONSerialization.jsonObject(with: data) as? [String: Any],
              let urls = json["nats"] as? [String],
              let first = urls.first,
              let portText = first.split(separator: ":").last,
              let port = Int(portText)
        else { return nil }
        return port
    }

    private func terminate() {
        lock.lock(); defer { lock.unlock() }
        guard let process else { return }
        if process.isRunning {
            process.terminate()
            let deadline = Date().addingTimeInterval(5)
            while process.isRunning && Date() < deadline { Thread.sleep(forTimeInterval: 0.01) }
            if process.isRunning { Foundation.kill(process.processIdentifier, SIGKILL) }
            process.waitUntilExit()
        }
        self.process = nil
    }
}
