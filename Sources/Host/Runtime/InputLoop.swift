import Bus
import Foundation
import Identity
import Messages

/// Runs one (plugin, input) pair: fetch a batch, handle each message in order, publish the
/// batch's outputs, wait for every PubAck, then ack the inputs (DESIGN.md §3.3).
final class InputLoop<M: BusMessage>: @unchecked Sendable {
    let binding: PluginBinding
    let spec: InputSpec
    let consumer: Consumer<M>
    private let lock = NSLock()
    private var stopping = false

    init(binding: PluginBinding, spec: InputSpec, consumer: Consumer<M>) {
        self.binding = binding
        self.spec = spec
        self.consumer = consumer
    }

    var isStopping: Bool { lock.withLock { stopping } }

    /// Stop fetching; the batch in hand finishes, messages fetched but not started are NAKed.
    func stop() {
        lock.withLock { stopping = true }
        consumer.stop()
    }

    /// A batch's outputs are sent as soon as it is handled; while more messages are pending,
    /// their PubAcks are awaited (and the batch's inputs acked) after the next batch has been
    /// fetched and handled, so waiting on the server overlaps with work. When nothing more is
    /// pending the batch completes at once. Sends stay in stream order, so each subject's outputs
    /// keep theirs.
    func run() async {
        var failures = 0
        var previous: SentBatch?
        while !isStopping && !Task.isCancelled {
            let batch: [Delivery<M>]
            do {
                batch = try await consumer.nextBatch()
                failures = 0
            } catch {
                failures += 1
                try? await Task.sleep(nanoseconds: UInt64(min(2_000, 50 << min(failures, 6))) * 1_000_000)
                continue
            }
            if batch.isEmpty { break }
            let keeper = ProgressKeeper(batch, every: (binding.settings.ackWaitMs ?? spec.ackWaitMs) / 3)
            let (outputs, handled) = await handle(batch, keeper: keeper)
            keeper.stop()
            var sent: SentBatch?
            do {
                sent = SentBatch(ticket: outputs.isEmpty ? nil : try binding.bus.send(outputs), outputs: outputs.count,
                                 handled: handled)
            } catch {
                for delivery in handled { await retryLater(delivery, error: error) }
            }
            if let previous { await complete(previous) }
            previous = sent
            // Nothing more is waiting: finish this batch now rather than after a fetch that may
            // wait for the next message (and hold these inputs unacked until then).
            if batch.last?.raw.pending == 0, let current = previous {
                await complete(current)
                previous = nil
            }
        }
        if let previous { await complete(previous) }
    }

    private struct SentBatch {
        let ticket: PublishTicket?
        let outputs: Int
        let handled: [Delivery<M>]
    }

    /// Waits for every PubAck of a sent batch, then acks its inputs; if any output is not
    /// acknowledged the inputs are NAKed and come back (their outputs' ids deduplicate).
    private func complete(_ sent: SentBatch) async {
        if let ticket = sent.ticket {
            do {
                _ = try await ticket.acks()
                binding.metrics.messagesOut.add(sent.outputs)
            } catch {
                for delivery in sent.handled { await retryLater(delivery, error: error) }
                return
            }
        }
        for delivery in sent.handled { try? delivery.ack() }
    }

    /// Runs the handler on each message in order; returns the outputs to publish and the
    /// deliveries to ack once they are in.
    private func handle(_ batch: [Delivery<M>], keeper: ProgressKeeper<M>) async -> ([OutgoingMessage], [Delivery<M>]) {
        var outputs: [OutgoingMessage] = []
        var handled: [Delivery<M>] = []
        if let last = batch.last { binding.metrics.pending.set(Double(last.raw.pending)) }
        binding.metrics.messagesIn.add(batch.count)
        for (index, delivery) in batch.enumerated() {
            if isStopping {
                for unstarted in batch[index...] { try? unstarted.nak(delayMs: 0) }
                binding.metrics.messagesIn.add(-(batch.count - index))
                break
            }
            let context = HandlerContext(binding: binding, eventTimeMs: delivery.message.meta.eventTimeMs,
                                         cause: delivery.cause, causeStream: delivery.raw.stream,
                                         causeSequence: delivery.streamSequence)
            let input = Input(name: spec.name, subject: delivery.subject, message: delivery.message,
                              streamSequence: delivery.streamSequence, deliveryCount: delivery.deliveryCount)
            let started = DispatchTime.now().uptimeNanoseconds
            do {
                try await binding.plugin.handle(input, context: context)
                outputs.append(contentsOf: context.outputs)
                handled.append(delivery)
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
            binding.metrics.latency.observe(Double(DispatchTime.now().uptimeNanoseconds - started) / 1e6)
        }
        return (outputs, handled)
    }

    private func deadLetter(_ delivery: Delivery<M>, error: String) async {
        binding.metrics.deadLettered.increment()
        do {
            try await consumer.deadLetter(delivery, error: "\(binding.manifest.name) rejected it: \(error)")
        } catch {
            try? delivery.nak(delayMs: 1_000)
        }
    }

    /// NAK with back-off from 1 s doubling to 30 s, no delivery limit; an alert at the 5th delivery.
    private func retryLater(_ delivery: Delivery<M>, error: Error) async {
        binding.metrics.errors.increment()
        let count = max(1, Int(delivery.deliveryCount))
        let delayMs = min(30_000, 1_000 << min(count - 1, 5))
        try? delivery.nak(delayMs: Int64(delayMs))
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

    init(_ batch: [Delivery<M>], every intervalMs: Int64) {
        live = Dictionary(batch.map { ($0.streamSequence, $0) }, uniquingKeysWith: { first, _ in first })
        task = Task.detached { [weak self] in
            while !Task.isCancelled {
                try? await Task.sleep(nanoseconds: UInt64(max(100, intervalMs)) * 1_000_000)
                guard !Task.isCancelled, let self else { return }
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
