import CNats
import Foundation
import Messages

/// What provisioning did to one stream or bucket.
public struct ProvisionResult: Sendable, Equatable, CustomStringConvertible {
    public enum Kind: String, Sendable { case stream, bucket, consumer, layout }
    public enum Action: String, Sendable { case created, updated, unchanged }

    public let kind: Kind
    public let name: String
    public let action: Action
    /// For `updated`: each setting that differed, as `name: old -> new`.
    public let changes: [String]

    public var description: String {
        let detail = changes.isEmpty ? "" : " (" + changes.joined(separator: "; ") + ")"
        return "\(kind.rawValue) \(name): \(action.rawValue)\(detail)"
    }
}

extension BusConnection {
    /// Creates the streams, KV buckets and durables of the topology when missing and updates them
    /// when their settings differ, and records the layout (P, replicas, schema fingerprint) in
    /// `qt_cluster/layout`; running it twice changes nothing (DESIGN.md §3.1–3.3). A P other than
    /// the recorded one is refused unless `repartition` (the drain-and-migrate step).
    public func provision(replicas: Int = 1, partitions: Int = Partitioning.defaultCount, consumers: [ConsumerSpec] = [],
                          repartition: Bool = false, schemaFingerprint: String = SchemaFingerprint.value,
                          schemaDescriptor: Data = Data(base64Encoded: SchemaDescriptor.base64) ?? Data(), provisionedBy: String = "qt",
                          streams: [StreamSpec] = Topology.streams,
                          buckets: [BucketSpec] = Topology.buckets) async throws -> [ProvisionResult] {
        let partitioning = try Partitioning(count: partitions)
        var results: [ProvisionResult] = try await pool.run { [self] in
            var results: [ProvisionResult] = []
            for stream in streams {
                results.append(try provisionStream(stream, replicas: replicas))
            }
            for bucket in buckets {
                results.append(try provisionBucket(bucket, replicas: replicas))
            }
            return results
        }
        guard buckets.contains(where: { $0.name == Self.layoutBucket }) else { return results }
        let previous = try await readLayout()
        if let previous, Int(previous.layout.partitions) != partitions, !repartition {
            throw BusError.invalidArgument(
                "qt_cluster/layout records \(previous.layout.partitions) partitions, not \(partitions): changing P moves symbols "
                + "between partitions. Drain first, then run `qt streams provision --partitions \(partitions) --repartition` "
                + "(docs/operations.md, \"Changing the partition count\")")
        }
        var layout = ClusterLayout()
        layout.partitions = UInt32(partitions)
        layout.replicas = UInt32(replicas)
        layout.schemaFingerprint = schemaFingerprint
        layout.schemaDescriptor = schemaDescriptor
        var changes: [String] = []
        if let old = previous?.layout {
            if old.partitions != layout.partitions { changes.append("partitions: \(old.partitions) -> \(layout.partitions)") }
            if old.replicas != layout.replicas { changes.append("replicas: \(old.replicas) -> \(layout.replicas)") }
            if old.schemaFingerprint != layout.schemaFingerprint {
                changes.append("schema: \(old.schemaFingerprint.prefix(12)) -> \(layout.schemaFingerprint.prefix(12))")
            } else if old.schemaDescriptor != layout.schemaDescriptor {
                changes.append("schema descriptor recorded")
            }
        }
        let repartitioning = previous != nil && Int(previous!.layout.partitions) != partitions
        if previous == nil || !changes.isEmpty {
            layout.provisionedAtMs = Int64(Date().timeIntervalSince1970 * 1000)
            layout.provisionedBy = provisionedBy
            let bucket = try await keyValue(Self.layoutBucket)
            if let previous {
                _ = try await bucket.update(Self.layoutKey, message: layout, expectedRevision: previous.revision)
            } else {
                _ = try await bucket.create(Self.layoutKey, message: layout)
            }
        }
        results.append(ProvisionResult(kind: .layout, name: "\(Self.layoutBucket)/\(Self.layoutKey)",
                                       action: previous == nil ? .created : (changes.isEmpty ? .unchanged : .updated), changes: changes))
        usePartitioning(partitioning)
        if repartitioning {
            results += try await removePartitionDurables(keeping: consumers)
        }
        for consumer in consumers {
            var spec = consumer
            if repartitioning { spec.deliverNewOnly = true }
            let action = try await ensureConsumer(spec)
            results.append(ProvisionResult(kind: .consumer, name: "\(spec.stream)/\(spec.durable)", action: action, changes: []))
        }
        return results
    }

    /// After a change of P: durables of partitions that no longer exist (or that now cover other
    /// symbols) are deleted; the new ones start at the stream's end, since the fleet was drained.
    private func removePartitionDurables(keeping wanted: [ConsumerSpec]) async throws -> [ProvisionResult] {
        var removed: [ProvisionResult] = []
        let streams = Set(wanted.filter { $0.partition != nil }.map(\.stream))
        for stream in streams.sorted() {
            for consumer in try await streamInfo(stream).consumers where consumer.name.range(of: #"__p\d+$"#, options: .regularExpression) != nil {
                try await deleteConsumer(stream: stream, durable: consumer.name)
                removed.append(ProvisionResult(kind: .consumer, name: "\(stream)/\(consumer.name)", action: .updated,
                                               changes: ["deleted for the new partition count"]))
            }
        }
        return removed
    }

    private func provisionStream(_ spec: StreamSpec, replicas: Int) throws -> ProvisionResult {
        let wanted = DesiredStream(
            name: spec.name, subjects: spec.subjects, maxAgeNs: spec.maxAgeSeconds * Nanoseconds.perSecond, maxBytes: spec.maxBytes,
            duplicatesNs: min(Topology.duplicateWindowSeconds, spec.maxAgeSeconds) * Nanoseconds.perSecond,
            maxMsgsPerSubject: -1, replicas: replicas, discard: js_DiscardOld)
        return try ensureStream(wanted, kind: .stream, displayName: spec.name) {
            try wanted.withConfig { config in
                var info: UnsafeMutablePointer<jsStreamInfo>?
                var code = jsErrCode(rawValue: 0)
                try NatsCall.check(js_AddStream(&info, jetStream, &config, nil, &code), "create stream \(spec.name)", jetStreamCode: code)
                jsStreamInfo_Destroy(info)
            }
        }
    }

    private func provisionBucket(_ spec: BucketSpec, replicas: Int) throws -> ProvisionResult {
        let ttlNs = spec.ttlSeconds * Nanoseconds.perSecond
        let windowSeconds = spec.ttlSeconds > 0 ? min(Topology.duplicateWindowSeconds, spec.ttlSeconds) : Topology.duplicateWindowSeconds
        let wanted = DesiredStream(
            name: "KV_" + spec.name, subjects: ["$KV.\(spec.name).>"], maxAgeNs: ttlNs, maxBytes: spec.maxBytes,
            duplicatesNs: windowSeconds * Nanoseconds.perSecond, maxMsgsPerSubject: Int64(spec.history), replicas: replicas,
            discard: js_DiscardNew)  // what js_CreateKeyValue sets: KV semantics, not ours to change
        return try ensureStream(wanted, kind: .bucket, displayName: spec.name) {
            var config = kvConfig()
            kvConfig_Init(&config)
            let status: natsStatus = spec.name.withCString { bucket in
                config.Bucket = bucket
                config.History = UInt8(spec.history)
                config.TTL = ttlNs
                config.MaxBytes = spec.maxBytes
                config.Replicas = Int32(replicas)
                config.StorageType = js_FileStorage
                var kv: OpaquePointer?
                let status = js_CreateKeyValue(&kv, jetStream, &config)
                kvStore_Destroy(kv)
                return status
            }
            try NatsCall.check(status, "create KV bucket \(spec.name)")
        }
    }

    /// Compares the stream's live settings with `wanted`, updates what differs, or calls
    /// `create` when the stream does not exist.
    private func ensureStream(_ wanted: DesiredStream, kind: ProvisionResult.Kind, displayName: String,
                              create: () throws -> Void) throws -> ProvisionResult {
        var info: UnsafeMutablePointer<jsStreamInfo>?
        var code = jsErrCode(rawValue: 0)
        let status = js_GetStreamInfo(&info, jetStream, wanted.name, nil, &code)
        if status == NATS_NOT_FOUND {
            try create()
            return ProvisionResult(kind: kind, name: displayName, action: .created, changes: [])
        }
        try NatsCall.check(status, "stream info \(wanted.name)", jetStreamCode: code)
        defer { jsStreamInfo_Destroy(info) }
        guard let config = info?.pointee.Config else {
            throw BusError.nats(operation: "stream info \(wanted.name)", status: "no config", text: "", jetStreamCode: 0)
        }
        let changes = wanted.differences(from: config.pointee)
        if changes.isEmpty {
            return ProvisionResult(kind: kind, name: displayName, action: .unchanged, changes: [])
        }
        try wanted.apply(to: config)
        var updated: UnsafeMutablePointer<jsStreamInfo>?
        var updateCode = jsErrCode(rawValue: 0)
        try NatsCall.check(js_UpdateStream(&updated, jetStream, config, nil, &updateCode),
                           "update \(kind.rawValue) \(displayName) (\(changes.joined(separator: "; ")))",
                           jetStreamCode: updateCode)
        jsStreamInfo_Destroy(updated)
        return ProvisionResult(kind: kind, name: displayName, action: .updated, changes: changes)
    }
}

enum Nanoseconds {
    static let perSecond: Int64 = 1_000_000_000
    static let perMillisecond: Int64 = 1_000_000
}

/// The settings provisioning owns on a stream. Everything else is left as the server has it.
private struct DesiredStream {
    let name: String
    let subjects: [String]
    let maxAgeNs: Int64
    let maxBytes: Int64
    let duplicatesNs: Int64
    let maxMsgsPerSubject: Int64
    let replicas: Int
    let discard: jsDiscardPolicy

    func differences(from config: jsStreamConfig) -> [String] {
        var changes: [String] = []
        let current = (0..<Int(config.SubjectsLen)).compactMap { config.Subjects[$0].map { String(cString: $0) } }
        if Set(current) != Set(subjects) { changes.append("subjects: \(current) -> \(subjects)") }
        if config.MaxAge != maxAgeNs { changes.append("max_age: \(config.MaxAge / Nanoseconds.perSecond)s -> \(maxAgeNs / Nanoseconds.perSecond)s") }
        if config.MaxBytes != maxBytes { changes.append("max_bytes: \(config.MaxBytes) -> \(maxBytes)") }
        if config.Duplicates != duplicatesNs { changes.append("duplicate_window: \(config.Duplicates / Nanoseconds.perSecond)s -> \(duplicatesNs / Nanoseconds.perSecond)s") }
        if config.MaxMsgsPerSubject != maxMsgsPerSubject { changes.append("max_msgs_per_subject: \(config.MaxMsgsPerSubject) -> \(maxMsgsPerSubject)") }
        if config.Replicas != Int64(replicas) { changes.append("replicas: \(config.Replicas) -> \(replicas)") }
        if config.Discard != discard { changes.append("discard: \(config.Discard == js_DiscardOld ? "old" : "new") -> \(discard == js_DiscardOld ? "old" : "new")") }
        if config.Storage != js_FileStorage { changes.append("storage: memory -> file (needs a new stream)") }
        return changes
    }

    /// Writes the owned settings into a live config (whose other fields stay), for an update.
    func apply(to config: UnsafeMutablePointer<jsStreamConfig>) throws {
        config.pointee.MaxAge = maxAgeNs
        config.pointee.MaxBytes = maxBytes
        config.pointee.Duplicates = duplicatesNs
        config.pointee.MaxMsgsPerSubject = maxMsgsPerSubject
        config.pointee.Replicas = Int64(replicas)
        config.pointee.Discard = discard
        // Subjects: the config owns its strings and jsStreamInfo_Destroy frees them; swap in
        // copies allocated the same way so the destroy stays correct.
        let old = config.pointee.Subjects
        let oldCount = Int(config.pointee.SubjectsLen)
        let array = UnsafeMutablePointer<UnsafePointer<CChar>?>.allocate(capacity: subjects.count)
        for (index, subject) in subjects.enumerated() { array[index] = UnsafePointer(strdup(subject)) }
        config.pointee.Subjects = UnsafeMutablePointer(mutating: array)
        config.pointee.SubjectsLen = Int32(subjects.count)
        if let old {
            for index in 0..<oldCount { free(UnsafeMutableRawPointer(mutating: old[index])) }
            free(UnsafeMutableRawPointer(mutating: old))
        }
    }

    /// A fresh config for creating the stream; pointers live only inside `body`.
    func withConfig(_ body: (inout jsStreamConfig) throws -> Void) throws {
        var config = jsStreamConfig()
        jsStreamConfig_Init(&config)
        config.Storage = js_FileStorage
        config.Retention = js_LimitsPolicy
        config.Discard = discard
        config.MaxAge = maxAgeNs
        config.MaxBytes = maxBytes
        config.Duplicates = duplicatesNs
        config.MaxMsgsPerSubject = maxMsgsPerSubject
        config.Replicas = Int64(replicas)
        let cName = strdup(name)
        var cSubjects = subjects.map { UnsafePointer(strdup($0)) }
        defer {
            free(cName)
            cSubjects.forEach { free(UnsafeMutableRawPointer(mutating: $0)) }
        }
        config.Name = UnsafePointer(cName)
        try cSubjects.withUnsafeMutableBufferPointer { buffer in
            config.Subjects = UnsafeMutablePointer(mutating: buffer.baseAddress)
            config.SubjectsLen = Int32(buffer.count)
            try body(&config)
        }
    }
}
