import CNats
import Foundation
import Messages

/// One message fetched from a durable consumer. Owns its natsMsg until it is released.
///
/// `ack`, `nak`, `inProgress` and `term` publish a short reply on the message's ack subject
/// through the connection and return without waiting for the server, so they are safe to call
/// from async code; a lost ack means a redelivery, which every consumer must tolerate anyway
/// (DESIGN.md §3.3). They are published directly rather than through `natsMsg_Ack`: libnats 3.4.1
/// reaches into the message's JetStream subscription there, and a standing pull's messages arrive
/// on a plain subscription (DESIGN.md §11). After the connection is closed they throw
/// `BusError.closed`, and the server redelivers.
public final class InboundMessage: @unchecked Sendable {
    private let msg: OpaquePointer
    /// The natsConnection the acks go out on, while it is open.
    private let connection: ConnectionLiveness
    /// The logical subject (`qt.market.kline.BTCUSDT`): a keyed subject's partition token removed.
    public let subject: String
    /// The subject as stored, with the partition token of a keyed subject.
    public let wireSubject: String
    public let stream: String
    public let consumer: String
    public let streamSequence: UInt64
    /// 1 on first delivery; n after n−1 redeliveries.
    public let deliveryCount: UInt64
    /// Messages still pending for the consumer after this one.
    public let pending: UInt64
    public let timestampNs: Int64

    /// `stream` and `consumer` are the subscription's own (every message of it has the same),
    /// which spares two string copies per message.
    init(taking msg: OpaquePointer, ackingOn connection: ConnectionLiveness, stream knownStream: String? = nil, consumer knownConsumer: String? = nil) {
        self.msg = msg
        self.connection = connection
        self.wireSubject = natsMsg_GetSubject(msg).map { String(cString: $0) } ?? ""
        self.subject = Partitioning.logicalSubject(wireSubject)
        if let reply = natsMsg_GetReply(msg), let parsed = AckSubject.parse(reply), let knownStream, let knownConsumer {
            stream = knownStream
            consumer = knownConsumer
            (deliveryCount, streamSequence, timestampNs, pending) = parsed
            return
        }
        var meta: UnsafeMutablePointer<jsMsgMetaData>?
        if natsMsg_GetMetaData(&meta, msg) == NATS_OK, let meta {
            stream = knownStream ?? meta.pointee.Stream.map { String(cString: $0) } ?? ""
            consumer = knownConsumer ?? meta.pointee.Consumer.map { String(cString: $0) } ?? ""
            streamSequence = meta.pointee.Sequence.Stream
            deliveryCount = meta.pointee.NumDelivered
            pending = meta.pointee.NumPending
            timestampNs = meta.pointee.Timestamp
            jsMsgMetaData_Destroy(meta)
        } else {
            stream = ""; consumer = ""; streamSequence = 0; deliveryCount = 0; pending = 0; timestampNs = 0
        }
    }

    deinit { natsMsg_Destroy(msg) }

    public var payload: [UInt8] {
        let length = Int(natsMsg_GetDataLength(msg))
        guard length > 0, let data = natsMsg_GetData(msg) else { return [] }
        return data.withMemoryRebound(to: UInt8.self, capacity: length) { Array(UnsafeBufferPointer(start: $0, count: length)) }
    }

    /// The payload without copying it, valid only inside `body` (decoding reads it in place).
    public func withPayload<T>(_ body: (Data) throws -> T) rethrows -> T {
        let length = Int(natsMsg_GetDataLength(msg))
        guard length > 0, let data = natsMsg_GetData(msg) else { return try body(Data()) }
        return try body(Data(bytesNoCopy: UnsafeMutableRawPointer(mutating: data), count: length, deallocator: .none))
    }

    public func header(_ name: String) -> String? {
        var value: UnsafePointer<CChar>?
        guard natsMsgHeader_Get(msg, name, &value) == NATS_OK, let value else { return nil }
        return String(cString: value)
    }

    public var headers: [String: String] {
        var keys: UnsafeMutablePointer<UnsafePointer<CChar>?>?
        var count: Int32 = 0
        guard natsMsgHeader_Keys(msg, &keys, &count) == NATS_OK, let keys else { return [:] }
        defer { free(keys) }
        var result: [String: String] = [:]
        for index in 0..<Int(count) {
            guard let key = keys[index].map({ String(cString: $0) }) else { continue }
            result[key] = header(key)
        }
        return result
    }

    public func ack() throws { try reply("+ACK", "ack") }

    /// Redeliver after `delayMs` milliseconds.
    public func nak(delayMs: Int64) throws {
        // The server reads the delay in nanoseconds.
        try reply(delayMs > 0 ? "-NAK {\"delay\":\(delayMs * 1_000_000)}" : "-NAK", "nak")
    }

    /// Resets the AckWait timer for a handler that needs longer.
    public func inProgress() throws { try reply("+WPI", "in-progress") }

    /// Never redeliver: a permanent failure (R2).
    public func term() throws { try reply("+TERM", "term") }

    private func reply(_ body: String, _ operation: String) throws {
        guard let subject = natsMsg_GetReply(msg) else {
            throw BusError.invalidArgument("\(operation) \(self.subject) #\(streamSequence): the message has no ack subject (not from a consumer)")
        }
        let what = "\(operation) \(self.subject) #\(streamSequence)"
        guard let status = connection.whileOpen({ natsConnection_PublishString($0, subject, body) }) else {
            throw BusError.closed("\(what): the connection is closed")
        }
        try NatsCall.check(status, what)
    }
}

/// Reads delivery count, stream sequence, timestamp and pending from a JetStream ack subject
/// in place: `$JS.ACK.<stream>.<consumer>.<delivered>.<sseq>.<cseq>.<ns>.<pending>` (or the
/// 12-token form with domain and account hash). libnats' `natsMsg_GetMetaData` does the same
/// with five allocations per message.
enum AckSubject {
    static func parse(_ reply: UnsafePointer<CChar>) -> (delivered: UInt64, streamSequence: UInt64, timestampNs: Int64, pending: UInt64)? {
        guard reply[0] == CChar(UInt8(ascii: "$")) else { return nil }
        return withUnsafeTemporaryAllocation(of: UInt64.self, capacity: 16) { numbers in
            var tokenCount = 0
            var current: UInt64 = 0
            var numeric = true
            var index = 0
            while true {
                let byte = UInt8(bitPattern: reply[index])
                if byte == 0 || byte == UInt8(ascii: ".") {
                    guard tokenCount < numbers.count else { return nil }
                    numbers[tokenCount] = numeric ? current : UInt64.max
                    tokenCount += 1
                    current = 0
                    numeric = true
                    if byte == 0 { break }
                } else if numeric, byte >= 48, byte <= 57 {
                    let (product, overflow) = current.multipliedReportingOverflow(by: 10)
                    if overflow { numeric = false } else { current = product + UInt64(byte - 48) }
                } else {
                    numeric = false
                }
                index += 1
            }
            guard tokenCount == 9 || tokenCount >= 11 else { return nil }
            let base = tokenCount == 9 ? 4 : 6
            guard base + 4 < tokenCount else { return nil }
            for offset in 0...4 where numbers[base + offset] == UInt64.max { return nil }
            return (numbers[base], numbers[base + 1], Int64(truncatingIfNeeded: numbers[base + 3]), numbers[base + 4])
        }
    }
}
