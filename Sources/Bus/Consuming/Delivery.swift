import Messages

/// A decoded message from a durable consumer, with what the handler needs to ack it and to
/// stamp its outputs (`cause`, `outputID`).
public struct Delivery<M: BusMessage>: @unchecked Sendable {
    public let message: M
    public let raw: InboundMessage

    public var subject: String { raw.subject }
    public var streamSequence: UInt64 { raw.streamSequence }
    public var deliveryCount: UInt64 { raw.deliveryCount }

    /// The cause an output of this message carries (DESIGN.md §3.3).
    public var cause: Cause {
        Cause(id: message.meta.id.isEmpty ? (raw.header(HeaderName.messageID) ?? "") : message.meta.id,
              traceID: message.meta.traceID)
    }

    public func ack() throws { try raw.ack() }
    public func nak(delayMs: Int64) throws { try raw.nak(delayMs: delayMs) }
    public func inProgress() throws { try raw.inProgress() }
    public func term() throws { try raw.term() }
}
