import CNats
import Messages

extension BusConnection {
    /// Publishes one message and waits for JetStream's PubAck (on a worker thread).
    /// A duplicate id inside the window is reported as `duplicate`, not as an error.
    public func publish(_ message: OutgoingMessage, countingIn counter: BusOperationCounter? = nil) async throws -> PublishAck {
        try await loadPartitioningIfKeyed([message])
        counter?.add(.publish)
        return try await pool.run { [self] in try publishBlocking(message) }
    }

    /// Publishes many messages asynchronously and waits until every PubAck is in. Throws the
    /// first failure once all have been answered; re-publishing the same batch is safe (the ids
    /// deduplicate).
    public func publishBatch(_ messages: [OutgoingMessage], countingIn counter: BusOperationCounter? = nil) async throws -> [PublishAck] {
        try await loadPartitioningIfKeyed(messages)
        return try await send(messages, countingIn: counter).acks()
    }

    /// Sends every message now, in order, without waiting for the server; `acks()` on the ticket
    /// waits for the PubAcks. Batches sent one after another are stored in that order.
    /// Keyed subjects need the cluster layout loaded (`loadPartitioning`, or `provision`).
    public func send(_ messages: [OutgoingMessage], countingIn counter: BusOperationCounter? = nil) throws -> PublishTicket {
        if !messages.isEmpty { counter?.add(.publish) }
        return try asyncPublisher.send(messages, wireSubjects: messages.map { try wireSubject($0.subject) })
    }

    /// The blocking form of `publish`, for code already on a non-cooperative thread.
    public func publishBlocking(_ message: OutgoingMessage) throws -> PublishAck {
        let msg = try NatsMessageBuilder.make(message, subject: try wireSubject(message.subject))
        defer { natsMsg_Destroy(msg) }
        var ack: UnsafeMutablePointer<jsPubAck>?
        var code = jsErrCode(rawValue: 0)
        let status = js_PublishMsg(&ack, jetStream, msg, nil, &code)
        if status == NATS_NO_RESPONDERS { throw BusError.noStream(subject: message.subject) }
        try NatsCall.check(status, "publish \(message.subject) (id \(message.id))", jetStreamCode: code)
        guard let ack else { throw BusError.nats(operation: "publish \(message.subject)", status: "no PubAck", text: "", jetStreamCode: 0) }
        defer { jsPubAck_Destroy(ack) }
        return PublishAck(stream: String(cString: ack.pointee.Stream), sequence: ack.pointee.Sequence,
                          duplicate: ack.pointee.Duplicate)
    }
}

extension BusConnection {
    /// The subject a message travels on: a keyed subject gets its partition token (DESIGN.md §3.3).
    func wireSubject(_ logical: String) throws -> String {
        guard Topology.route(for: logical)?.keyed == true else { return logical }
        guard let partitioning else {
            throw BusError.notProvisioned("publishing \(logical) needs the partition count from qt_cluster/layout; "
                                          + "run `qt streams provision` (or load it with loadPartitioning())")
        }
        return partitioning.wireSubject(logical)
    }

    private func loadPartitioningIfKeyed(_ messages: [OutgoingMessage]) async throws {
        guard partitioning == nil, messages.contains(where: { Topology.route(for: $0.subject)?.keyed == true }) else { return }
        _ = try await loadPartitioning()
    }
}
