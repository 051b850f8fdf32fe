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
        try await publishWrite(.put, key, value)
    }

    /// Writes only when the key does not exist (or its last entry is a delete marker);
    /// `BusError.conflict` otherwise. As `kvStore_Create`: a compare-and-set against "no entry",
    /// and only when that fails, a look for a delete marker to write over.
    @discardableResult
    public func create(_ key: String, _ value: [UInt8]) async throws -> UInt64 {
        do {
            return try await publishWrite(.update(expectedRevision: 0), key, value)
        } catch BusError.conflict {
            guard let last = try await history(key).last, last.operation != .put else { throw BusError.conflict(bucket: name, key: key, expectedRevision: 0) }
            return try await publishWrite(.update(expectedRevision: last.revision), key, value)
        }
    }

    /// Compare-and-set: writes only when the key is at `expectedRevision`; `BusError.conflict` otherwise.
    @discardableResult
    public func update(_ key: String, _ value: [UInt8], expectedRevision: UInt64) async throws -> UInt64 {
        try await publishWrite(.update(expectedRevision: expectedRevision), key, value)
    }

    public func delete(_ key: String) async throws {
        _ = try await publishWrite(.delete, key, [])
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

    /// A put, compare-and-set or delete sent as the JetStream publish `kvStore_Put`, `_Update` and
    /// `_Delete` make, from the calling thread without waiting (`send`), its PubAck answered on
    /// libnats' ack thread: no worker thread sits in a blocking call, one thread hand-off fewer per
    /// write than `kvStore_*` on the pool (issue 20: a handler's writes are on the trade's path).
    private func publishWrite(_ operation: KeyValueWrite.Operation, _ key: String, _ value: [UInt8]) async throws -> UInt64 {
        guard Self.isValidKey(key) else {
            throw BusError.invalidArgument("KV key \"\(key)\" in \(name): expected letters, digits and -/_=. (not at either end: .)")
        }
        operations?.add(.kvWrite)
        let ticket = try connection.send([OutgoingMessage(KeyValueWrite(bucket: name, key: key, operation: operation), value: value)])
        do {
            return try await ticket.acks()[0].sequence
        } catch let error as BusError {
            guard case .update(let expected) = operation, Self.isWrongLastSequence(error) else { throw error }
            throw BusError.conflict(bucket: name, key: key, expectedRevision: expected)
        }
    }

    /// The server's answer to a compare-and-set that lost (JetStream errors 10071 and 10164).
    private static func isWrongLastSequence(_ error: BusError) -> Bool {
        guard case .nats(_, _, let text, let code) = error else { return false }
        return code == 10071 || code == 10164 || text.contains("wrong last sequence")
    }

    /// libnats' `validKey`: what a bucket's subject can carry as one key.
    static func isValidKey(_ key: String) -> Bool {
        guard !key.isEmpty, key.first != ".", key.last != "." else { return false }
        return key.utf8.allSatisfy { byte in
            switch byte {
            case UInt8(ascii: "a")...UInt8(ascii: "z"), UInt8(ascii: "A")...UInt8(ascii: "Z"), UInt8(ascii: "0")...UInt8(ascii: "9"),
                 UInt8(ascii: "-"), UInt8(ascii: "/"), UInt8(ascii: "_"), UInt8(ascii: "="), UInt8(ascii: "."):
                return true
            default:
                return false
            }
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
