import Foundation
import XCTest

/// Issue 18: `qt host` under systemd's notify protocol. The test plays systemd: a datagram
/// socket named by NOTIFY_SOCKET, a watchdog period in WATCHDOG_USEC.
final class SystemdNotifyTests: HostTestCase {
    func testTheHostSendsReadyThenWatchdogPingsThenStopping() async throws {
        let path = scratch.appendingPathComponent("notify.sock").path
        let listener = try DatagramListener(path: path)
        defer { listener.close() }
        let child = try await spawnHost("node-n", plugins: ["relay-a": [:]],
                                        environment: ["NOTIFY_SOCKET": path, "WATCHDOG_USEC": "400000"])
        var received: [String] = []
        let deadline = Date().addingTimeInterval(20)
        while Date() < deadline, received.filter({ $0.contains("WATCHDOG=1") }).count < 3 {
            if let datagram = listener.receive(timeoutMs: 500) { received.append(datagram) }
        }
        XCTAssertTrue(received.first?.hasPrefix("READY=1") == true, "the first notification is READY: \(received)")
        XCTAssertTrue(received.first?.contains("STATUS=running relay-a") == true, "\(received)")
        XCTAssertGreaterThanOrEqual(received.filter { $0 == "WATCHDOG=1" }.count, 3, "pings every half period: \(received)")

        child.terminate()
        var stopping = false
        let stopDeadline = Date().addingTimeInterval(20)
        while Date() < stopDeadline, !stopping {
            if let datagram = listener.receive(timeoutMs: 500) { stopping = datagram == "STOPPING=1" }
        }
        XCTAssertTrue(stopping, "STOPPING=1 when it starts to drain")
        child.waitUntilExit()
        XCTAssertEqual(child.terminationStatus, 0, exitReport(of: "node-n"))
    }
}

/// A bound unix datagram socket, as systemd listens for notifications.
private final class DatagramListener {
    private let fd: Int32

    init(path: String) throws {
        fd = socket(AF_UNIX, Int32(SOCK_DGRAM.rawValue), 0)
        guard fd >= 0 else { throw POSIXError(.EIO) }
        var address = sockaddr_un()
        address.sun_family = sa_family_t(AF_UNIX)
        withUnsafeMutableBytes(of: &address.sun_path) { buffer in
            for (index, byte) in path.utf8.enumerated() { buffer[index] = byte }
        }
        let bound = withUnsafePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { bind(fd, $0, socklen_t(MemoryLayout<sockaddr_un>.size)) }
        }
        guard bound == 0 else { throw POSIXError(.EADDRINUSE) }
    }

    func receive(timeoutMs: Int32) -> String? {
        var poller = pollfd(fd: fd, events: Int16(POLLIN), revents: 0)
        guard poll(&poller, 1, timeoutMs) == 1 else { return nil }
        var buffer = [UInt8](repeating: 0, count: 4096)
        let count = recv(fd, &buffer, buffer.count, 0)
        return count > 0 ? String(decoding: buffer[0..<count], as: UTF8.self) : nil
    }

    func close() { Glibc.close(fd) }
}
