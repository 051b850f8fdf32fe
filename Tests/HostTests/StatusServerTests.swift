import Foundation
import Synchronization
import Host
import NatsServerKit
import XCTest

/// The status endpoints under load and abuse: 50 clients at once, one of which connects and
/// sends nothing and one of which resets its connections mid-request. `/healthz` keeps
/// answering, the host survives, the server listens on loopback only by default, and `/metrics`
/// is valid Prometheus exposition (prometheus_client's parser).
final class StatusServerTests: HostTestCase {
    func testFiftyClientsAnIdleOneAndResetsLeaveHealthzAnsweringAndTheHostRunning() async throws {
        let host = try await startHost("node-a", plugins: ["relay-a": [:]])
        let port = try XCTUnwrap(host.httpPort)
        XCTAssertEqual(try listeningAddresses(port: port), ["127.0.0.1"], "loopback only unless http_address says otherwise")

        let busyClients = 48
        let requestsEach = 20
        let result = await onThreads(busyClients + 2) { index -> [Double] in
            switch index {
            case busyClients:
                // Connects and sends nothing for as long as the others run.
                let idle = try? RawHTTP.connect(port: port)
                Thread.sleep(forTimeInterval: 3)
                idle.map { close($0) }
                return []
            case busyClients + 1:
                // Sends half a request, then resets the connection (RST), again and again.
                for _ in 0..<40 { try? RawHTTP.resetMidRequest(port: port) }
                return []
            default:
                return (0..<requestsEach).compactMap { _ in
                    let started = DispatchTime.now().uptimeNanoseconds
                    guard let answer = try? RawHTTP.get(port: port, path: "/healthz"), answer.hasPrefix("HTTP/1.1 200") else { return nil }
                    return Double(DispatchTime.now().uptimeNanoseconds - started) / 1e6
                }
            }
        }
        let latencies = result.flatMap { $0 }.sorted()
        XCTAssertEqual(latencies.count, busyClients * requestsEach, "every /healthz answered 200")
        let p50 = latencies[latencies.count / 2]
        let p99 = latencies[latencies.count * 99 / 100]
        print(String(format: "status server: %d /healthz from %d clients (+1 idle, +1 resetting): p50 %.2f ms, p99 %.2f ms, max %.2f ms",
                     latencies.count, busyClients, p50, p99, latencies.last ?? 0))

        let health = try await httpGet(port: port, path: "/healthz")
        XCTAssertEqual(health.status, 200)
        let ready = try await httpGet(port: port, path: "/readyz")
        XCTAssertEqual(ready.status, 200, "the host survived")
    }

    func testMetricsAreValidPrometheusExposition() async throws {
        let host = try await startHost("node-a", plugins: ["relay-a": [:], "relay-b": [:]])
        _ = try await publishKlines(20)
        try await waitUntil("20 decisions", seconds: 20) { try await self.messages(in: "QT_AUDIT") >= 20 }
        let metrics = try await httpGet(port: try XCTUnwrap(host.httpPort), path: "/metrics")
        XCTAssertEqual(metrics.status, 200)
        let parser = """
        import sys
        from prometheus_client.parser import text_string_to_metric_families
        families = list(text_string_to_metric_families(sys.stdin.read()))
        samples = sum(len(f.samples) for f in families)
        print(len(families), samples)
        """
        let script = scratch.appendingPathComponent("parse_metrics.py")
        try parser.write(to: script, atomically: true, encoding: .utf8)
        let input = scratch.appendingPathComponent("metrics.txt")
        try metrics.body.write(to: input, atomically: true, encoding: .utf8)
        let parsed = try ChildProcess.run(URL(fileURLWithPath: "/bin/sh"), ["-c", "python3 \(script.path) < \(input.path)"])
        XCTAssertEqual(parsed.status, 0, "prometheus_client rejected /metrics: \(parsed.stderr)\n\(metrics.body)")
        let counts = parsed.stdout.split(separator: " ").compactMap { Int($0.trimmingCharacters(in: .whitespacesAndNewlines)) }
        XCTAssertEqual(counts.count, 2, parsed.stdout)
        XCTAssertGreaterThan(counts.first ?? 0, 5, "metric families")
        XCTAssertGreaterThan(counts.last ?? 0, 10, "samples")
    }

    /// The local addresses listening on `port` (IPv4, from /proc/net/tcp).
    func listeningAddresses(port: Int) throws -> [String] {
        let table = try String(contentsOfFile: "/proc/net/tcp", encoding: .utf8)
        return table.split(separator: "\n").dropFirst().compactMap { line in
            let fields = line.split(separator: " ")
            guard fields.count > 3, fields[3] == "0A" else { return nil }
            let local = fields[1].split(separator: ":")
            guard local.count == 2, Int(local[1], radix: 16) == port, let address = UInt32(local[0], radix: 16) else { return nil }
            return [0, 8, 16, 24].map { String((address >> $0) & 0xff) }.joined(separator: ".")
        }
    }

    /// Runs `count` bodies on their own threads at once (blocking sockets stay off the cooperative pool).
    func onThreads<T: Sendable>(_ count: Int, _ body: @escaping @Sendable (Int) -> T) async -> [T] {
        await withCheckedContinuation { continuation in
            let results = ResultBox<T>(count: count)
            let group = DispatchGroup()
            for index in 0..<count {
                group.enter()
                Thread {
                    results.set(index, body(index))
                    group.leave()
                }.start()
            }
            group.notify(queue: .global()) { continuation.resume(returning: results.values) }
        }
    }
}

private final class ResultBox<T: Sendable>: Sendable {
    private let slots: Mutex<[T?]>
    init(count: Int) { slots = Mutex(Array(repeating: nil, count: count)) }
    func set(_ index: Int, _ value: T) { slots.withLock { $0[index] = value } }
    var values: [T] { slots.withLock { $0.compactMap { $0 } } }
}

/// HTTP/1.1 over a blocking socket, as a monitoring probe would speak it.
enum RawHTTP {
    struct Failure: Error {}

    static func connect(port: Int) throws -> Int32 {
        let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        guard fd >= 0 else { throw Failure() }
        var address = sockaddr_in()
        address.sin_family = sa_family_t(AF_INET)
        address.sin_port = in_port_t(UInt16(port).bigEndian)
        address.sin_addr = in_addr(s_addr: inet_addr("127.0.0.1"))
        let connected = withUnsafePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { Glibc.connect(fd, $0, socklen_t(MemoryLayout<sockaddr_in>.size)) }
        }
        guard connected == 0 else { close(fd); throw Failure() }
        var timeout = timeval(tv_sec: 5, tv_usec: 0)
        setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &timeout, socklen_t(MemoryLayout<timeval>.size))
        return fd
    }

    static func get(port: Int, path: String) throws -> String {
        let fd = try connect(port: port)
        defer { close(fd) }
        try send(fd, "GET \(path) HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n")
        var response = [UInt8]()
        var buffer = [UInt8](repeating: 0, count: 4096)
        while true {
            let count = read(fd, &buffer, buffer.count)
            if count <= 0 { break }
            response += buffer[0..<count]
        }
        return String(decoding: response, as: UTF8.self)
    }

    static func resetMidRequest(port: Int) throws {
        let fd = try connect(port: port)
        try send(fd, "GET /heal")
        var linger = Glibc.linger(l_onoff: 1, l_linger: 0)
        setsockopt(fd, SOL_SOCKET, SO_LINGER, &linger, socklen_t(MemoryLayout<Glibc.linger>.size))
        close(fd)
    }

    private static func send(_ fd: Int32, _ text: String) throws {
        let bytes = Array(text.utf8)
        let written = bytes.withUnsafeBytes { write(fd, $0.baseAddress, $0.count) }
        guard written == bytes.count else { throw Failure() }
    }
}
