import CNats
import Foundation

/// A JetStream context for asynchronous publishing. Sending never blocks on the server (each
/// message goes into libnats' buffer); PubAcks are matched to their messages on libnats' ack
/// thread, and a batch's waiter is resumed when its last PubAck is in. A caller can send batch N,
/// go on with other work, and wait for N's PubAcks later.
final class AsyncPublishContext: @unchecked Sendable {
    private let context: OpaquePointer
    private let tracker = PendingTracker()
    private let waitMs: Int64
    private let lock = NSLock()
    private var destroyed = false

    init(connection: OpaquePointer, waitMs: Int64, maxPending: Int64 = 1_000_000) throws {
        self.waitMs = waitMs
        var opts = jsOptions()
        jsOptions_Init(&opts)
        opts.Wait = waitMs
        opts.PublishAsync.MaxPending = maxPending
        opts.PublishAsync.StallWait = waitMs
        opts.PublishAsync.AckHandler = asyncAckHandler
        opts.PublishAsync.AckHandlerClosure = Unmanaged.passUnretained(tracker).toOpaque()
        var js: OpaquePointer?
        try NatsCall.check(natsConnection_JetStream(&js, connection, &opts), "natsConnection_JetStream(async)")
        self.context = js!
    }

    /// Sends every message now, in order; the ticket waits for their PubAcks.
    func send(_ messages: [OutgoingMessage], wireSubjects: [String]) throws -> PublishTicket {
        let batch = PendingBatch(count: messages.count)
        for (index, message) in messages.enumerated() {
            var msg: OpaquePointer? = try NatsMessageBuilder.make(message, subject: wireSubjects[index])
            tracker.register(msg!, batch: batch, index: index)
            let status = js_PublishMsgAsync(context, &msg, nil)
            if status != NATS_OK {
                if let msg { tracker.forget(msg); natsMsg_Destroy(msg) }
                batch.record(index, .failure(NatsCall.error(status, "async publish \(message.subject) (id \(message.id))")))
            }
        }
        return PublishTicket(batch: batch, context: self, subjects: messages.map(\.subject), ids: messages.map(\.id))
    }


    fileprivate var timeoutMs: Int64 { waitMs }

    /// PubAcks lost in a server restart would stay pending on the context forever: take every
    /// pending message off it and report it as timed out (the caller republishes with the same
    /// ids). Without this, every later batch waited out the full timeout (51 s for 3,000 messages).
    fileprivate func abandonPending() {
        lock.lock(); defer { lock.unlock() }
        guard !destroyed else { return }
        var pending = natsMsgList()
        guard js_PublishAsyncGetPendingList(&pending, context) == NATS_OK else { return }
        for index in 0..<Int(pending.Count) {
            guard let msg = pending.Msgs[index] else { continue }
            tracker.record(msg, .failure(.timeout("PubAck after \(waitMs) ms")))
        }
        natsMsgList_Destroy(&pending)
    }

    func destroy() {
        lock.lock(); defer { lock.unlock() }
        guard !destroyed else { return }
        destroyed = true
        jsCtx_Destroy(context)
    }
}

/// The PubAcks of one sent batch.
public struct PublishTicket: Sendable {
    fileprivate let batch: PendingBatch
    fileprivate let context: AsyncPublishContext
    fileprivate let subjects: [String]
    fileprivate let ids: [String]

    /// Waits until every message is acknowledged; throws the first failure, or a timeout.
    public func acks() async throws -> [PublishAck] {
        if await !batch.wait(timeoutMs: context.timeoutMs) {
            context.abandonPending()
        }
        return try batch.results(subjects: subjects, ids: ids, waitMs: context.timeoutMs)
    }
}

/// One batch's results, filled from libnats' ack thread.
final class PendingBatch: @unchecked Sendable {
    private let lock = NSLock()
    private var results: [Result<PublishAck, BusError>?]
    private var remaining: Int
    private var waiter: CheckedContinuation<Bool, Never>?

    init(count: Int) {
        results = Array(repeating: nil, count: count)
        remaining = count
    }

    func record(_ index: Int, _ result: Result<PublishAck, BusError>) {
        let resume: CheckedContinuation<Bool, Never>? = lock.withLock {
            guard index < results.count, results[index] == nil else { return nil }
            results[index] = result
            remaining -= 1
            guard remaining == 0, let waiter else { return nil }
            self.waiter = nil
            return waiter
        }
        resume?.resume(returning: true)
    }

    /// True when every result is in; false when `timeoutMs` passed first.
    func wait(timeoutMs: Int64) async -> Bool {
        await withCheckedContinuation { (continuation: CheckedContinuation<Bool, Never>) in
            let done: Bool = lock.withLock {
                if remaining == 0 { return true }
                waiter = continuation
                return false
            }
            if done {
                continuation.resume(returning: true)
                return
            }
            DispatchQueue.global().asyncAfter(deadline: .now() + .milliseconds(Int(timeoutMs))) { [self] in
                let expired: CheckedContinuation<Bool, Never>? = lock.withLock {
                    defer { waiter = nil }
                    return waiter
                }
                expired?.resume(returning: false)
            }
        }
    }

    func results(subjects: [String], ids: [String], waitMs: Int64) throws -> [PublishAck] {
        let snapshot = lock.withLock { results }
        return try snapshot.enumerated().map { index, result in
            switch result {
            case .some(.success(let ack)): return ack
            case .some(.failure(let error)): throw error
            case .none: throw BusError.timeout("PubAck for \(subjects[index]) (id \(ids[index])) after \(waitMs) ms")
            }
        }
    }
}

/// Which batch and position each in-flight natsMsg belongs to. The ack handler receives the very
/// natsMsg that was published; an address is reused only after the handler recorded and freed it.
final class PendingTracker: @unchecked Sendable {
    private let lock = NSLock()
    private var positions: [UInt: (PendingBatch, Int)] = [:]
    private var lastStream = ""

    private func key(_ msg: OpaquePointer) -> UInt { UInt(bitPattern: Int(bitPattern: UnsafeRawPointer(msg))) }

    func register(_ msg: OpaquePointer, batch: PendingBatch, index: Int) {
        lock.withLock { positions[key(msg)] = (batch, index) }
    }

    func forget(_ msg: OpaquePointer) {
        _ = lock.withLock { positions.removeValue(forKey: key(msg)) }
    }

    func record(_ msg: OpaquePointer, _ result: Result<PublishAck, BusError>) {
        guard let (batch, index) = lock.withLock({ positions.removeValue(forKey: key(msg)) }) else { return }
        batch.record(index, result)
    }

    /// The PubAck's stream name; consecutive acks name the same stream, so the Swift string is
    /// reused instead of copied per message. Called on libnats' ack thread only.
    func streamName(_ name: UnsafePointer<CChar>?) -> String {
        guard let name else { return "" }
        let reuse = lastStream.withCString { strcmp($0, name) == 0 }
        if !reuse { lastStream = String(cString: name) }
        return lastStream
    }
}

private let asyncAckHandler: jsPubAckHandler = { _, msg, ack, ackError, closure in
    defer { natsMsg_Destroy(msg) }
    guard let closure, let msg else { return }
    let tracker = Unmanaged<PendingTracker>.fromOpaque(closure).takeUnretainedValue()
    if let ack {
        tracker.record(msg, .success(PublishAck(stream: tracker.streamName(ack.pointee.Stream),
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
        tracker.record(msg, .failure(error))
    }
}
