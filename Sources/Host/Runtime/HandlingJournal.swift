package import Bus
import Foundation
import Synchronization

/// An append-only record of what this host did under which lease: each message handled
/// (instance, input, partition, stream sequence, lease token, wall and monotonic time) and each KV
/// write (bucket, key, revision). Off unless `QT_JOURNAL` names a file; the partition tests read
/// it to prove that a paused host handled and wrote nothing for a partition it had lost.
final class HandlingJournal: Sendable {
    /// One line per write, whole: records from concurrent handlers never interleave.
    private let handle: Mutex<FileHandle>
    private let hostID: String

    static func fromEnvironment(hostID: String) -> HandlingJournal? {
        guard let path = ProcessInfo.processInfo.environment["QT_JOURNAL"], !path.isEmpty else { return nil }
        if !FileManager.default.fileExists(atPath: path) { FileManager.default.createFile(atPath: path, contents: nil) }
        guard let handle = FileHandle(forWritingAtPath: path) else { return nil }
        handle.seekToEndOfFile()
        return HandlingJournal(handle: handle, hostID: hostID)
    }

    private init(handle: FileHandle, hostID: String) {
        self.handle = Mutex(handle)
        self.hostID = hostID
    }

    func handled(instance: String, input: String, partition: Int?, stream: String, sequence: UInt64, subject: String, leaseToken: UInt64?) {
        write(["kind": "handled", "instance": instance, "input": input, "partition": partition ?? -1, "stream": stream,
               "seq": sequence, "subject": subject, "lease_token": leaseToken ?? 0])
    }

    func received(instance: String, input: String, partition: Int?, sequence: UInt64, deliveries: UInt64, subject: String, mayAct: Bool) {
        write(["kind": "received", "instance": instance, "input": input, "partition": partition ?? -1, "seq": sequence,
               "deliveries": deliveries, "subject": subject, "may_act": mayAct])
    }

    func kvWrite(instance: String, bucket: String, key: String, revision: UInt64, partition: Int?) {
        write(["kind": "kv", "instance": instance, "bucket": bucket, "key": key, "revision": revision, "partition": partition ?? -1])
    }

    /// The KV writes among `sent` (those that went out with a batch of outputs), at the revisions
    /// their PubAcks gave (`sequences`, in the batch's order).
    func kvWrites(among sent: [OutgoingMessage], sequences: [UInt64], instance: String, partition: Int?) {
        for (message, sequence) in zip(sent, sequences) {
            guard let write = message.keyValueWrite else { continue }
            kvWrite(instance: instance, bucket: write.bucket, key: write.key, revision: sequence, partition: partition)
        }
    }

    func partition(_ event: String, instance: String, partition: Int, leaseToken: UInt64) {
        write(["kind": event, "instance": instance, "partition": partition, "lease_token": leaseToken])
    }

    private func write(_ fields: [String: Any]) {
        var record = fields
        record["host"] = hostID
        record["wall_ms"] = Int64(Date().timeIntervalSince1970 * 1000)
        record["mono_ms"] = MonotonicClock.nowMs()
        guard let data = try? JSONSerialization.data(withJSONObject: record, options: [.sortedKeys]) else { return }
        handle.withLock { $0.write(data + Data("\n".utf8)) }
    }
}
