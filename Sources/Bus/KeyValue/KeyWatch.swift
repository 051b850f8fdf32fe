import CNats
import BlockingIO
import Foundation

extension KeyValueBucket {
    /// Entries of `keys` (a key or a wildcard pattern, `>` for all): the current values first,
    /// then every change (libnats 3.4.1 has no updates-only option). The stream is unbounded:
    /// a KV watch is low-rate and must not drop an update.
    public func watch(_ keys: String = ">") async throws -> KeyWatch {
        try await connection.pool.run { [self] in
            var options = kvWatchOptions()
            kvWatchOptions_Init(&options)
            var watcher: OpaquePointer?
            try NatsCall.check(kvStore_Watch(&watcher, store, keys, &options), "KV watch \(name)/\(keys)")
            let watch = KeyWatch(watcher: watcher!, label: "\(name)/\(keys)")
            connection.onClose { watch.stop() }
            return watch
        }
    }
}

/// A running KV watch; its own thread waits on `kvWatcher_Next`.
public final class KeyWatch: AsyncSequence, @unchecked Sendable {
    public typealias Element = KeyValueEntry
    private let watcher: OpaquePointer
    private let stream: AsyncStream<KeyValueEntry>
    private let worker: BlockingWorker
    private let lock = NSLock()
    private var stopped = false

    init(watcher: OpaquePointer, label: String) {
        self.watcher = watcher
        self.worker = BlockingWorker(name: "qt-kv-watch-\(label)")
        var continuation: AsyncStream<KeyValueEntry>.Continuation!
        self.stream = AsyncStream(bufferingPolicy: .unbounded) { continuation = $0 }
        let output = continuation!
        let handle = WatcherHandle(watcher)
        _ = try? worker.runDetached {
            while true {
                var entry: OpaquePointer?
                let status = kvWatcher_Next(&entry, handle.pointer, 500)
                if status == NATS_TIMEOUT { continue }
                if status != NATS_OK { break }
                // A nil entry marks the end of the initial values.
                if let entry {
                    output.yield(KeyValueEntry(entry))
                    kvEntry_Destroy(entry)
                }
            }
            output.finish()
        }
    }

    public func makeAsyncIterator() -> AsyncStream<KeyValueEntry>.AsyncIterator {
        stream.makeAsyncIterator()
    }

    public func stop() {
        lock.lock()
        if stopped { lock.unlock(); return }
        stopped = true
        lock.unlock()
        kvWatcher_Stop(watcher)
        worker.shutdown()
        kvWatcher_Destroy(watcher)
    }
}

private struct WatcherHandle: @unchecked Sendable {
    let pointer: OpaquePointer
    init(_ pointer: OpaquePointer) { self.pointer = pointer }
}
