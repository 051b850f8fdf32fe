package import Bus
import Foundation
import Identity
import Messages

/// Runs one (plugin, input) pair, or one partition of a keyed input: fetch a batch, handle each
/// message in order, publish the batch's outputs, wait for every PubAck, then ack the inputs
/// (DESIGN.md §3.3). Under a partition lease every message, publish and ack is fenced: once the
/// lease's deadline has passed, nothing more is handled, published or acked.
final class InputLoop<M: BusMessage>: @unchecked Sendable, StoppableLoop {
    let binding: PluginBinding
    let spec: InputSpec
    let consumer: Consumer<M>
    let fence: LeaseFence?
    let partition: Int?
    private let lock = NSLock()
    private var stopping = false
    private var abandoned = false
    /// Subjects (symbols) whose message is waiting out a retry delay: their later messages are held
    /// back until that message and every one NAKed behind it are back, so one symbol's messages are
    /// never handled out of stream order.
    private var holds: [String: Hold] = [:]

    private struct Hold {
        /// The subject's messages this loop NAKed and has not had back yet (the retried one and those
        /// held back behind it), each with when it is due back. A later message is handled only once
        /// all of them are back: a fresh one fetched while the held-back ones wait out their delays
        /// would otherwise overtake them.
        var awaited: [UInt64: Int64] = [:]
        /// When the retried message is due back: the held-back ones come back just after it.
        var retryDueMs: Int64 = 0
        /// Messages held back so far: each comes back a millisecond after the one before.
        var queued: Int64 = 0
    }

    init(binding: PluginBinding, spec: InputSpec, consumer: Consumer<M>, fence: LeaseFence? = nil, partition: Int? = nil) {
        self.binding = binding
        self.spec = spec
        self.consumer = consumer
        self.fence = fence
        self.partition = partition
    }

    var isStopping: Bool { lock.withLock { stopping } }

    /// The lease is gone (or the loop was abandoned): act on nothing more.
    private var mayAct: Bool { !lock.withLock { abandoned } && (fence?.isValid ?? true) }

    /// Stop fetching; the batch in hand finishes, messages fetched but not started are NAKed: the
    /// batch's rest first, then what the consumer holds behind it (`run`'s end), in stream order.
    func stop() {
        lock.withLock { stopping = true }
        consumer.stopFetching()
    }

    /// The partition was lost: stop at once and leave every fetched message unacked for its new owner.
    func abandon() {
        lock.withLock { stopping = true; abandoned = true }
        consumer.abandon()
    }


    /// A batch's outputs are sent as soon as it is handled; while more messages are pending,
    /// their PubAcks are awaited (and the batch's inputs acked) after the next batch has been
    /// fetched and handled, so waiting on the server overlaps with work. When nothing more is
    /// pending the batch completes at once. Sends stay in stream order, so each subject's outputs
    /// keep theirs.
    ///
    /// A write sent with the outputs that its plugin reads back (`saveStateWithOutputs`) is read by the next
    /// message of its subject: that message is handled only once the write's batch is complete
    /// (the revision handed to the writer), so the batch is cut before it and the rest is handled
    /// after, without a fetch.
    func run() async {
        var failures = 0
        var previous: SentBatch?
        var carried: [Delivery<M>] = []
        while !isStopping && !Task.isCancelled {
            let batch: [Delivery<M>]
            if !carried.isEmpty {
                batch = carried
                carried = []
            } else {
                do {
                    batch = try await consumer.nextBatch()
                    failures = 0
                } catch {
                    failures += 1
                    try? await Task.sleep(nanoseconds: UInt64(min(2_000, 50 << min(failures, 6))) * 1_000_000)
                    continue
                }
                if batch.isEmpty { break }
                if let journal = binding.journal {
                    let acting = mayAct
                    for delivery in batch {
                        journal.received(instance: binding.instance, input: spec.name, partition: partition, sequence: delivery.streamSequence,
                                         deliveries: delivery.deliveryCount, subject: delivery.subject, mayAct: acting)
                    }
                }
            }
            guard mayAct else { abandon(); break }
            if let waiting = previous, batch.contains(where: { waiting.chainedSubjects.contains($0.subject) }) {
                await complete(waiting)
                previous = nil
            }
            let keeper = ProgressKeeper(batch, every: (binding.settings.ackWaitMs ?? spec.ackWaitMs) / 3,
                                        while: { [weak self] in self?.mayAct ?? false })
            let handling = await handle(batch, keeper: keeper)
            keeper.stop()
            guard mayAct else { abandon(); break }
            var sent: SentBatch?
            do {
                let outputs = handling.outputs
                sent = SentBatch(ticket: outputs.isEmpty ? nil : try binding.bus.send(outputs, countingIn: binding.metrics.busOperations),
                                 outputs: outputs, handled: handling.handled, contexts: handling.contexts,
                                 chainedSubjects: handling.chainedSubjects)
            } catch {
                for delivery in handling.handled { await retryLater(delivery, error: error) }
            }
            if let previous { await complete(previous) }
            previous = sent
            carried = handling.deferred
            // Nothing more is waiting: finish this batch now rather than after a fetch that may
            // wait for the next message (and hold these inputs unacked until then). A cut batch's
            // rest reads what this one wrote.
            if !carried.isEmpty || batch.last?.raw.pending == 0, let current = previous {
                await complete(current)
                previous = nil
            }
        }
        if let previous { await complete(previous) }
        // A subject waiting out a retry keeps its place: its later messages come back after it.
        if !lock.withLock({ abandoned }) {
            if mayAct { for delivery in carried { try? delivery.nak(delayMs: holdBack(delivery.subject, sequence: delivery.streamSequence) ?? 0) } }
            await consumer.nakLeftovers(delayMs: { [self] in holdBack($0.subject, sequence: $0.streamSequence) ?? 0 })
            if fence != nil { await waitForHolds() }
        }
    }

    private struct SentBatch {
        let ticket: PublishTicket?
        /// The messages and the KV writes that went out with them (`updateWithOutputs`).
        let outputs: [OutgoingMessage]
        let handled: [Delivery<M>]
        /// Each handled message's context and where its outputs start in `outputs`.
        let contexts: [(start: Int, context: HandlerContext)]
        /// Subjects whose message sent a write with the outputs that the next message reads back.
        let chainedSubjects: Set<String>
    }

    private struct Handling {
        var outputs: [OutgoingMessage] = []
        var handled: [Delivery<M>] = []
        var contexts: [(start: Int, context: HandlerContext)] = []
        var chainedSubjects: Set<String> = []
        /// Messages not handled yet because an earlier message of their subject in the batch sent a
        /// write with the outputs that they read back, in stream order.
        var deferred: [Delivery<M>] = []
    }

    /// Waits for every PubAck of a sent batch, then acks its inputs; if any output is not
    /// acknowledged the inputs are NAKed and come back (their outputs' ids deduplicate).
    private func complete(_ sent: SentBatch) async {
        if let ticket = sent.ticket {
            do {
                let acks = try await ticket.acks()
                binding.metrics.messagesOut.add(sent.outputs.filter { $0.keyValueWrite == nil }.count)
                // Journaled once answered, like `PluginKV`'s writes: at the revision the server gave.
                let sequences = acks.map(\.sequence)
                binding.journal?.kvWrites(among: sent.outputs, sequences: sequences, instance: binding.instance, partition: partition)
                for (start, context) in sent.contexts where start < sequences.count {
                    context.outputsStored(at: Array(sequences[start...]))
                }
            } catch {
                for delivery in sent.handled { await retryLater(delivery, error: error) }
                return
            }
        }
        guard mayAct else { return }
        for delivery in sent.handled { try? delivery.ack() }
    }

    /// Runs the handler on each message (in order, or per subject in order with
    /// `spec.concurrency`); returns the outputs to publish, in batch order, the deliveries to ack
    /// once they are in, and those left for after (a subject's message behind a write it reads back).
    private func handle(_ batch: [Delivery<M>], keeper: ProgressKeeper<M>) async -> Handling {
        if let last = batch.last { binding.metrics.pending.set(Double(last.raw.pending)) }
        var results = [HandledMessage?](repeating: nil, count: batch.count)
        var deferredIndices: [Int] = []
        if spec.concurrency == 1 || batch.count == 1 {
            var chained: Set<String> = []
            for index in batch.indices {
                if chained.contains(batch[index].subject) {
                    deferredIndices = Array(index..<batch.count)
                    break
                }
                results[index] = await handleOne(batch[index], keeper: keeper)
                if results[index]?.chains == true { chained.insert(batch[index].subject) }
            }
        } else {
            var lanes: [[Int]] = []
            var laneOfSubject: [String: Int] = [:]
            for (index, delivery) in batch.enumerated() {
                if let lane = laneOfSubject[delivery.subject] {
                    lanes[lane].append(index)
                } else {
                    laneOfSubject[delivery.subject] = lanes.count
                    lanes.append([index])
                }
            }
            typealias LaneResult = (done: [(Int, HandledMessage?)], deferred: [Int])
            await withTaskGroup(of: LaneResult.self) { group in
                var running = 0
                func take(_ lane: LaneResult) {
                    for (index, handled) in lane.done { results[index] = handled }
                    deferredIndices += lane.deferred
                }
                for lane in lanes {
                    if running == spec.concurrency, let done = await group.next() {
                        take(done)
                        running -= 1
                    }
                    group.addTask { [self] in
                        var done: [(Int, HandledMessage?)] = []
                        for (position, index) in lane.enumerated() {
                            let handled = await handleOne(batch[index], keeper: keeper)
                            done.append((index, handled))
                            if handled?.chains == true { return (done, Array(lane[(position + 1)...])) }
                        }
                        return (done, [])
                    }
                    running += 1
                }
                for await done in group { take(done) }
            }
        }
        var handling = Handling()
        for (index, result) in results.enumerated() {
            guard let result else { continue }
            handling.contexts.append((handling.outputs.count, result.context))
            handling.outputs.append(contentsOf: result.context.outputs)
            handling.handled.append(batch[index])
            if result.chains { handling.chainedSubjects.insert(batch[index].subject) }
        }
        handling.deferred = deferredIndices.sorted().map { batch[$0] }
        return handling
    }

    private struct HandledMessage {
        let context: HandlerContext
        /// It sent a write with its outputs that the next message of its subject reads back.
        var chains: Bool { context.readsBackWrites }
    }

    /// One message through the plugin: its context with the outputs, or nil when it was not handled
    /// (NAKed, dead-lettered, or left for redelivery because the loop is stopping).
    private func handleOne(_ delivery: Delivery<M>, keeper: ProgressKeeper<M>) async -> HandledMessage? {
        if isStopping || !mayAct {
            if mayAct { try? delivery.nak(delayMs: holdBack(delivery.subject, sequence: delivery.streamSequence) ?? 0) }
            return nil
        }
        if let delayMs = holdBack(delivery.subject, sequence: delivery.streamSequence) {
            keeper.settled(delivery)
            try? delivery.nak(delayMs: delayMs)
            return nil
        }
        // Counted once handed to the plugin: a Prometheus counter never goes down.
        binding.metrics.messagesIn.increment()
        let context = HandlerContext(scope: binding.scope, eventTimeMs: delivery.message.meta.eventTimeMs,
                                     cause: delivery.cause, causeStream: delivery.raw.stream,
                                     causeSequence: delivery.streamSequence, fence: fence)
        let input = Input(name: spec.name, subject: delivery.subject, message: delivery.message,
                          streamSequence: delivery.streamSequence, deliveryCount: delivery.deliveryCount,
                          storedAtMs: delivery.raw.timestampNs / 1_000_000)
        let started = DispatchTime.now().uptimeNanoseconds
        defer { binding.metrics.latency.observe(Double(DispatchTime.now().uptimeNanoseconds - started) / 1e6) }
        do {
            try await binding.plugin.handle(input, context: context)
            // A handler that was still running when the lease ran out (a paused process) has its
            // outputs dropped: the partition's new owner handles the message again.
            guard mayAct else { return nil }
            binding.journal?.handled(instance: binding.instance, input: spec.name, partition: partition, stream: delivery.raw.stream,
                                     sequence: delivery.streamSequence, subject: delivery.subject, leaseToken: fence?.token)
            return HandledMessage(context: context)
        } catch let error as PluginError {
            keeper.settled(delivery)
            switch error {
            case .permanent, .contract: await deadLetter(delivery, error: error.description)
            case .transient: await retryLater(delivery, error: error)
            }
        } catch {
            keeper.settled(delivery)
            await retryLater(delivery, error: error)
        }
        return nil
    }

    private func deadLetter(_ delivery: Delivery<M>, error: String) async {
        guard mayAct else { return }
        binding.metrics.deadLettered.increment()
        do {
            try await consumer.deadLetter(delivery, error: "\(binding.manifest.name) rejected it: \(error)")
        } catch {
            try? delivery.nak(delayMs: 1_000)
        }
    }

    /// The NAK delay for a message whose subject is held back behind an earlier one waiting out a
    /// retry: it comes back just after that one (and after those held back before it); nil when it
    /// may be handled, which is when no earlier message of its subject is still awaited. The hold
    /// lasts until the awaited messages are delivered again, not until their delays run out: a batch
    /// fetched meanwhile may hold the subject's next message first. A hold whose earliest message is
    /// long overdue (its NAK was lost; it comes back after AckWait) is dropped.
    private func holdBack(_ subject: String, sequence: UInt64) -> Int64? {
        lock.withLock {
            guard var hold = holds[subject], let first = hold.awaited.keys.min() else { return nil }
            let now = MonotonicClock.nowMs()
            if now > hold.awaited[first]! + (binding.settings.ackWaitMs ?? spec.ackWaitMs) + overdueHoldSlackMs {
                holds[subject] = nil
                return nil
            }
            if sequence <= first {
                if sequence == first { hold.awaited[first] = nil }
                holds[subject] = hold.awaited.isEmpty ? nil : hold
                return nil
            }
            hold.queued += 1
            let delayMs = max(hold.retryDueMs - now, 0) + 50 + hold.queued
            hold.awaited[sequence] = now + delayMs
            holds[subject] = hold
            return delayMs
        }
    }

    private var overdueHoldSlackMs: Int64 { 5_000 }

    /// A clean hand-off: the partition is released only once every retried message is redeliverable,
    /// so its new owner gets it before the fresh messages of its subject.
    private func waitForHolds() async {
        let lastMs = lock.withLock { holds.values.flatMap(\.awaited.values).max() }
        guard let lastMs else { return }
        let waitMs = min(lastMs - MonotonicClock.nowMs() + 100, 31_000)
        if waitMs > 0 { try? await Task.sleep(nanoseconds: UInt64(waitMs) * 1_000_000) }
    }

    /// NAK with back-off from 1 s doubling to 30 s, no delivery limit; an alert at the 5th delivery.
    private func retryLater(_ delivery: Delivery<M>, error: Error) async {
        guard mayAct else { return }
        binding.metrics.errors.increment()
        let count = max(1, Int(delivery.deliveryCount))
        let delayMs = min(30_000, 1_000 << min(count - 1, 5))
        try? delivery.nak(delayMs: Int64(delayMs))
        let untilMs = MonotonicClock.nowMs() + Int64(delayMs)
        lock.withLock {
            var hold = holds[delivery.subject] ?? Hold()
            hold.awaited[delivery.streamSequence] = untilMs
            hold.retryDueMs = max(hold.retryDueMs, untilMs)
            holds[delivery.subject] = hold
        }
        if count == 1 || count == 5 {
            binding.scope.logger.warning("\(binding.instance)__\(spec.name) \(delivery.subject) #\(delivery.streamSequence), delivery \(count): retry in \(delayMs) ms: \(error)",
                                         metadata: ["subject": "\(delivery.subject)", "stream_seq": "\(delivery.streamSequence)"])
        }
        if count == 5 {
            var alert = Alert()
            alert.kind = .redelivery
            alert.severity = .warning
            alert.plugin = binding.manifest.name
            alert.subject = delivery.subject
            alert.message = "\(binding.manifest.name)__\(spec.name) delivered \(delivery.subject) #\(delivery.streamSequence) 5 times: \(error)"
            alert.meta.eventTimeMs = delivery.message.meta.eventTimeMs
            let id = ContentID.hash(binding.manifest.name, "redelivery", delivery.raw.stream, String(delivery.streamSequence))
            _ = try? await binding.bus.publish(OutgoingMessage(alert, subject: Subjects.alert(.redelivery), id: id,
                                                               producer: binding.producer, cause: delivery.cause))
        }
    }
}

/// Sends in-progress acks for a batch while it is handled (DESIGN.md §3.3: "a handler that runs
/// long sends in-progress acks"), so a slow batch — an executor waiting out an unknown order —
/// is not redelivered to another host while this one still works on it.
final class ProgressKeeper<M: BusMessage>: @unchecked Sendable {
    private let lock = NSLock()
    private var live: [UInt64: Delivery<M>]
    private var task: Task<Void, Never>?

    /// `mayAct`: a host whose lease ran out must not keep the partition's messages from their new owner.
    init(_ batch: [Delivery<M>], every intervalMs: Int64, while mayAct: @escaping @Sendable () -> Bool) {
        live = Dictionary(batch.map { ($0.streamSequence, $0) }, uniquingKeysWith: { first, _ in first })
        task = Task.detached { [weak self] in
            while !Task.isCancelled {
                try? await Task.sleep(nanoseconds: UInt64(max(100, intervalMs)) * 1_000_000)
                guard !Task.isCancelled, mayAct(), let self else { return }
                for delivery in self.lock.withLock({ Array(self.live.values) }) { try? delivery.inProgress() }
            }
        }
    }

    /// NAKed or dead-lettered: no more in-progress acks for it.
    func settled(_ delivery: Delivery<M>) {
        _ = lock.withLock { live.removeValue(forKey: delivery.streamSequence) }
    }

    func stop() {
        task?.cancel()
    }
}

/// What the host keeps of a running input loop: a way to stop it cleanly or to abandon it.
protocol StoppableLoop: AnyObject, Sendable {
    func stop()
    func abandon()
}
