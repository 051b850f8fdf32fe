import CNats
import Foundation
import Synchronization

/// The raw libnats loops the Bus is measured against (DESIGN.md §11), in the same process and
/// run: the same connection settings, subjects, headers and payload sizes, no Swift layer.
/// For benchmarks only; nothing in the product uses it.
public enum RawNatsBaseline {
    /// `js_PublishMsgAsync` of `count` prepared messages in chunks, each chunk completed with
    /// `js_PublishAsyncComplete`; a message counts once its PubAck is in. Returns seconds.
    public static func publishAsync(_ connection: BusConnection, messages: [OutgoingMessage], chunk: Int) async throws -> Double {
        try await connection.pool.run {
            let raw = try CountingPublisher(connection)
            defer { raw.destroy() }
            let (js, counter) = (raw.context, raw.counter)
            var complete = raw.completeOptions
            // The same wire subjects the Bus sends (partition tokens included), worked out before the clock starts.
            let subjects = try messages.map { try connection.wireSubject($0.subject) }

            let start = DispatchTime.now().uptimeNanoseconds
            for chunkStart in stride(from: 0, to: messages.count, by: chunk) {
                for index in chunkStart..<min(messages.count, chunkStart + chunk) {
                    let message = messages[index]
                    var msg: OpaquePointer?
                    _ = message.payload.withUnsafeBufferPointer { bytes in
                        bytes.withMemoryRebound(to: CChar.self) {
                            natsMsg_Create(&msg, subjects[index], nil, $0.baseAddress, Int32($0.count))
                        }
                    }
                    for (key, value) in message.headers { natsMsgHeader_Set(msg, key, value) }
                    try NatsCall.check(js_PublishMsgAsync(js, &msg, nil), "raw js_PublishMsgAsync")
                }
                try NatsCall.check(js_PublishAsyncComplete(js, &complete), "raw js_PublishAsyncComplete")
            }
            let elapsed = Double(DispatchTime.now().uptimeNanoseconds - start) / 1e9
            guard counter.acked == messages.count else {
                throw BusError.timeout("raw publish: \(counter.acked) of \(messages.count) PubAcks (\(counter.failed) failed)")
            }
            return elapsed
        }
    }

    /// `natsSubscription_Fetch(batch)` + `natsMsg_Ack` on a bound durable until `count`
    /// messages are acked. Returns seconds.
    public static func fetchAndAck(_ connection: BusConnection, spec: ConsumerSpec, count: Int, batch: Int) async throws -> Double {
        let subscription = try connection.bindPull(stream: spec.stream, durable: spec.durable, filterSubject: spec.wireFilterSubject)
        defer { subscription.close() }
        return try await connection.pool.run {
            let start = DispatchTime.now().uptimeNanoseconds
            var received = 0
            while received < count {
                let messages = try subscription.fetchRawBlocking(batch: batch, timeoutMs: 5_000)
                guard !messages.isEmpty else { throw BusError.timeout("raw fetch: \(received) of \(count) messages") }
                for msg in messages {
                    natsMsg_Ack(msg, nil)
                    natsMsg_Destroy(msg)
                }
                received += messages.count
            }
            return Double(DispatchTime.now().uptimeNanoseconds - start) / 1e9
        }
    }
}

extension RawNatsBaseline {
    /// `count` compare-and-set updates of one key, one after another, in one blocking loop on one
    /// thread: a KV round trip with no hand-off between threads. Returns seconds.
    public static func sequentialUpdates(_ connection: BusConnection, bucket: String, key: String, value: [UInt8],
                                         count: Int) async throws -> Double {
        try await connection.pool.run {
            var kv: OpaquePointer?
            try NatsCall.check(js_KeyValue(&kv, connection.jetStream, bucket), "raw open KV bucket \(bucket)")
            defer { kvStore_Destroy(kv) }
            var revision: UInt64 = 0
            return try value.withUnsafeBytes { bytes in
                try NatsCall.check(kvStore_Put(&revision, kv, key, bytes.baseAddress, Int32(bytes.count)), "raw KV put")
                let start = DispatchTime.now().uptimeNanoseconds
                for _ in 0..<count {
                    try NatsCall.check(kvStore_Update(&revision, kv, key, bytes.baseAddress, Int32(bytes.count), revision), "raw KV update")
                }
                return Double(DispatchTime.now().uptimeNanoseconds - start) / 1e9
            }
        }
    }
}

/// A JetStream context whose async PubAcks are only counted, and the options that complete a
/// chunk: what both raw loops publish through.
private struct CountingPublisher {
    let counter = AckCounter()
    let context: OpaquePointer
    let completeOptions: jsPubOptions

    init(_ connection: BusConnection) throws {
        var opts = jsOptions()
        jsOptions_Init(&opts)
        opts.Wait = connection.options.jetStreamWaitMs
        opts.PublishAsync.MaxPending = 4096
        opts.PublishAsync.StallWait = connection.options.jetStreamWaitMs
        opts.PublishAsync.AckHandler = countingAckHandler
        opts.PublishAsync.AckHandlerClosure = Unmanaged.passUnretained(counter).toOpaque()
        var js: OpaquePointer?
        try NatsCall.check(natsConnection_JetStream(&js, connection.connection, &opts), "raw JetStream context")
        context = js!
        var complete = jsPubOptions()
        jsPubOptions_Init(&complete)
        complete.MaxWait = connection.options.jetStreamWaitMs
        completeOptions = complete
    }

    func destroy() { jsCtx_Destroy(context) }
}

private final class AckCounter: Sendable {
    private let ok = Atomic<Int>(0)
    private let errors = Atomic<Int>(0)
    var acked: Int { ok.load(ordering: .relaxed) }
    var failed: Int { errors.load(ordering: .relaxed) }
    func record(success: Bool) {
        if success { ok.add(1, ordering: .relaxed) } else { errors.add(1, ordering: .relaxed) }
    }
}

private let countingAckHandler: jsPubAckHandler = { _, msg, ack, _, closure in
    defer { natsMsg_Destroy(msg) }
    guard let closure else { return }
    Unmanaged<AckCounter>.fromOpaque(closure).takeUnretainedValue().record(success: ack != nil)
}

extension RawNatsBaseline {
    /// The raw equivalent of a host running a pass-through plugin: fetch `batch` from a bound
    /// durable, publish each payload to `outputSubject` with the same five headers (async, then
    /// complete the batch), ack the inputs. Returns seconds for `count` messages. Output ids are
    /// `idPrefix-N`: loops that publish to one stream need prefixes of their own (deduplication).
    public static func passThrough(_ connection: BusConnection, spec: ConsumerSpec, outputSubject: String,
                                   count: Int, batch: Int, idPrefix: String = "raw-out") async throws -> Double {
        let subscription = try connection.bindPull(stream: spec.stream, durable: spec.durable, filterSubject: spec.wireFilterSubject)
        defer { subscription.close() }
        return try await connection.pool.run {
            let raw = try CountingPublisher(connection)
            defer { raw.destroy() }
            let js = raw.context
            var complete = raw.completeOptions
            // The same wire subjects the Bus sends (partition tokens included), worked out before the clock starts.
            let wireOutput = try connection.wireSubject(outputSubject)

            let start = DispatchTime.now().uptimeNanoseconds
            var handled = 0
            while handled < count {
                let inputs = try subscription.fetchRawBlocking(batch: batch, timeoutMs: 5_000)
                guard !inputs.isEmpty else { throw BusError.timeout("raw pass-through: \(handled) of \(count)") }
                for input in inputs {
                    var output: OpaquePointer?
                    natsMsg_Create(&output, wireOutput, nil, natsMsg_GetData(input), natsMsg_GetDataLength(input))
                    let id = "\(idPrefix)-\(handled)"
                    for (key, value) in [(HeaderName.messageID, id), (HeaderName.type, "qt.v1.Kline"), (HeaderName.trace, id),
                                         (HeaderName.cause, id), (HeaderName.producer, "raw@bench")] {
                        natsMsgHeader_Set(output, key, value)
                    }
                    try NatsCall.check(js_PublishMsgAsync(js, &output, nil), "raw js_PublishMsgAsync")
                    handled += 1
                }
                try NatsCall.check(js_PublishAsyncComplete(js, &complete), "raw js_PublishAsyncComplete")
                for input in inputs {
                    natsMsg_Ack(input, nil)
                    natsMsg_Destroy(input)
                }
            }
            return Double(DispatchTime.now().uptimeNanoseconds - start) / 1e9
        }
    }
}

extension RawNatsBaseline {
    /// One message at a time through one stage, whoever runs it: each input is published (sync,
    /// PubAck) `intervalMs` after the last one's output arrived on a plain subscription to
    /// `outputSubject`. Returns, per input, the milliseconds from its publish to its output.
    public static func hopLatencies(_ connection: BusConnection, inputs: [OutgoingMessage], outputSubject: String,
                                    intervalMs: Int) async throws -> [Double] {
        try await connection.pool.run {
            var subscription: OpaquePointer?
            try NatsCall.check(natsConnection_SubscribeSync(&subscription, connection.connection,
                                                             try connection.wireSubject(outputSubject)),
                               "subscribe \(outputSubject)")
            defer { natsSubscription_Destroy(subscription) }
            var latencies: [Double] = []
            for input in inputs {
                usleep(useconds_t(intervalMs * 1_000))
                let start = DispatchTime.now().uptimeNanoseconds
                _ = try connection.publishBlocking(input)
                var output: OpaquePointer?
                try NatsCall.check(natsSubscription_NextMsg(&output, subscription, 5_000), "the output of \(input.id)")
                latencies.append(Double(DispatchTime.now().uptimeNanoseconds - start) / 1e6)
                natsMsg_Destroy(output)
            }
            return latencies
        }
    }
}
