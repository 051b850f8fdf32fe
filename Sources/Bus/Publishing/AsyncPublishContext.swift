import CNats
import Foundation

/// A JetStream context for asynchronous publishing. Its ack handler files each PubAck (or
/// error) under the message's `Nats-Msg-Id`; batches run one at a time on its own thread, since
/// `js_PublishAsyncComplete` waits for everything pending on the context.
final class AsyncPublishContext: @unchecked Sendable {
    private let context: OpaquePointer
    private let collector: AckCollector
    private let worker = BlockingWorker(name: "qt-bus-async-publish")
    private let waitMs: Int64
    private var destroyed = false

    init(connection: OpaquePointer, waitMs: Int64, maxPending: Int64 = 4096) throws {
        self.waitMs = waitMs
        self.collector = AckCollector()
        var opts = jsOptions()
        jsOptions_Init(&opts)
        opts.Wait = waitMs
        opts.PublishAsync.MaxPending = maxPending
        opts.PublishAsync.StallWait = waitMs
        opts.PublishAsync.AckHandler = asyncAckHandler
        opts.PublishAsync.AckHandlerClosure = Unmanaged.passUnretained(collector).toOpaque()
        var js: OpaquePointer?
        try NatsCall.check(natsConnection_JetStream(&js, connection, &opts), "natsConnection_JetStream(async)")
        self.context = js!
    }

    func publish(_ messages: [OutgoingMessage]) async throws -> [PublishAck] {
        try await worker.run { [self] in try publishBlocking(messages) }
    }

    private func publishBlocking(_ messages: [OutgoingMessage]) throws -> [PublishAck] {
        collector.begin(count: messages.count)
        defer { collector.clear() }
        for (index, message) in messages.enumerated() {
            var msg: OpaquePointer? = try NatsMessageBuilder.make(message)
            collector.register(msg!, index: index)
            let status = js_PublishMsgAsync(context, &msg, nil)
            if status != NATS_OK {
                natsMsg_Destroy(msg)
                throw NatsCall.error(status, "async publish \(message.subject) (id \(message.id))")
            }
        }
        var pubOpts = jsPubOptions()
        jsPubOptions_Init(&pubOpts)
        pubOpts.MaxWait = waitMs
        let status = js_PublishAsyncComplete(context, &pubOpts)
        if status == NATS_TIMEOUT {
            abandonPending()
        } else if status != NATS_OK {
            throw NatsCall.error(status, "js_PublishAsyncComplete")
        }
        var acks: [PublishAck] = []
        acks.reserveCapacity(messages.count)
        for (index, message) in messages.enumerated() {
            switch collector.result(at: index) {
            case .some(.success(let ack)): acks.append(ack)
            case .some(.failure(let error)): throw error
            case .none:
                throw BusError.timeout("PubAck for \(message.subject) (id \(message.id)) after \(waitMs) ms")
            }
        }
        return acks
    }

    /// PubAcks lost in a server restart would stay pending on the context and make every later
    /// batch wait out the full timeout: take them off it; their messages count as timed out
    /// (and are republished with the same ids by the caller).
    private func abandonPending() {
        var pending = natsMsgList()
        guard js_PublishAsyncGetPendingList(&pending, context) == NATS_OK else { return }
        for index in 0..<Int(pending.Count) {
            guard let msg = pending.Msgs[index] else { continue }
            collector.record(msg, .failure(.timeout("PubAck after \(waitMs) ms")))
        }
        natsMsgList_Destroy(&pending)
    }

    func destroy() {
        guard !destroyed else { return }
        destroyed = true
        worker.shutdown()
        jsCtx_Destroy(context)
    }
}

/// Results of async publishes, by position in the batch, filled from libnats' ack thread. The
/// ack handler receives the very natsMsg that was published, so its address finds the position;
/// an address is reused only after the handler has recorded and freed the message.
final class AckCollector: @unchecked Sendable {
    private let lock = NSLock()
    private var positions: [UInt: Int] = [:]
    private var results: [Result<PublishAck, BusError>?] = []

    func begin(count: Int) {
        lock.lock(); defer { lock.unlock() }
        results = Array(repeating: nil, count: count)
        positions.reserveCapacity(count)
    }

    func register(_ msg: OpaquePointer, index: Int) {
        lock.lock(); defer { lock.unlock() }
        positions[UInt(bitPattern: Int(bitPattern: UnsafeRawPointer(msg)))] = index
    }

    func record(_ msg: OpaquePointer, _ result: Result<PublishAck, BusError>) {
        lock.lock(); defer { lock.unlock() }
        let key = UInt(bitPattern: Int(bitPattern: UnsafeRawPointer(msg)))
        guard let index = positions.removeValue(forKey: key), index < results.count else { return }
        results[index] = result
    }

    private var lastStream = ""

    /// The PubAck's stream name; consecutive acks name the same stream, so the Swift string is
    /// reused instead of copied per message. Called on libnats' ack thread only.
    func streamName(_ name: UnsafePointer<CChar>?) -> String {
        guard let name else { return "" }
        let reuse = lastStream.withCString { strcmp($0, name) == 0 }
        if !reuse { lastStream = String(cString: name) }
        return lastStream
    }

    func result(at index: Int) -> Result<PublishAck, BusError>? {
        lock.lock(); defer { lock.unlock() }
        return index < results.count ? results[index] : nil
    }

    func clear() {
        lock.lock(); defer { lock.unlock() }
        results = []
        positions.removeAll(keepingCapacity: true)
    }
}

private let asyncAckHandler: jsPubAckHandler = { _, msg, ack, ackError, closure in
    defer { natsMsg_Destroy(msg) }
    guard let closure, let msg else { return }
    let collector = Unmanaged<AckCollector>.fromOpaque(closure).takeUnretainedValue()
    if let ack {
        collector.record(msg, .success(PublishAck(stream: collector.streamName(ack.pointee.Stream),
                                                  sequence: ack.pointee.Sequence,
                                                  duplicate: ack.pointee.Duplicate)))
    } else if let ackError {
        let subject = natsMsg_GetSubject(msg).map { String(cString: $0) } ?? "?"
        var idPointer: UnsafePointer<CChar>?
        _ = natsMsgHeader_Get(msg, HeaderName.messageID, &idPointer)
        let id = idPointer.map { String(cString: $0) } ?? "?"
        let status = ackError.pointee.Err
        let error: BusError = status == NATS_NO_RESPONDERS
            ? .noStream(subject: subject)
            : .nats(operation: "async publish \(subject) (id \(id))", status: NatsCall.statusText(status),
                    text: ackError.pointee.ErrText.map { String(cString: $0) } ?? "",
                    jetStreamCode: Int(ackError.pointee.ErrCode.rawValue))
        collector.record(msg, .failure(error))
    }
}
