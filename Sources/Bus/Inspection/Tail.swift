import CNats
import Foundation
import Identity
import Messages

extension BusConnection {
    /// Reads a subject's messages through a short-lived consumer of its own (removed at the
    /// end, and by the server after 60 s idle if this process dies): the last `last` messages,
    /// then, with `follow`, each new one until `onMessage` returns false or the task is cancelled.
    public func tail(_ subject: String, last: Int, follow: Bool,
                     onMessage: @escaping @Sendable (InboundMessage) -> Bool) async throws {
        let stream = try await streamOwning(subject)
        let filter = Partitioning.wireFilter(subject)
        let (name, subscription): (String, PullSubscription) = try await pool.run { [self] in
            let name = try createTailConsumer(stream: stream, subject: filter)
            return (name, try bindPull(stream: stream, durable: name, filterSubject: filter))
        }
        defer {
            subscription.close()
            Task.detached { [self] in try? await deleteConsumer(stream: stream, durable: name) }
        }
        // History: keep the newest `last` until the consumer has nothing pending.
        var window: [InboundMessage] = []
        var caughtUp = false
        while !caughtUp {
            let batch = try await subscription.fetch(batch: 256, timeoutMs: 300)
            if batch.isEmpty { break }
            window.append(contentsOf: batch)
            if window.count > last { window.removeFirst(window.count - last) }
            caughtUp = batch.last?.pending == 0
        }
        for message in window where !onMessage(message) { return }
        guard follow else { return }
        while !Task.isCancelled {
            for message in try await subscription.fetch(batch: 64, timeoutMs: 1_000) where !onMessage(message) {
                return
            }
        }
    }

    /// An ephemeral consumer, named by the server: a read-only identity may create those (the
    /// create request for a named or durable consumer is another subject, which it may not use).
    private func createTailConsumer(stream: String, subject: String) throws -> String {
        var config = jsConsumerConfig()
        jsConsumerConfig_Init(&config)
        config.AckPolicy = js_AckNone
        config.DeliverPolicy = js_DeliverAll
        config.InactiveThreshold = 60 * Nanoseconds.perSecond
        var info: UnsafeMutablePointer<jsConsumerInfo>?
        var code = jsErrCode(rawValue: 0)
        let status: natsStatus = subject.withCString { filter in
            config.FilterSubject = filter
            return js_AddConsumer(&info, jetStream, stream, &config, nil, &code)
        }
        defer { jsConsumerInfo_Destroy(info) }
        try NatsCall.check(status, "create tail consumer on \(stream) for \(subject)", jetStreamCode: code)
        guard let name = info?.pointee.Name.map({ String(cString: $0) }) else {
            throw BusError.nats(operation: "create tail consumer on \(stream)", status: "no name", text: "the server named no consumer", jetStreamCode: 0)
        }
        return name
    }
}
