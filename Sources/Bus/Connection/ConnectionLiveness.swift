import CNats
import Foundation

/// The natsConnection for calls made outside the Bus's own tasks and threads: a message's ack
/// can come from a handler task that outlives `BusConnection.close`. Each call runs under a lock
/// that `close` takes before it destroys the connection, so none reaches a destroyed one; after
/// the close, the call is refused instead.
final class ConnectionLiveness: @unchecked Sendable {
    private let connection: OpaquePointer
    private let lock = NSLock()
    private var closed = false

    init(_ connection: OpaquePointer) {
        self.connection = connection
    }

    /// `body`'s result, or nil once the connection is closed (nothing was called).
    func whileOpen<T>(_ body: (OpaquePointer) -> T) -> T? {
        lock.lock(); defer { lock.unlock() }
        return closed ? nil : body(connection)
    }

    /// Waits for a call in progress, then refuses every later one.
    func markClosed() {
        lock.lock(); defer { lock.unlock() }
        closed = true
    }
}
