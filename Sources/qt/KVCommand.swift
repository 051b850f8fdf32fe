import ArgumentParser
import Bus
import Foundation
import Messages

struct KV: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "kv",
        abstract: "Inspect the KV buckets (values decoded to JSON through the schema).",
        subcommands: [List.self, Get.self]
    )

    struct List: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            commandName: "ls", abstract: "List the buckets, or the keys of one bucket.")
        @OptionGroup var connection: ConnectionArguments
        @Argument(help: "Bucket, e.g. qt_ledger. Without it, all buckets.") var bucket: String?

        func run() async throws {
            try await reportingErrors {
                let bus = try connection.connect()
                defer { bus.close() }
                if let bucket {
                    for key in try await bus.keyValue(bucket).keys().sorted() { printLine(key) }
                    return
                }
                printLine(pad(["BUCKET", "VALUES", "HISTORY", "TTL (s)", "VALUE TYPE"]))
                for stream in try await bus.streams() where stream.name.hasPrefix("KV_") {
                    let name = String(stream.name.dropFirst(3))
                    let type = Topology.bucket(named: name)?.valueType.protoMessageName ?? "-"
                    let history = Topology.bucket(named: name).map { String($0.history) } ?? "?"
                    printLine(pad([name, String(stream.messages), history, String(stream.maxAgeSeconds), type]))
                }
            }
        }
    }

    struct Get: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Print one key's latest value as JSON.")
        @OptionGroup var connection: ConnectionArguments
        @Argument(help: "Bucket, e.g. qt_ledger.") var bucket: String
        @Argument(help: "Key, e.g. BTCUSDT.") var key: String
        @Flag(help: "Print the value as base64 bytes instead of decoding it.") var raw = false

        func run() async throws {
            try await reportingErrors {
                guard raw || Topology.bucket(named: bucket) != nil else {
                    let known = Topology.buckets.map(\.name).joined(separator: ", ")
                    throw ValidationError("unknown type for bucket \(bucket): it is not one of \(known) (use --raw for bytes)")
                }
                let bus = try connection.connect()
                defer { bus.close() }
                guard let entry = try await bus.keyValue(bucket).get(key) else {
                    throw BusError.notFound("key \(key) in bucket \(bucket)")
                }
                let typeName = Topology.bucket(named: bucket)?.valueType(forKey: key).protoMessageName
                let rendered = MessageJSON.render(entry, typeName: typeName, raw: raw)
                printLine(rendered.json)
                if !rendered.decoded { throw ExitCode.failure }
            }
        }
    }
}
