import Foundation
import Identity
import Messages
import SwiftProtobuf

extension BusConnection {
    /// Binds to the durable of `spec` (create it first with `ensureConsumer`) and returns its
    /// messages decoded as `M`. `producer` (`plugin@host`) signs the dead letters it writes; its
    /// pull requests are counted in `counter`.
    public func consume<M: BusMessage>(_ type: M.Type, spec: ConsumerSpec, producer: String,
                                       countingIn counter: BusOperationCounter? = nil) throws -> Consumer<M> {
        guard spec.typeName == M.protoMessageName else {
            throw BusError.wrongType(subject: spec.filterSubject, expected: spec.typeName, actual: M.protoMessageName)
        }
        var served: (@Sendable () -> Void)?
        if let counter { served = { counter.add(.fetch) } }
        let pull = try standingPull(stream: spec.stream, durable: spec.durable, served: served)
        return Consumer(core: ConsumerCore(connection: self, subscription: pull, spec: spec, producer: producer))
    }
}

/// The messages of one durable consumer as an `AsyncSequence` of typed deliveries.
///
/// Messages come through a standing pull (`StandingPull`): one pull request of up to a batch is
/// open while the handler works, so the next messages are on their way while a batch is handled,
/// and a new request goes out only when the previous one has ended and what it brought is used
/// up: the server never holds more than two batches of the durable's messages for this host, and
/// nothing is dropped. A payload that does not decode as `M`, carries another `Qt-Type`, or
/// holds an enum value the schema does not know never reaches the handler: it is copied to
/// `qt.dlq.<consumer>` as a `DeadLetter` (plus an `Alert`) and terminated (R2).
/// One task iterates a consumer; the sequence ends when `stop()` is called or the task is cancelled.
public struct Consumer<M: BusMessage>: AsyncSequence, Sendable {
    public typealias Element = Delivery<M>
    let core: ConsumerCore<M>

    public func makeAsyncIterator() -> Iterator { Iterator(core: core) }

    /// Ends the sequence; messages fetched but not yet handed out, and those the open pull
    /// request still brings, are NAKed for immediate redelivery (to this or another host).
    public func stop() {
        core.stop()
        core.nakLeftoversNow()
    }

    /// Ends the sequence and keeps what was fetched but not handed out until `nakLeftovers()`:
    /// a loop that stops with a batch in hand NAKs that batch's rest first, so the NAKs (and the
    /// redeliveries, which follow them in order) stay in stream order.
    public func stopFetching() { core.stop() }

    /// After `stopFetching()`: NAKs the messages fetched and never handed out, then those that
    /// arrived behind them and arrive until the open pull request ends, each with the delay
    /// `delayMs` gives it (a subject whose earlier message waits out a retry comes back after it).
    /// Returns when the request has ended and every NAK is sent.
    public func nakLeftovers(delayMs: @escaping @Sendable (InboundMessage) -> Int64 = { _ in 0 }) async {
        await core.nakLeftovers(delayMs: delayMs)
    }

    /// Ends the sequence and drops what was fetched without a NAK or an ack: for a host that lost
    /// the partition, whose messages now belong to another host (they come back after AckWait).
    public func abandon() {
        core.stop()
        core.dropLeftovers()
    }

    public var spec: ConsumerSpec { core.spec }

    /// Pull requests are sent only while `mayFetch` holds; it is asked on the fetch thread right
    /// before each one. A partition's owner passes "my lease outlives this fetch": a message delivered
    /// to a host that can no longer handle it waits out AckWait while the partition's new owner
    /// handles the ones after it (DESIGN.md §3.3, order across a move).
    public func fetchOnlyWhile(_ mayFetch: @escaping @Sendable () -> Bool) { core.setGate(mayFetch) }

    /// The next fetch asks for up to `batch` messages, once: a partition taken over after a crash
    /// gets every message its old owner left unacked in one batch, which is then handled in stream
    /// order (their redeliveries come in the order their AckWaits ran out).
    public func widenFirstFetch(to batch: Int) { core.widenFirstFetch(to: batch) }

    /// Makes a stopped or abandoned consumer fetch again (a partition this host owns once more).
    /// The subscription is kept for the connection's life rather than made anew: its open pull
    /// request may still bring messages after a stop.
    public func restart() { core.restart() }

    /// After `stop()`: returns once the open pull request has ended and what it brought was
    /// NAKed, so a clean hand-off releases its lease only when nothing of the partition is held here.
    public func drained() async { await core.drained() }

    /// Dead letters written so far by this consumer.
    public var deadLettered: Int { core.deadLetterCount }

    /// The next delivery and every one already fetched behind it (at most one fetch batch),
    /// for handlers that publish a batch's outputs together. Empty when the consumer stopped.
    public func nextBatch() async throws -> [Delivery<M>] {
        try await core.nextBatch()
    }

    /// A permanent failure found by the handler (failed validation, R2): the message goes to
    /// `qt.dlq.<consumer>` with `error` and an alert, and is terminated.
    public func deadLetter(_ delivery: Delivery<M>, error: String) async throws {
        try await core.deadLetter(delivery.raw, error: PermanentFailure(error))
    }

    public struct Iterator: AsyncIteratorProtocol {
        let core: ConsumerCore<M>
        public mutating func next() async throws -> Delivery<M>? { try await core.next() }
    }
}

final class ConsumerCore<M: BusMessage>: @unchecked Sendable {
    let connection: BusConnection
    let subscription: StandingPull
    let spec: ConsumerSpec
    let producer: String
    private let lock = NSLock()
    private var buffer: [InboundMessage] = []
    private var bufferIndex = 0
    private var stopped = false
    private var deadLetters = 0
    /// The end of the open pull request a `stop()` left behind (its arrivals NAKed).
    private var stopping: Task<Void, Never>?
    private var firstFetchBatch: Int?
    private var leftovers: [InboundMessage]?
    private var gate: (@Sendable () -> Bool)?

    init(connection: BusConnection, subscription: StandingPull, spec: ConsumerSpec, producer: String) {
        self.connection = connection
        self.subscription = subscription
        self.spec = spec
        self.producer = producer
    }

    func setGate(_ mayFetch: @escaping @Sendable () -> Bool) {
        lock.withLock { gate = mayFetch }
    }

    var deadLetterCount: Int {
        lock.lock(); defer { lock.unlock() }
        return deadLetters
    }

    private var isStopped: Bool {
        lock.lock(); defer { lock.unlock() }
        return stopped
    }

    func restart() {
        lock.withLock {
            stopped = false
            stopping = nil
            leftovers = nil
            firstFetchBatch = nil
            buffer = []
            bufferIndex = 0
        }
        subscription.resumeArrivals()
    }

    func stop() {
        lock.withLock {
            stopped = true
            if leftovers == nil { leftovers = Array(buffer[bufferIndex...]) }
            buffer = []
            bufferIndex = 0
        }
        subscription.holdArrivals()
    }

    func dropLeftovers() {
        lock.withLock { leftovers = nil }
        subscription.dropKept()
    }

    private func takeLeftovers() -> [InboundMessage] {
        lock.lock(); defer { lock.unlock() }
        defer { leftovers = nil }
        return leftovers ?? []
    }

    /// Waits for the open pull request to end before NAKing: a NAK while it is open would bring
    /// the message straight back to it. What the request brought goes back at once, not after AckWait.
    func nakLeftovers(delayMs: @escaping @Sendable (InboundMessage) -> Int64) async {
        let unstarted = takeLeftovers()
        let behind = await subscription.takeKeptOnceEnded(nakingStraysWith: delayMs)
        for message in unstarted + behind { try? message.nak(delayMs: delayMs(message)) }
    }

    func nakLeftoversNow() {
        let naks = Task { await nakLeftovers(delayMs: { _ in 0 }) }
        lock.withLock { stopping = naks }
    }

    func drained() async {
        await lock.withLock { stopping }?.value
    }

    func next() async throws -> Delivery<M>? {
        while true {
            guard let raw = try await nextRaw() else { return nil }
            switch decode(raw) {
            case .success(let message):
                return Delivery(message: message, raw: raw)
            case .failure(let error):
                try await deadLetter(raw, error: error)
            }
        }
    }

    func nextBatch() async throws -> [Delivery<M>] {
        guard let first = try await next() else { return [] }
        var batch = [first]
        while let raw = popBuffered() {
            switch decode(raw) {
            case .success(let message): batch.append(Delivery(message: message, raw: raw))
            case .failure(let error): try await deadLetter(raw, error: error)
            }
        }
        return batch
    }

    private func nextRaw() async throws -> InboundMessage? {
        var transientFailures = 0
        while true {
            if Task.isCancelled || isStopped || subscription.isClosed { return nil }
            if let buffered = popBuffered() { return buffered }
            do {
                let settings = fetchSettings()
                let batch = try await subscription.fetch(batch: settings.batch ?? spec.fetchBatch, timeoutMs: spec.fetchTimeoutMs,
                                                         wholeBatch: settings.batch != nil, gate: settings.gate)
                transientFailures = 0
                guard install(batch) else {
                    // Stopped while this batch was being taken: it goes with what the open request
                    // brings after it (NAKed after the request, or left for a partition's new owner).
                    subscription.giveBack(batch)
                    return nil
                }
            } catch BusError.closed {
                return nil
            } catch is FetchHeldBack {
                try? await Task.sleep(nanoseconds: 100_000_000)
            } catch {
                // The server is restarting or a leader is being elected: wait and fetch again.
                transientFailures += 1
                let delayMs = min(2_000, 50 << min(transientFailures, 6))
                try? await Task.sleep(nanoseconds: UInt64(delayMs) * 1_000_000)
            }
        }
    }

    func widenFirstFetch(to batch: Int) {
        lock.withLock { firstFetchBatch = batch > spec.fetchBatch ? batch : nil }
    }

    /// The gate, and the one-time batch size of the first fetch after a `widenFirstFetch`.
    private func fetchSettings() -> (gate: (@Sendable () -> Bool)?, batch: Int?) {
        lock.lock(); defer { lock.unlock() }
        defer { firstFetchBatch = nil }
        return (gate, firstFetchBatch)
    }

    /// Makes `batch` the buffer; false when the consumer was stopped meanwhile.
    private func install(_ batch: [InboundMessage]) -> Bool {
        lock.lock(); defer { lock.unlock() }
        guard !stopped else { return false }
        // Redeliveries come in the order their AckWait or NAK delay ran out, not in stream order.
        buffer = batch.isSorted(by: \.streamSequence) ? batch : batch.sorted { $0.streamSequence < $1.streamSequence }
        bufferIndex = 0
        return true
    }

    private func countDeadLetter() {
        lock.lock(); defer { lock.unlock() }
        deadLetters += 1
    }

    private func popBuffered() -> InboundMessage? {
        lock.lock(); defer { lock.unlock() }
        guard bufferIndex < buffer.count else { return nil }
        let message = buffer[bufferIndex]
        bufferIndex += 1
        if bufferIndex == buffer.count { buffer = []; bufferIndex = 0 }
        return message
    }

    private func decode(_ raw: InboundMessage) -> Result<M, PermanentFailure> {
        let expected = M.protoMessageName
        guard let typeName = raw.header(HeaderName.type) else {
            return .failure(.init("missing \(HeaderName.type) header; expected \(expected)"))
        }
        guard typeName == expected else {
            return .failure(.init("\(HeaderName.type) is \(typeName); subject \(raw.subject) carries \(expected)"))
        }
        let message: M
        do {
            message = try raw.withPayload { try M(serializedBytes: $0) }
        } catch {
            return .failure(.init("payload does not decode as \(expected): \(error)"))
        }
        if let unknown = SchemaValidation.unknownEnumValue(in: message) {
            return .failure(.init("\(expected) \(unknown)"))
        }
        if let problem = FieldRules.problem(message) { return .failure(.init(problem)) }
        return .success(message)
    }

    /// Copies the message to the DLQ with the error and an alert, then terminates it. If the
    /// DLQ cannot be written, the message is NAKed instead: never lost, never handled.
    func deadLetter(_ raw: InboundMessage, error: PermanentFailure) async throws {
        let consumer = spec.durable
        var letter = DeadLetter()
        letter.consumer = consumer
        letter.stream = raw.stream
        letter.streamSequence = raw.streamSequence
        letter.originalSubject = raw.subject
        letter.originalType = raw.header(HeaderName.type) ?? ""
        letter.expectedType = M.protoMessageName
        let payload = raw.payload
        letter.payload = Data(payload.prefix(DeadLetterLimits.payloadBytes))
        letter.payloadSize = UInt64(payload.count)
        letter.payloadSha256 = ContentID.sha256Hex(bytes: Array(payload))
        letter.payloadTruncated = payload.count > DeadLetterLimits.payloadBytes
        letter.error = error.text
        letter.deliveries = raw.deliveryCount
        letter.headers = raw.headers
        letter.meta.eventTimeMs = raw.timestampNs / 1_000_000
        let letterID = ContentID.hash("dlq", consumer, raw.stream, String(raw.streamSequence))

        var alert = Alert()
        alert.kind = .deadLetter
        alert.severity = .critical
        alert.subject = raw.subject
        alert.message = "consumer \(consumer) dead-lettered \(raw.stream) #\(raw.streamSequence): \(error.text)"
        alert.details = ["consumer": consumer, "stream": raw.stream, "sequence": String(raw.streamSequence)]
        alert.meta.eventTimeMs = letter.meta.eventTimeMs
        let alertID = ContentID.hash("alert", "dead_letter", consumer, raw.stream, String(raw.streamSequence))
        do {
            let cause = Cause(id: raw.header(HeaderName.messageID) ?? "", traceID: raw.header(HeaderName.trace) ?? "")
            _ = try await connection.publish(OutgoingMessage(letter, subject: Subjects.deadLetter(consumer: consumer),
                                                             id: letterID, producer: producer, cause: cause))
            _ = try await connection.publish(OutgoingMessage(alert, subject: Subjects.alert(.deadLetter),
                                                             id: alertID, producer: producer, cause: cause))
            try raw.term()
            countDeadLetter()
        } catch {
            try? raw.nak(delayMs: 1_000)
        }
    }
}

/// A dead letter keeps the first 64 KiB of the payload: with the headers and the error it stays
/// well under the server's 1 MB message limit, whatever arrived.
public enum DeadLetterLimits {
    public static let payloadBytes = 64 * 1024
}

struct PermanentFailure: Error {
    let text: String
    init(_ text: String) { self.text = text }
}

private extension Array where Element == InboundMessage {
    func isSorted(by key: KeyPath<InboundMessage, UInt64>) -> Bool {
        zip(self, dropFirst()).allSatisfy { $0[keyPath: key] <= $1[keyPath: key] }
    }
}
