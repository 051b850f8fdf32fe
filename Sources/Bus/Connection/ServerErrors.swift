import CNats
import Foundation

/// What the server reported on this connection outside any call: a permissions violation (a
/// publish or subscribe the identity may not make: the server drops it and says so only here), a
/// slow consumer. Kept so a host can log and count them and a test can assert them.
public final class ServerErrors: @unchecked Sendable {
    public struct Report: Sendable, CustomStringConvertible {
        public let status: String
        public let text: String
        public var isPermissionViolation: Bool { text.lowercased().contains("permissions violation") }
        public var description: String { "\(status): \(text)" }
    }

    private let lock = NSLock()
    private var kept: [Report] = []
    private var total = 0
    private var listeners: [@Sendable (Report) -> Void] = []
    static let keptLimit = 256

    /// Every report so far (the newest `keptLimit`).
    public var reports: [Report] { lock.withLock { kept } }
    public var count: Int { lock.withLock { total } }
    public var permissionViolations: [Report] { reports.filter(\.isPermissionViolation) }

    /// Called on libnats' callback thread for each report.
    public func onReport(_ listener: @escaping @Sendable (Report) -> Void) {
        lock.withLock { listeners.append(listener) }
    }

    func record(_ report: Report) {
        let notify = lock.withLock { () -> [@Sendable (Report) -> Void] in
            kept.append(report)
            if kept.count > Self.keptLimit { kept.removeFirst(kept.count - Self.keptLimit) }
            total += 1
            return listeners
        }
        notify.forEach { $0(report) }
    }

    /// Registers the libnats callback; `self` must outlive the connection (the BusConnection holds it).
    func install(on options: OpaquePointer) throws {
        let handler: natsErrHandler = { connection, _, status, closure in
            guard let closure else { return }
            let errors = Unmanaged<ServerErrors>.fromOpaque(closure).takeUnretainedValue()
            var text: UnsafePointer<CChar>?
            _ = natsConnection_GetLastError(connection, &text)
            errors.record(Report(status: String(cString: natsStatus_GetText(status)), text: text.map { String(cString: $0) } ?? ""))
        }
        try NatsCall.check(natsOptions_SetErrorHandler(options, handler, Unmanaged.passUnretained(self).toOpaque()),
                           "natsOptions_SetErrorHandler")
    }
}
