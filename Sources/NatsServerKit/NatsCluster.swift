import Foundation
import Synchronization

/// A JetStream cluster of nats-server processes on loopback, each with its own config file and
/// store: `server_name`, `cluster.name`, routes to every peer, JetStream limits, and a `unique_tag`
/// so R3 places one replica per node. The lame-duck period is the shortest the server accepts
/// (30 s; the default is 2 minutes), and `stopLameDuck` ends it early once clients and leaderships
/// have moved, so a rolling restart takes seconds. For developers (`qt cluster up`) and the chaos tests.
public final class NatsCluster: Sendable {
    public struct Node: Sendable {
        public let name: String
        public let clientPort: Int
        public let clusterPort: Int
        public let configFile: URL
        public let storeDirectory: URL
        public var url: String { "nats://127.0.0.1:\(clientPort)" }
    }

    public let name: String
    public let nodes: [Node]
    public let directory: URL
    private let processes = Mutex<[String: Process]>([:])

    public var urls: [String] { nodes.map(\.url) }

    /// Writes the configs and starts every node; returns once each accepts clients and the
    /// cluster has a JetStream meta leader.
    public init(nodes count: Int = 3, directory: URL? = nil, name: String = "qt", lameDuckSeconds: Int = 30) throws {
        precondition(count >= 1)
        let base = directory ?? FileManager.default.temporaryDirectory.appendingPathComponent("qt-cluster-\(UUID().uuidString.prefix(8))")
        try FileManager.default.createDirectory(at: base, withIntermediateDirectories: true)
        self.directory = base
        self.name = name
        let ports = try FreePorts.take(2 * count)
        var nodes: [Node] = []
        for index in 0..<count {
            let nodeName = "n\(index + 1)"
            nodes.append(Node(name: nodeName, clientPort: ports[2 * index], clusterPort: ports[2 * index + 1],
                              configFile: base.appendingPathComponent("\(nodeName).conf"),
                              storeDirectory: base.appendingPathComponent("\(nodeName)-store")))
        }
        self.nodes = nodes
        for node in nodes {
            let routes = nodes.filter { $0.name != node.name }.map { "nats-route://127.0.0.1:\($0.clusterPort)" }
            try Self.config(node: node, cluster: name, routes: routes, lameDuckSeconds: lameDuckSeconds)
                .write(to: node.configFile, atomically: true, encoding: .utf8)
        }
        for node in nodes { try start(node.name) }
        for node in nodes { try waitForClients(node, seconds: 15) }
    }

    deinit { stopAll() }

    /// One node's server config, as `deploy/cluster/` has it for real machines but on loopback ports.
    public static func config(node: Node, cluster: String, routes: [String], lameDuckSeconds: Int) -> String {
        """
        server_name: \(node.name)
        listen: 127.0.0.1:\(node.clientPort)
        server_tags: ["node:\(node.name)"]
        lame_duck_duration: "\(max(30, lameDuckSeconds))s"
        lame_duck_grace_period: "2s"
        jetstream {
          store_dir: "\(node.storeDirectory.path)"
          max_memory_store: 256MB
          max_file_store: 8GB
          unique_tag: "node:"
        }
        cluster {
          name: \(cluster)
          listen: 127.0.0.1:\(node.clusterPort)
          routes: [\(routes.map { "\"\($0)\"" }.joined(separator: ", "))]
        }

        """
    }

    public func start(_ nodeName: String) throws {
        guard let node = nodes.first(where: { $0.name == nodeName }) else { return }
        let executable = try NatsServer.checkedExecutable()
        let process = Process()
        process.executableURL = URL(fileURLWithPath: executable)
        process.arguments = ["-c", node.configFile.path, "-l", directory.appendingPathComponent("\(node.name).log").path]
        process.standardOutput = FileHandle.nullDevice
        process.standardError = FileHandle.nullDevice
        try process.run()
        processes.withLock { $0[node.name] = process }
    }

    public func isRunning(_ nodeName: String) -> Bool {
        processes.withLock { $0[nodeName] }?.isRunning ?? false
    }

    /// SIGKILL: a crash, no clean shutdown of the store.
    public func kill(_ nodeName: String) {
        guard let process = processes.withLock({ $0.removeValue(forKey: nodeName) }), process.isRunning else { return }
        Foundation.kill(process.processIdentifier, SIGKILL)
        process.waitUntilExit()
    }

    /// Lame-duck mode (SIGUSR2: the server gives up its RAFT leaderships and tells clients to move),
    /// then, after `settleSeconds`, a clean shutdown (SIGTERM) instead of waiting out the whole period.
    public func stopLameDuck(_ nodeName: String, settleSeconds: Double = 3) {
        guard let process = processes.withLock({ $0.removeValue(forKey: nodeName) }), process.isRunning else { return }
        Foundation.kill(process.processIdentifier, SIGUSR2)
        Thread.sleep(forTimeInterval: settleSeconds)
        if process.isRunning { process.terminate() }
        let deadline = Date().addingTimeInterval(10)
        while process.isRunning && Date() < deadline { Thread.sleep(forTimeInterval: 0.05) }
        if process.isRunning { Foundation.kill(process.processIdentifier, SIGKILL) }
        process.waitUntilExit()
    }

    /// Starts a stopped node again with its store, and waits until it accepts clients.
    public func restart(_ nodeName: String) throws {
        try start(nodeName)
        if let node = nodes.first(where: { $0.name == nodeName }) { try waitForClients(node, seconds: 15) }
    }

    public func stopAll() {
        let all = processes.withLock { processes -> [Process] in
            defer { processes.removeAll() }
            return Array(processes.values)
        }
        for process in all where process.isRunning { process.terminate() }
        for process in all {
            let deadline = Date().addingTimeInterval(5)
            while process.isRunning && Date() < deadline { Thread.sleep(forTimeInterval: 0.02) }
            if process.isRunning { Foundation.kill(process.processIdentifier, SIGKILL) }
            process.waitUntilExit()
        }
    }

    /// A node by its `server_name` (what stream info reports as a RAFT leader).
    public func node(named name: String) -> Node? { nodes.first { $0.name == name } }

    private func waitForClients(_ node: Node, seconds: Double) throws {
        let deadline = Date().addingTimeInterval(seconds)
        while Date() < deadline {
            if FreePorts.accepts(port: node.clientPort) { return }
            if let process = processes.withLock({ $0[node.name] }), !process.isRunning {
                let log = (try? String(contentsOf: directory.appendingPathComponent("\(node.name).log"), encoding: .utf8)) ?? ""
                throw NatsServer.Failure.didNotStart("\(node.name) exited: \(log.suffix(600))")
            }
            Thread.sleep(forTimeInterval: 0.05)
        }
        throw NatsServer.Failure.didNotStart("\(node.name) did not accept clients on \(node.clientPort) within \(Int(seconds)) s")
    }
}

/// Loopback ports nobody listens on now (bound to port 0, read, closed): a cluster's routes must
/// be known before its servers start, so the servers cannot pick their own.
public enum FreePorts {
    public static func take(_ count: Int) throws -> [Int] {
        var sockets: [Int32] = []
        defer { sockets.forEach { close($0) } }
        var ports: [Int] = []
        for _ in 0..<count {
            let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
            guard fd >= 0 else { throw NatsServer.Failure.didNotStart("socket() failed") }
            sockets.append(fd)
            var address = sockaddr_in()
            address.sin_family = sa_family_t(AF_INET)
            address.sin_addr.s_addr = inet_addr("127.0.0.1")
            address.sin_port = 0
            var length = socklen_t(MemoryLayout<sockaddr_in>.size)
            let bound = withUnsafePointer(to: &address) {
                $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { bind(fd, $0, length) }
            }
            guard bound == 0 else { throw NatsServer.Failure.didNotStart("bind() failed") }
            _ = withUnsafeMutablePointer(to: &address) {
                $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { getsockname(fd, $0, &length) }
            }
            ports.append(Int(UInt16(bigEndian: address.sin_port)))
        }
        return ports
    }

    static func accepts(port: Int) -> Bool {
        let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        guard fd >= 0 else { return false }
        defer { close(fd) }
        var address = sockaddr_in()
        address.sin_family = sa_family_t(AF_INET)
        address.sin_addr.s_addr = inet_addr("127.0.0.1")
        address.sin_port = UInt16(port).bigEndian
        return withUnsafePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { connect(fd, $0, socklen_t(MemoryLayout<sockaddr_in>.size)) }
        } == 0
    }
}
