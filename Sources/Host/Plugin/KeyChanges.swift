package import Bus
import Messages

/// One key's change, as `PluginKV.changes` delivers it: the new value, or nil when the key was
/// deleted or purged. A value written that does not decode as `M` is never a deletion: `value`
/// is nil and `problem` says why, so a follower can hold the key instead of forgetting it.
public struct KeyChange<M: BusMessage>: Sendable {
    public let key: String
    public let value: M?
    public let revision: UInt64
    public let problem: String?

    public init(key: String, value: M?, revision: UInt64, problem: String? = nil) {
        self.key = key
        self.value = value
        self.revision = revision
        self.problem = problem
    }

    /// The change a written value makes: decoded, or undecodable with the reason.
    public init(key: String, bytes: [UInt8], revision: UInt64) {
        do {
            self.init(key: key, value: try M(serializedBytes: bytes), revision: revision)
        } catch {
            self.init(key: key, value: nil, revision: revision,
                      problem: "\(bytes.count) bytes do not decode as \(M.protoMessageName): \(error)")
        }
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
                guard entry.operation == .put else { return KeyChange(key: entry.key, value: nil, revision: entry.revision) }
                return KeyChange(key: entry.key, bytes: entry.value, revision: entry.revision)
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
