package import Bus
import Messages

/// One key's change, as `PluginKV.changes` delivers it: the new value, or nil when the key was
/// deleted or purged (or its value does not decode as `M`).
public struct KeyChange<M: BusMessage>: Sendable {
    public let key: String
    public let value: M?
    public let revision: UInt64

    public init(key: String, value: M?, revision: UInt64) {
        self.key = key
        self.value = value
        self.revision = revision
    }
}

/// A bucket's current values, then every change, typed: what a plugin that keeps a bucket in
/// memory follows (`LedgerView`). Plugins see this, never the bus's watch.
public final class KeyChanges<M: BusMessage>: AsyncSequence, Sendable {
    public typealias Element = KeyChange<M>
    private enum Source: Sendable {
        case watch(KeyWatch)
        case stream(AsyncStream<KeyChange<M>>, stop: @Sendable () -> Void)
    }
    private let source: Source

    init(_ watch: KeyWatch) {
        source = .watch(watch)
    }

    /// Changes from another store (the in-memory host's); `stop` ends `changes`.
    public init(_ changes: AsyncStream<KeyChange<M>>, stop: @escaping @Sendable () -> Void) {
        source = .stream(changes, stop: stop)
    }

    public struct AsyncIterator: AsyncIteratorProtocol {
        fileprivate enum Entries {
            case watch(AsyncStream<KeyValueEntry>.AsyncIterator)
            case stream(AsyncStream<KeyChange<M>>.AsyncIterator)
        }
        fileprivate var entries: Entries

        public mutating func next() async -> KeyChange<M>? {
            switch entries {
            case .watch(var iterator):
                defer { entries = .watch(iterator) }
                guard let entry = await iterator.next() else { return nil }
                let value = entry.operation == .put ? try? entry.decoded(as: M.self) : nil
                return KeyChange(key: entry.key, value: value, revision: entry.revision)
            case .stream(var iterator):
                defer { entries = .stream(iterator) }
                return await iterator.next()
            }
        }
    }

    public func makeAsyncIterator() -> AsyncIterator {
        switch source {
        case .watch(let watch): return AsyncIterator(entries: .watch(watch.makeAsyncIterator()))
        case .stream(let stream, _): return AsyncIterator(entries: .stream(stream.makeAsyncIterator()))
        }
    }

    /// Ends the sequence and the watch behind it.
    public func stop() {
        switch source {
        case .watch(let watch): watch.stop()
        case .stream(_, let stop): stop()
        }
    }
}
