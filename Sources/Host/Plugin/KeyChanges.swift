package import Bus
import Messages

/// One key's change, as `PluginKV.changes` delivers it: the new value, or nil when the key was
/// deleted or purged (or its value does not decode as `M`).
public struct KeyChange<M: BusMessage>: Sendable {
    public let key: String
    public let value: M?
    public let revision: UInt64
}

/// A bucket's current values, then every change, typed: what a plugin that keeps a bucket in
/// memory follows (`LedgerView`). Plugins see this, never the bus's watch.
public final class KeyChanges<M: BusMessage>: AsyncSequence, Sendable {
    public typealias Element = KeyChange<M>
    private let watch: KeyWatch

    init(_ watch: KeyWatch) {
        self.watch = watch
    }

    public struct AsyncIterator: AsyncIteratorProtocol {
        var entries: KeyWatch.AsyncIterator

        public mutating func next() async -> KeyChange<M>? {
            guard let entry = await entries.next() else { return nil }
            let value = entry.operation == .put ? try? entry.decoded(as: M.self) : nil
            return KeyChange(key: entry.key, value: value, revision: entry.revision)
        }
    }

    public func makeAsyncIterator() -> AsyncIterator { AsyncIterator(entries: watch.makeAsyncIterator()) }

    /// Ends the sequence and the watch behind it.
    public func stop() { watch.stop() }
}
