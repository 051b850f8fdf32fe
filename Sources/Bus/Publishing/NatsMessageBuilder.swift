import CNats

enum NatsMessageBuilder {
    /// A natsMsg with the payload and the Qt headers; the caller owns it.
    /// `subject` is the wire subject (with a keyed subject's partition token).
    static func make(_ message: OutgoingMessage, subject: String) throws -> OpaquePointer {
        var msg: OpaquePointer?
        let status = message.payload.withUnsafeBufferPointer { bytes in
            bytes.withMemoryRebound(to: CChar.self) { chars in
                natsMsg_Create(&msg, subject, nil, chars.baseAddress, Int32(chars.count))
            }
        }
        try NatsCall.check(status, "natsMsg_Create(\(subject))")
        // Set one by one rather than through `message.headers`: no array per message.
        func set(_ key: String, _ value: String) throws {
            let headerStatus = natsMsgHeader_Set(msg, key, value)
            if headerStatus != NATS_OK {
                natsMsg_Destroy(msg)
                throw NatsCall.error(headerStatus, "natsMsgHeader_Set(\(key))")
            }
        }
        if let write = message.keyValueWrite {
            switch write.operation {
            case .put: break
            case .update(let revision): try set("Nats-Expected-Last-Subject-Sequence", String(revision))
            case .delete: try set("KV-Operation", "DEL")
            }
            return msg!
        }
        try set(HeaderName.messageID, message.id)
        try set(HeaderName.type, message.typeName)
        try set(HeaderName.trace, message.traceID)
        if !message.causeID.isEmpty { try set(HeaderName.cause, message.causeID) }
        try set(HeaderName.producer, message.producer)
        return msg!
    }
}
