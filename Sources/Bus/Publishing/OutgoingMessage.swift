import Messages
import SwiftProtobuf

/// The header names of DESIGN.md §3.3. The body is authoritative; headers mirror it for tools.
public enum HeaderName {
    public static let messageID = "Nats-Msg-Id"
    public static let type = "Qt-Type"
    public static let trace = "Qt-Trace"
    public static let cause = "Qt-Cause"
    public static let producer = "Qt-Producer"
}

/// The input an output was caused by: its id becomes `cause_id`, its trace is inherited.
public struct Cause: Sendable, Equatable {
    public let id: String
    public let traceID: String

    public init(id: String, traceID: String) {
        self.id = id
        self.traceID = traceID
    }
}

/// A KV write sent as one message of a publish batch: it travels with the batch and is
/// acknowledged with it, so it costs no round trip of its own (issue 20). A KV write is a
/// JetStream publish on `$KV.<bucket>.<key>`; the headers say what kind.
public struct KeyValueWrite: Sendable, Equatable {
    public enum Operation: Sendable, Equatable {
        /// Stored whatever the key holds (`kvStore_Put`).
        case put
        /// Stored only while the key is still at this revision (`Nats-Expected-Last-Subject-Sequence`).
        case update(expectedRevision: UInt64)
        /// A delete marker (`KV-Operation: DEL`), as `kvStore_Delete` writes it.
        case delete
    }

    public let bucket: String
    public let key: String
    public let operation: Operation

    public init(bucket: String, key: String, operation: Operation) {
        self.bucket = bucket
        self.key = key
        self.operation = operation
    }

    /// The subject the bucket's stream stores the key under.
    public var subject: String { "$KV.\(bucket).\(key)" }
}

/// A message ready to publish: checked against the topology, `Meta` filled, serialized once.
public struct OutgoingMessage: Sendable {
    public let subject: String
    public let typeName: String
    public let id: String
    public let traceID: String
    public let causeID: String
    public let producer: String
    public let payload: [UInt8]
    /// Set when this is a KV write riding in a batch: no Qt headers, no message id (a value is
    /// not deduplicated), only the write's own header.
    public let keyValueWrite: KeyValueWrite?

    /// Fills `meta` (id, trace, cause, producer; `event_time_ms` stays as the caller set it) and
    /// checks that `subject` carries `M` (R1). Every producer stamps messages through here.
    /// `eventTimeMs` fills `meta.event_time_ms` when the message has none (the host passes the
    /// input's event time), without another copy of the message.
    public init<M: BusMessage>(_ message: M, subject: String, id: String, producer: String, cause: Cause? = nil,
                               eventTimeMs: Int64? = nil) throws {
        guard !id.isEmpty else { throw BusError.invalidArgument("message id is empty for \(subject)") }
        guard let route = Topology.route(for: subject) else { throw BusError.unknownSubject(subject) }
        guard route.messageType == M.self else {
            throw BusError.wrongType(subject: subject, expected: route.typeName, actual: M.protoMessageName)
        }
        var stamped = message
        if let eventTimeMs, stamped.meta.eventTimeMs == 0 { stamped.meta.eventTimeMs = eventTimeMs }
        stamped.meta.id = id
        stamped.meta.producer = producer
        if let cause {
            stamped.meta.causeID = cause.id
            stamped.meta.traceID = cause.traceID.isEmpty ? cause.id : cause.traceID
        } else if stamped.meta.traceID.isEmpty {
            stamped.meta.traceID = id
        }
        self.subject = subject
        self.typeName = M.protoMessageName
        self.id = id
        self.traceID = stamped.meta.traceID
        self.causeID = stamped.meta.causeID
        self.producer = producer
        self.payload = try stamped.serializedBytes()
        self.keyValueWrite = nil
    }

    /// `write` of `value`'s bytes (nothing for a delete), to send in a batch of messages.
    public init(_ write: KeyValueWrite, value: [UInt8]) {
        self.subject = write.subject
        self.typeName = ""
        self.id = ""
        self.traceID = ""
        self.causeID = ""
        self.producer = ""
        self.payload = write.operation == .delete ? [] : value
        self.keyValueWrite = write
    }

    /// Raw bytes under a given type name, for tests and tools that must send what a broken or
    /// foreign producer would (the DLQ path). Skips the topology check on purpose.
    public init(unchecked subject: String, typeName: String, id: String, payload: [UInt8], producer: String = "raw") {
        self.subject = subject
        self.typeName = typeName
        self.id = id
        self.traceID = id
        self.causeID = ""
        self.producer = producer
        self.payload = payload
        self.keyValueWrite = nil
    }

    /// `Qt-Cause` is left out when there is no cause (timers, polls): libnats mangles a
    /// header with an empty value into the next one.
    var headers: [(String, String)] {
        var headers = [(HeaderName.messageID, id)]
        if !typeName.isEmpty { headers.append((HeaderName.type, typeName)) }  // empty: a foreign producer's message without one
        headers.append((HeaderName.trace, traceID))
        if !causeID.isEmpty { headers.append((HeaderName.cause, causeID)) }
        headers.append((HeaderName.producer, producer))
        return headers
    }
}

/// JetStream's answer to one publish.
public struct PublishAck: Sendable, Equatable {
    public let stream: String
    public let sequence: UInt64
    /// The id was already in the stream's duplicate window: nothing was stored.
    public let duplicate: Bool
}
