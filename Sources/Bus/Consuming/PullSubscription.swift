import CNats
import BlockingIO
import Foundation

extension BusConnection {
    /// Creates the durable when it is missing and updates it when its settings differ, so a
    /// config change is deliberate and visible (DESIGN.md §11: never let js_PullSubscribe create it).
    @discardableResult
    public func ensureConsumer(_ spec: ConsumerSpec) async throws -> ProvisionResult.Action {
        try await pool.run { [self] in try ensureConsumerBlocking(spec) }
    }

    func ensureConsumerBlocking(_ spec: ConsumerSpec) throws -> ProvisionResult.Action {
        var info: UnsafeMutablePointer<jsConsumerInfo>?
        var code = jsErrCode(rawValue: 0)
        let status = js_GetConsumerInfo(&info, jetStream, spec.stream, spec.durable, nil, &code)
        if status == NATS_OK, let info {
            defer { jsConsumerInfo_Destroy(info) }
            let current = info.pointee.Config.pointee
            let filter = current.FilterSubject.map { String(cString: $0) } ?? ""
            if filter == spec.wireFilterSubject && current.AckWait == spec.ackWaitMs * Nanoseconds.perMillisecond
                && current.MaxAckPending == spec.maxAckPending {
                return .unchanged
            }
            // JetStream refuses to change where a durable starts: an update keeps what it was created with.
            try writeConsumer(spec, update: true, start: (current.DeliverPolicy, current.OptStartTime))
            return .updated
        }
        guard status == NATS_NOT_FOUND else {
            throw NatsCall.error(status, "consumer info \(spec.stream)/\(spec.durable)", jetStreamCode: code)
        }
        try writeConsumer(spec, update: false)
        return .created
    }

    private func writeConsumer(_ spec: ConsumerSpec, update: Bool, start: (jsDeliverPolicy, Int64)? = nil) throws {
        var config = jsConsumerConfig()
        jsConsumerConfig_Init(&config)
        config.AckPolicy = js_AckExplicit
        if let start {
            (config.DeliverPolicy, config.OptStartTime) = start
        } else if spec.deliverNewOnly {
            config.DeliverPolicy = js_DeliverNew
        } else if let replayMs = spec.replayWithinMs {
            // Wall-clock nanoseconds since the epoch (nats.h); the server compares stored times.
            config.DeliverPolicy = js_DeliverByStartTime
            config.OptStartTime = (Int64(Date().timeIntervalSince1970 * 1000) - replayMs) * Nanoseconds.perMillisecond
        } else {
            config.DeliverPolicy = js_DeliverAll
        }
        config.AckWait = spec.ackWaitMs * Nanoseconds.perMillisecond
        config.MaxDeliver = -1
        config.MaxAckPending = spec.maxAckPending
        var info: UnsafeMutablePointer<jsConsumerInfo>?
        var code = jsErrCode(rawValue: 0)
        let status: natsStatus = spec.durable.withCString { durable in
            spec.wireFilterSubject.withCString { filter in
                config.Durable = durable
                config.FilterSubject = filter
                return update
                    ? js_UpdateConsumer(&info, jetStream, spec.stream, &config, nil, &code)
                    : js_AddConsumer(&info, jetStream, spec.stream, &config, nil, &code)
            }
        }
        jsConsumerInfo_Destroy(info)
        try NatsCall.check(status, "\(update ? "update" : "create") consumer \(spec.stream)/\(spec.durable)", jetStreamCode: code)
    }

    /// Binds to an existing durable (see `ensureConsumer`) for fetching.
    func bindPull(stream: String, durable: String, filterSubject: String) throws -> PullSubscription {
        var subOpts = jsSubOptions()
        jsSubOptions_Init(&subOpts)
        var sub: OpaquePointer?
        var code = jsErrCode(rawValue: 0)
        let status: natsStatus = stream.withCString { streamName in
            durable.withCString { durableName in
                subOpts.Stream = streamName
                subOpts.Consumer = durableName
                return js_PullSubscribe(&sub, jetStream, filterSubject, durableName, nil, &subOpts, &code)
            }
        }
        try NatsCall.check(status, "bind consumer \(stream)/\(durable)", jetStreamCode: code)
        let subscription = PullSubscription(subscription: sub!, connection: liveness, stream: stream, durable: durable)
        onClose { subscription.close() }
        return subscription
    }
}

/// One bound pull subscription and the one thread that fetches from it (two concurrent
/// fetches on one subscription are an error in libnats): for tails and the raw-libnats baseline,
/// which read a batch at a time; consumers read through a `StandingPull`.
final class PullSubscription: @unchecked Sendable {
    let stream: String
    let durable: String
    private let subscription: OpaquePointer
    /// The natsConnection the messages' acks go out on.
    private let connection: ConnectionLiveness
    private let worker: BlockingWorker
    private let lock = NSLock()
    private var closed = false

    init(subscription: OpaquePointer, connection: ConnectionLiveness, stream: String, durable: String) {
        self.subscription = subscription
        self.connection = connection
        self.stream = stream
        self.durable = durable
        self.worker = BlockingWorker(name: "qt-fetch-\(durable)")
    }

    var isClosed: Bool {
        lock.lock(); defer { lock.unlock() }
        return closed
    }

    /// Up to `batch` messages; empty when none arrived within the timeout.
    func fetch(batch: Int, timeoutMs: Int64) async throws -> [InboundMessage] {
        do {
            return try await worker.run { [self] in try fetchBlocking(batch: batch, timeoutMs: timeoutMs) }
        } catch is BlockingWorkerStopped {
            throw BusError.closed("consumer \(durable)")
        }
    }

    func fetchBlocking(batch: Int, timeoutMs: Int64) throws -> [InboundMessage] {
        guard !isClosed else { throw BusError.closed("consumer \(durable)") }
        return try fetchRawBlocking(batch: batch, timeoutMs: timeoutMs).map { InboundMessage(taking: $0, ackingOn: connection, stream: stream, consumer: durable) }
    }

    /// Plain natsMsg pointers, owned by the caller; on the calling thread.
    func fetchRawBlocking(batch: Int, timeoutMs: Int64) throws -> [OpaquePointer] {
        var list = natsMsgList()
        var code = jsErrCode(rawValue: 0)
        let status = natsSubscription_Fetch(&list, subscription, Int32(batch), timeoutMs, &code)
        if status == NATS_TIMEOUT { return [] }
        try NatsCall.check(status, "fetch \(stream)/\(durable)", jetStreamCode: code)
        var messages: [OpaquePointer] = []
        messages.reserveCapacity(Int(list.Count))
        for index in 0..<Int(list.Count) {
            if let msg = list.Msgs[index] {
                messages.append(msg)
                list.Msgs[index] = nil  // the caller owns it now; the list destroy skips it
            }
        }
        natsMsgList_Destroy(&list)
        return messages
    }

    /// Waits for an in-flight fetch to return, then destroys the subscription (not the durable).
    func close() {
        lock.lock()
        if closed { lock.unlock(); return }
        closed = true
        lock.unlock()
        worker.shutdown()
        natsSubscription_Destroy(subscription)
    }
}
