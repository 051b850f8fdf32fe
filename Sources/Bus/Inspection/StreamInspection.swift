import CNats
import Foundation
import Messages

public struct ReplicaSummary: Sendable, Equatable {
    public let name: String
    public let current: Bool
    public let offline: Bool
    public let lag: UInt64
}

public struct ClusterSummary: Sendable, Equatable {
    public let name: String
    public let leader: String
    public let replicas: [ReplicaSummary]
}

public struct ConsumerSummary: Sendable, Equatable {
    public let name: String
    public let filterSubject: String
    public let ackWaitMs: Int64
    public let maxAckPending: Int64
    public let numPending: UInt64
    public let numAckPending: Int64
    public let numRedelivered: Int64
    public let numWaiting: Int64
    public let deliveredStreamSequence: UInt64
    public let ackFloorStreamSequence: UInt64
}

public struct StreamSummary: Sendable, Equatable {
    public let name: String
    public let subjects: [String]
    public let messages: UInt64
    public let bytes: UInt64
    /// The stream's byte limit; -1 when it has none.
    public let maxBytes: Int64
    public let firstSequence: UInt64
    public let lastSequence: UInt64
    public let consumerCount: Int64
    public let replicas: Int64
    public let maxAgeSeconds: Int64
    public let duplicateWindowSeconds: Int64
    public let cluster: ClusterSummary?
    public var consumers: [ConsumerSummary]

    init(_ info: UnsafeMutablePointer<jsStreamInfo>) {
        let config = info.pointee.Config.pointee
        name = config.Name.map { String(cString: $0) } ?? ""
        subjects = (0..<Int(config.SubjectsLen)).compactMap { config.Subjects[$0].map { String(cString: $0) } }
        messages = info.pointee.State.Msgs
        bytes = info.pointee.State.Bytes
        maxBytes = config.MaxBytes
        firstSequence = info.pointee.State.FirstSeq
        lastSequence = info.pointee.State.LastSeq
        consumerCount = info.pointee.State.Consumers
        replicas = config.Replicas
        maxAgeSeconds = config.MaxAge / Nanoseconds.perSecond
        duplicateWindowSeconds = config.Duplicates / Nanoseconds.perSecond
        cluster = info.pointee.Cluster.map { ClusterSummary($0.pointee) }
        consumers = []
    }
}

extension ClusterSummary {
    init(_ cluster: jsClusterInfo) {
        name = cluster.Name.map { String(cString: $0) } ?? ""
        leader = cluster.Leader.map { String(cString: $0) } ?? ""
        replicas = (0..<Int(cluster.ReplicasLen)).compactMap { index in
            cluster.Replicas[index].map { peer in
                ReplicaSummary(name: peer.pointee.Name.map { String(cString: $0) } ?? "", current: peer.pointee.Current,
                               offline: peer.pointee.Offline, lag: peer.pointee.Lag)
            }
        }
    }
}

extension ConsumerSummary {
    init(_ info: jsConsumerInfo) {
        name = info.Name.map { String(cString: $0) } ?? ""
        filterSubject = info.Config?.pointee.FilterSubject.map { String(cString: $0) } ?? ""
        ackWaitMs = (info.Config?.pointee.AckWait ?? 0) / Nanoseconds.perMillisecond
        maxAckPending = info.Config?.pointee.MaxAckPending ?? 0
        numPending = info.NumPending
        numAckPending = info.NumAckPending
        numRedelivered = info.NumRedelivered
        numWaiting = info.NumWaiting
        deliveredStreamSequence = info.Delivered.Stream
        ackFloorStreamSequence = info.AckFloor.Stream
    }
}

extension BusConnection {
    /// Every stream on the server (KV buckets included, as `KV_<bucket>`), without consumers.
    public func streams() async throws -> [StreamSummary] {
        try await pool.run { [self] in
            var list: UnsafeMutablePointer<jsStreamInfoList>?
            var code = jsErrCode(rawValue: 0)
            let status = js_Streams(&list, jetStream, nil, &code)
            if status == NATS_NOT_FOUND { return [] }
            try NatsCall.check(status, "list streams", jetStreamCode: code)
            defer { jsStreamInfoList_Destroy(list) }
            guard let list else { return [] }
            return (0..<Int(list.pointee.Count)).compactMap { list.pointee.List[$0].map(StreamSummary.init) }
                .sorted { $0.name < $1.name }
        }
    }

    /// One stream with its consumers; `BusError.notFound` naming the stream when it does not exist.
    public func streamInfo(_ name: String) async throws -> StreamSummary {
        try await pool.run { [self] in
            var info: UnsafeMutablePointer<jsStreamInfo>?
            var code = jsErrCode(rawValue: 0)
            let status = js_GetStreamInfo(&info, jetStream, name, nil, &code)
            if status == NATS_NOT_FOUND { throw BusError.notFound("stream \(name)") }
            try NatsCall.check(status, "stream info \(name)", jetStreamCode: code)
            defer { jsStreamInfo_Destroy(info) }
            var summary = StreamSummary(info!)

            var consumers: UnsafeMutablePointer<jsConsumerInfoList>?
            let listStatus = js_Consumers(&consumers, jetStream, name, nil, &code)
            if listStatus == NATS_OK, let consumers {
                defer { jsConsumerInfoList_Destroy(consumers) }
                summary.consumers = (0..<Int(consumers.pointee.Count)).compactMap {
                    consumers.pointee.List[$0].map { ConsumerSummary($0.pointee) }
                }.sorted { $0.name < $1.name }
            } else if listStatus != NATS_NOT_FOUND {
                try NatsCall.check(listStatus, "list consumers of \(name)", jetStreamCode: code)
            }
            return summary
        }
    }

    /// The consumer's live state (pending, ack pending, redelivered).
    public func consumerInfo(stream: String, durable: String) async throws -> ConsumerSummary {
        try await pool.run { [self] in
            var info: UnsafeMutablePointer<jsConsumerInfo>?
            var code = jsErrCode(rawValue: 0)
            let status = js_GetConsumerInfo(&info, jetStream, stream, durable, nil, &code)
            if status == NATS_NOT_FOUND { throw BusError.notFound("consumer \(stream)/\(durable)") }
            try NatsCall.check(status, "consumer info \(stream)/\(durable)", jetStreamCode: code)
            defer { jsConsumerInfo_Destroy(info) }
            return ConsumerSummary(info!.pointee)
        }
    }

    public func deleteConsumer(stream: String, durable: String) async throws {
        try await pool.run { [self] in
            var code = jsErrCode(rawValue: 0)
            let status = js_DeleteConsumer(jetStream, stream, durable, nil, &code)
            if status == NATS_NOT_FOUND { return }
            try NatsCall.check(status, "delete consumer \(stream)/\(durable)", jetStreamCode: code)
        }
    }

    /// The one stream whose subjects overlap `subject` (a subject or a pattern): the topology's
    /// answer when it knows the subject, else the server's streams (so subjects outside the
    /// built-in topology work too). A pattern spanning several streams is an error naming them.
    public func streamOwning(_ subject: String) async throws -> String {
        if let route = Topology.route(forFilter: subject) { return route.stream }
        let pattern = SubjectPattern(subject)
        let owners = try await streams().filter { stream in
            stream.subjects.contains { pattern.overlaps(SubjectPattern($0)) }
        }
        guard let owner = owners.first else { throw BusError.noStream(subject: subject) }
        guard owners.count == 1 else {
            throw BusError.invalidArgument("\(subject) spans streams \(owners.map(\.name).joined(separator: ", ")): narrow it to one")
        }
        return owner.name
    }
}

extension BusConnection {
    /// Removes every message of a stream (its consumers stay). For benchmarks and tests that
    /// need each measurement to start from the same empty store.
    public func purge(_ stream: String) async throws {
        try await pool.run { [self] in
            var code = jsErrCode(rawValue: 0)
            try NatsCall.check(js_PurgeStream(jetStream, stream, nil, &code), "purge stream \(stream)", jetStreamCode: code)
        }
    }
}
