import Foundation
import Bus
import Host
import Messages
import Synchronization

/// A KV bucket in memory with a bucket's promises: one revision counter per bucket, `create`
/// only on a missing key, `update` only at the current revision (else `KVConflict`), the value
/// type the topology registers for the key, the bucket's TTL on the manual clock, and `changes`
/// with the current values first.
public final class MemoryKeyValueStore: KeyValueStore {
    public let name: String
    private let spec: BucketSpec?
    private let clock: any PluginClock
    private let state = Mutex(State())

    private struct Entry {
        var bytes: [UInt8]
        var revision: UInt64
        var writtenMs: Int64
    }

    private struct Watcher {
        let deliver: @Sendable (String, [UInt8]?, UInt64) -> Void
        let end: @Sendable () -> Void
    }

    private struct State {
        var revision: UInt64 = 0
        var entries: [String: Entry] = [:]
        var watchers: [Int: Watcher] = [:]
        var nextWatcher = 0
    }

    init(name: String, clock: any PluginClock) {
        self.name = name
        self.spec = Topology.bucket(named: name)
        self.clock = clock
    }

    public func get<M: BusMessage>(_ type: M.Type, _ key: String) async throws -> (value: M, revision: UInt64)? {
        try checkType(type, key: key)
        guard let entry = live(key) else { return nil }
        return (try M(serializedBytes: entry.bytes), entry.revision)
    }

    public func keys() async throws -> [String] {
        state.withLock { state in state.entries.filter { isLive($0.value) }.keys.sorted() }
    }

    public func put<M: BusMessage>(_ key: String, _ value: M) async throws -> UInt64 {
        try write(key, value) { _ in true }
    }

    public func create<M: BusMessage>(_ key: String, _ value: M) async throws -> UInt64 {
        try write(key, value) { current in current == nil }
    }

    public func update<M: BusMessage>(_ key: String, _ value: M, expectedRevision: UInt64) async throws -> UInt64 {
        try write(key, value) { current in current?.revision == expectedRevision }
    }

    public func delete(_ key: String) async throws {
        state.withLock { state in
            guard state.entries.removeValue(forKey: key) != nil else { return }
            state.revision += 1
            for watcher in state.watchers.values { watcher.deliver(key, nil, state.revision) }
        }
    }

    public func changes<M: BusMessage>(_ type: M.Type, key watched: String?) async throws -> KeyChanges<M> {
        let (stream, continuation) = AsyncStream.makeStream(of: KeyChange<M>.self)
        // A key or a pattern (`governor.>`), as a NATS watch takes it.
        let pattern = watched.map(SubjectPattern.init)
        let id = state.withLock { state in
            for (key, entry) in state.entries.sorted(by: { $0.value.revision < $1.value.revision })
            where isLive(entry) && (pattern?.matches(key) ?? true) {
                continuation.yield(KeyChange(key: key, bytes: entry.bytes, revision: entry.revision))
            }
            let id = state.nextWatcher
            state.nextWatcher += 1
            state.watchers[id] = Watcher(deliver: { key, bytes, revision in
                guard pattern?.matches(key) ?? true else { return }
                continuation.yield(bytes.map { KeyChange(key: key, bytes: $0, revision: revision) }
                                   ?? KeyChange(key: key, value: nil, revision: revision))
            }, end: { continuation.finish() })
            return id
        }
        return KeyChanges(stream) { [weak self] in
            self?.state.withLock { _ = $0.watchers.removeValue(forKey: id) }
            continuation.finish()
        }
    }

    /// Ends every running `changes` sequence, as a closed connection ends a NATS watch.
    public func endWatches() {
        let ended = state.withLock { state in
            defer { state.watchers = [:] }
            return Array(state.watchers.values)
        }
        for watcher in ended { watcher.end() }
    }

    /// A write that went out with a handler's outputs: a put, an update at its expected revision
    /// or a delete, as the bucket's stream takes it. Returns the new revision.
    func apply(_ write: KeyValueWrite, value: [UInt8]) throws -> UInt64 {
        switch write.operation {
        case .put, .update:
            let now = clock.nowMs()
            return try state.withLock { state in
                let current = state.entries[write.key].flatMap { isLive($0) ? $0 : nil }
                // 0: the key holds nothing (`Nats-Expected-Last-Subject-Sequence: 0`).
                if case .update(let expected) = write.operation, (current?.revision ?? 0) != expected {
                    throw KVConflict(bucket: name, key: write.key)
                }
                state.revision += 1
                state.entries[write.key] = Entry(bytes: value, revision: state.revision, writtenMs: now)
                for watcher in state.watchers.values { watcher.deliver(write.key, value, state.revision) }
                return state.revision
            }
        case .delete:
            return state.withLock { state in
                state.revision += 1
                state.entries.removeValue(forKey: write.key)
                for watcher in state.watchers.values { watcher.deliver(write.key, nil, state.revision) }
                return state.revision
            }
        }
    }

    /// Writes bytes no typed put would (a hostile or broken producer's value).
    public func putRaw(_ key: String, _ bytes: [UInt8]) {
        let now = clock.nowMs()
        state.withLock { state in
            state.revision += 1
            state.entries[key] = Entry(bytes: bytes, revision: state.revision, writtenMs: now)
            for watcher in state.watchers.values { watcher.deliver(key, bytes, state.revision) }
        }
    }

    /// The current value of `key` as the bucket would return it (nil when missing or expired).
    private func live(_ key: String) -> Entry? {
        state.withLock { state in state.entries[key].flatMap { isLive($0) ? $0 : nil } }
    }

    private func isLive(_ entry: Entry) -> Bool {
        guard let ttl = spec?.ttlSeconds, ttl > 0 else { return true }
        return clock.nowMs() - entry.writtenMs < ttl * 1000
    }

    private func write<M: BusMessage>(_ key: String, _ value: M, when allowed: (Entry?) -> Bool) throws -> UInt64 {
        try checkType(M.self, key: key)
        let bytes = try value.serializedBytes() as [UInt8]
        let now = clock.nowMs()
        return try state.withLock { state in
            let current = state.entries[key].flatMap { isLive($0) ? $0 : nil }
            guard allowed(current) else { throw KVConflict(bucket: name, key: key) }
            state.revision += 1
            state.entries[key] = Entry(bytes: bytes, revision: state.revision, writtenMs: now)
            for watcher in state.watchers.values { watcher.deliver(key, bytes, state.revision) }
            return state.revision
        }
    }

    private func checkType<M: BusMessage>(_ type: M.Type, key: String) throws {
        guard let spec else { return }
        let expected = spec.valueType(forKey: key)
        guard expected == M.self else {
            throw PluginError.contract("\(name)/\(key) holds \(expected.protoMessageName), not \(M.protoMessageName)")
        }
    }
}
