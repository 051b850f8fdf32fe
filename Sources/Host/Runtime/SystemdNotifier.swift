import Foundation

/// systemd's notify protocol without libsystemd: one datagram per state to the unix socket named
/// by `NOTIFY_SOCKET` (`@` starts an abstract name). `Type=notify` units learn that the host is
/// ready (its plugins bound and its partitions taken), and `WatchdogSec=` units get a ping every
/// half period while the host's tasks still run, so a hung host is restarted.
public final class SystemdNotifier: Sendable {
    private let socketPath: String
    /// Half of `WATCHDOG_USEC`, or nil without a watchdog.
    public let watchdogIntervalMs: Int64?

    /// Nil when the process was not started by systemd with `Type=notify` (no `NOTIFY_SOCKET`).
    public init?(environment: [String: String] = ProcessInfo.processInfo.environment) {
        guard let path = environment["NOTIFY_SOCKET"], !path.isEmpty else { return nil }
        socketPath = path
        let pid = environment["WATCHDOG_PID"].flatMap(Int32.init)
        if let usec = environment["WATCHDOG_USEC"].flatMap(Int64.init), usec > 0, pid == nil || pid == getpid() {
            watchdogIntervalMs = max(1, usec / 2_000)
        } else {
            watchdogIntervalMs = nil
        }
    }

    public func ready(status: String) { send("READY=1\nSTATUS=\(status)") }
    public func stopping() { send("STOPPING=1") }
    public func watchdog() { send("WATCHDOG=1") }

    /// Best effort: a lost datagram is systemd's to time out, never a reason to stop trading.
    func send(_ state: String) {
        let fd = socket(AF_UNIX, Int32(SOCK_DGRAM.rawValue), 0)
        guard fd >= 0 else { return }
        defer { close(fd) }
        var address = sockaddr_un()
        address.sun_family = sa_family_t(AF_UNIX)
        var path = Array(socketPath.utf8)
        let abstract = path.first == UInt8(ascii: "@")
        if abstract { path[0] = 0 }
        let capacity = MemoryLayout.size(ofValue: address.sun_path)
        guard path.count < capacity else { return }
        withUnsafeMutableBytes(of: &address.sun_path) { buffer in
            for (index, byte) in path.enumerated() { buffer[index] = byte }
        }
        let length = socklen_t(MemoryLayout<sa_family_t>.size + path.count + (abstract ? 0 : 1))
        let bytes = Array(state.utf8)
        _ = withUnsafePointer(to: &address) { pointer in
            pointer.withMemoryRebound(to: sockaddr.self, capacity: 1) { socketAddress in
                bytes.withUnsafeBytes { sendto(fd, $0.baseAddress, $0.count, Int32(MSG_NOSIGNAL), socketAddress, length) }
            }
        }
    }
}
