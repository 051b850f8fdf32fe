import CNats
import Foundation
import Messages
import SwiftProtobuf

/// One entry of a KV bucket as the server returned it.
public struct KeyValueEntry: Sendable, Equatable {
    public enum Operation: String, Sendable { case put, delete, purge }

    public let bucket: String
    public let key: String
    public let value: [UInt8]
    public let revision: UInt64
    public let operation: Operation
    public let createdNs: Int64

    init(_ entry: OpaquePointer) {
        bucket = kvEntry_Bucket(entry).map { String(cString: $0) } ?? ""
        key = kvEntry_Key(entry).map { String(cString: $0) } ?? ""
        let length = Int(kvEntry_ValueLen(entry))
        if length > 0, let data = kvEntry_Value(entry) {
            value = Array(UnsafeRawBufferPointer(start: data, count: length))
        } else {
            value = []
        }
        revision = kvEntry_Revision(entry)
        switch kvEntry_Operation(entry) {
        case kvOp_Delete: operation = .delete
        case kvOp_Purge: operation = .purge
        default: operation = .put
        }
        createdNs = kvEntry_Created(entry)
    }

    /// The value decoded as `M`, or nil for delete and purge markers.
    public func decoded<M: BusMessage>(as type: M.Type) throws -> M? {
        guard operation == .put else { return nil }
        return try M(serializedBytes: value)
    }
}

extension BusConnection {
    /// A handle on an existing bucket (see `provision`); its reads and writes go to `counter`.
    public func keyValue(_ bucket: String, countingIn counter: BusOperationCounter? = nil) async throws -> KeyValueBucket {
        try await pool.run { [self] in
            var kv: OpaquePointer?
            let status = js_KeyValue(&kv, jetStream, bucket)
            if status == NATS_NOT_FOUND { throw BusError.notFound("KV bucket \(bucket): run `qt streams provision`") }
            try NatsCall.check(status, "open KV bucket \(bucket)")
            let handle = KeyValueBucket(name: bucket, store: kv!, connection: self, operations: counter)
            onClose { handle.destroy() }
            return handle
        }
    }
}

/// get, put, create, update (compare-and-set), delete, keys and watch on one bucket. Blocking
/// libnats calls run on the connection's workers.
public final class KeyValueBucket: @unchecked Sendable {
    public let name: String
    let store: OpaquePointer
    unowned let connection: BusConnection
    /// Where this handle's round trips are counted (a plugin's), if anywhere.
    let operations: BusOperationCounter?
    private let lock = NSLock()
    private var destroyed = false

    init(name: String, store: OpaquePointer, connection: BusConnection, operations: BusOperationCounter? = nil) {
        self.name = name
        self.store = store
        self.connection = connection
        self.operations = operations
    }

    func destroy() {
        lock.lock(); defer { lock.unlock() }
        guard !destroyed else { return }
        destroyed = true
        kvStore_Destroy(store)
    }

    /// The latest entry, or nil when the key does not exist or was deleted.
    public func get(_ key: String) async throws -> KeyValueEntry? {
        operations?.add(.kvRead)
        return try await connection.pool.run { [self] in
            var entry: OpaquePointer?
            let status = kvStore_Get(&entry, store, key)
            if status == NATS_NOT_FOUND { return nil }
            try NatsCall.check(status, "KV get \(name)/\(key)")
            defer { kvEntry_Destroy(entry) }
            return KeyValueEntry(entry!)
        }
    }

    @discardableResult
    public func put(_ key: String, _ value: [UInt8]) async throws -> UInt64 {
        try await write("put", key) { [self] revision in
            value.withUnsafeBytes { kvStore_Put(&revision, store, key, $0.baseAddress, Int32($0.count)) }
        }
    }

    /// Writes only when the key does not exist; `BusError.conflict` otherwise.
    @discardableResult
    public func create(_ key: String, _ value: [UInt8]) async throws -> UInt64 {
        try await write("create", key, expected: 0) { [self] revision in
            value.withUnsafeBytes { kvStore_Create(&revision, store, key, $0.baseAddress, Int32($0.count)) }
        }
    }

    /// Compare-and-set: writes only when the key is at `expectedRevision`; `BusError.conflict` otherwise.
    @discardableResult
    public func update(_ key: String, _ value: [UInt8], expectedRevision: UInt64) async throws -> UInt64 {
        try await write("update", key, expected: expectedRevision) { [self] revision in
            value.withUnsafeBytes { kvStore_Update(&revision, store, key, $0.baseAddress, Int32($0.count), expectedRevision) }
        }
    }

    public func delete(_ key: String) async throws {
        operations?.add(.kvWrite)
        try await connection.pool.run { [self] in
            try NatsCall.check(kvStore_Delete(store, key), "KV delete \(name)/\(key)")
        }
    }

    /// The keys with a current value (deleted keys excluded).
    public func keys() async throws -> [String] {
        operations?.add(.kvRead)
        return try await connection.pool.run { [self] in
            var list = kvKeysList()
            let status = kvStore_Keys(&list, store, nil)
            if status == NATS_NOT_FOUND { return [] }
            try NatsCall.check(status, "KV keys \(name)")
            defer { kvKeysList_Destroy(&list) }
            return (0..<Int(list.Count)).compactMap { list.Keys[$0].map { String(cString: $0) } }
        }
    }

    /// Every revision the bucket still holds for `key` (up to its history), oldest first, delete
    /// markers included; empty when the key never existed.
    public func history(_ key: String) async throws -> [KeyValueEntry] {
        operations?.add(.kvRead)
        return try await connection.pool.run { [self] in
            var list = kvEntryList()
            let status = kvStore_History(&list, store, key, nil)
            if status == NATS_NOT_FOUND { return [] }
            try NatsCall.check(status, "KV history \(name)/\(key)")
            defer { kvEntryList_Destroy(&list) }
            return (0..<Int(list.Count)).compactMap { list.Entries[$0].map { KeyValueEntry($0) } }
        }
    }

    private func write(_ operation: String, _ key: String, expected: UInt64? = nil,
                       _ call: @escaping @Sendable (inout UInt64) -> natsStatus) async throws -> UInt64 {
        operations?.add(.kvWrite)
        return try await connection.pool.run { [self] in
            var revision: UInt64 = 0
            let status = call(&revision)
            if status != NATS_OK, let expected, NatsCall.lastErrorText().contains("wrong last sequence") {
                throw BusError.conflict(bucket: name, key: key, expectedRevision: expected)
            }
            try NatsCall.check(status, "KV \(operation) \(name)/\(key)")
            return revision
        }
    }
}

extension KeyValueBucket {
    /// The value type registered for this bucket and key must be `M` (R1 holds for KV too).
    private func checkType<M: BusMessage>(_ type: M.Type, key: String) throws {
        guard let spec = Topology.bucket(named: name) else { return }
        let expected = spec.valueType(forKey: key)
        guard expected == M.self else {
            throw BusError.wrongType(subject: "\(name)/\(key)", expected: expected.protoMessageName, actual: M.protoMessageName)
        }
    }

    public func get<M: BusMessage>(_ type: M.Type, _ key: String) async throws -> (value: M, revision: UInt64)? {
        try checkType(type, key: key)
        guard let entry = try await get(key), let value = try entry.decoded(as: type) else { return nil }
        return (value, entry.revision)
    }

    @discardableResult
    public func put<M: BusMessage>(_ key: String, message: M) async throws -> UInt64 {
        try checkType(M.self, key: key)
        return try await put(key, try message.serializedBytes())
    }

    @discardableResult
    public func create<M: BusMessage>(_ key: String, message: M) async throws -> UInt64 {
        try checkType(M.self, key: key)
        return try await create(key, try message.serializedBytes())
    }

    @discardableResult
    public func update<M: BusMessage>(_ key: String, message: M, expectedRevision: UInt64) async throws -> UInt64 {
        try checkType(M.self, key: key)
        return try await update(key, try message.serializedBytes(), expectedRevision: expectedRevision)
    }
}
