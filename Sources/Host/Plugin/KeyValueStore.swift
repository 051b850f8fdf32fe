package import Bus
import Messages

/// One KV bucket as a plugin's context reaches it: a bucket on NATS, or one of the in-memory
/// host's. Both keep the same promises: revisions grow per bucket, `create` fails on an existing
/// key and `update` on a moved revision with `KVConflict`, and `changes` gives the current values
/// and then every change.
public protocol KeyValueStore: Sendable {
    var name: String { get }
    func get<M: BusMessage>(_ type: M.Type, _ key: String) async throws -> (value: M, revision: UInt64)?
    func keys() async throws -> [String]
    func put<M: BusMessage>(_ key: String, _ value: M) async throws -> UInt64
    func create<M: BusMessage>(_ key: String, _ value: M) async throws -> UInt64
    func update<M: BusMessage>(_ key: String, _ value: M, expectedRevision: UInt64) async throws -> UInt64
    func delete(_ key: String) async throws
    /// The current values and then every change of `key`, or of every key when nil.
    func changes<M: BusMessage>(_ type: M.Type, key: String?) async throws -> KeyChanges<M>
}

extension KeyValueStore {
    public func changes<M: BusMessage>(_ type: M.Type) async throws -> KeyChanges<M> { try await changes(type, key: nil) }
}

/// A JetStream KV bucket behind the plugin API.
struct NatsKeyValueStore: KeyValueStore {
    let bucket: KeyValueBucket

    var name: String { bucket.name }

    func get<M: BusMessage>(_ type: M.Type, _ key: String) async throws -> (value: M, revision: UInt64)? {
        try await bucket.get(type, key)
    }

    func keys() async throws -> [String] { try await bucket.keys() }

    func put<M: BusMessage>(_ key: String, _ value: M) async throws -> UInt64 {
        try await bucket.put(key, message: value)
    }

    func create<M: BusMessage>(_ key: String, _ value: M) async throws -> UInt64 {
        try await KVConflict.mapping { try await bucket.create(key, message: value) }
    }

    func update<M: BusMessage>(_ key: String, _ value: M, expectedRevision: UInt64) async throws -> UInt64 {
        try await KVConflict.mapping { try await bucket.update(key, message: value, expectedRevision: expectedRevision) }
    }

    func delete(_ key: String) async throws { try await bucket.delete(key) }

    func changes<M: BusMessage>(_ type: M.Type, key: String?) async throws -> KeyChanges<M> {
        KeyChanges(try await bucket.watch(key ?? ">"))
    }
}

/// A compare-and-set lost: someone else wrote the key first. Plugins may catch it to reload and
/// retry; left uncaught it is transient (the input comes back with fresh state).
public struct KVConflict: Error, CustomStringConvertible {
    public let bucket: String
    public let key: String
    public var description: String { "compare-and-set conflict on \(bucket)/\(key)" }

    public init(bucket: String, key: String) {
        self.bucket = bucket
        self.key = key
    }

    static func mapping<T>(_ body: () async throws -> T) async throws -> T {
        do {
            return try await body()
        } catch BusError.conflict(let bucket, let key, _) {
            throw KVConflict(bucket: bucket, key: key)
        }
    }
}
