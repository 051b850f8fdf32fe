import ArgumentParser
import Bus
import Foundation
import Synchronization
import Host
import Messages

struct Streams: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "streams",
        abstract: "Provision and inspect the JetStream streams of the topology.",
        subcommands: [Provision.self, List.self, Info.self, Tail.self]
    )

    struct Provision: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Create missing streams, KV buckets and durables, update changed ones, record the layout (idempotent).",
            discussion: """
            The administrator's step: hosts create and change nothing, and refuse to start until this has run with
            settings matching their node configs. Durables: one per plugin input, and for inputs keyed by symbol one
            per partition. With --node-config, the plugins and settings (ack_wait_s, shadow) of those nodes; without,
            every built-in plugin with its defaults.
            """)
        @OptionGroup var connection: ConnectionArguments
        @Option(help: "Replicas per stream and bucket (1 on one node, 3 on a cluster; default: the node configs', else 1).")
        var replicas: Int?
        @Option(help: "P, the number of symbol partitions (default 8). Recorded in qt_cluster/layout; changing it needs --repartition.")
        var partitions: Int = Partitioning.defaultCount
        @Option(name: .customLong("node-config"), help: "A node config of the deployment (repeat for each node).")
        var nodeConfigs: [String] = []
        @Flag(help: "Change P on a drained fleet: delete the partition durables and create new ones that start at the stream's end.")
        var repartition = false

        func run() async throws {
            try await reportingErrors {
                let configs = try nodeConfigs.map { try NodeConfig.load(path: $0, registry: BuiltInPlugins.registry) }
                let configured = Set(configs.map(\.replicas))
                guard configured.count <= 1 else {
                    throw ValidationError("the node configs disagree on replicas: \(configured.sorted())")
                }
                let bus = try connection.connect()
                defer { bus.close() }
                let results = try await DeploymentProvisioning.provision(
                    bus, replicas: replicas ?? configured.first ?? 1, partitions: partitions, configs: configs,
                    registry: BuiltInPlugins.registry, repartition: repartition)
                for result in results where result.kind != .consumer || result.action != .unchanged { printLine(result.description) }
                let durables = results.filter { $0.kind == .consumer }
                printLine("durables: \(durables.count) (\(durables.filter { $0.action == .created }.count) created, "
                          + "\(durables.filter { $0.action == .updated }.count) updated)")
            }
        }
    }

    struct List: AsyncParsableCommand {
        static let configuration = CommandConfiguration(commandName: "ls", abstract: "List streams with message counts.")
        @OptionGroup var connection: ConnectionArguments

        func run() async throws {
            try await reportingErrors {
                let bus = try connection.connect()
                defer { bus.close() }
                let streams = try await bus.streams()
                printLine(pad(["STREAM", "MESSAGES", "BYTES", "CONSUMERS", "REPLICAS", "SUBJECTS"]))
                for stream in streams {
                    printLine(pad([stream.name, String(stream.messages), String(stream.bytes), String(stream.consumerCount),
                                   String(stream.replicas), stream.subjects.joined(separator: " ")]))
                }
            }
        }
    }

    struct Info: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "A stream's subjects, messages, bytes, consumers (pending, ack pending) and cluster placement.")
        @OptionGroup var connection: ConnectionArguments
        @Argument(help: "Stream name, e.g. QT_MARKET.") var stream: String

        func run() async throws {
            try await reportingErrors {
                let bus = try connection.connect()
                defer { bus.close() }
                let info = try await bus.streamInfo(stream)
                printLine("stream:           \(info.name)")
                printLine("subjects:         \(info.subjects.joined(separator: ", "))")
                printLine("messages:         \(info.messages)")
                printLine("bytes:            \(info.bytes)")
                printLine("sequences:        \(info.firstSequence)…\(info.lastSequence)")
                printLine("max age:          \(info.maxAgeSeconds) s")
                printLine("duplicate window: \(info.duplicateWindowSeconds) s")
                printLine("replicas:         \(info.replicas)")
                if let cluster = info.cluster {
                    let peers = cluster.replicas.map { "\($0.name)\($0.current ? "" : " (behind \($0.lag))")\($0.offline ? " OFFLINE" : "")" }
                    printLine("cluster:          \(cluster.name.isEmpty ? "-" : cluster.name), leader \(cluster.leader)"
                              + (peers.isEmpty ? "" : ", replicas \(peers.joined(separator: ", "))"))
                }
                printLine("consumers:        \(info.consumers.count)")
                if !info.consumers.isEmpty {
                    printLine(pad(["  CONSUMER", "FILTER", "PENDING", "ACK PENDING", "REDELIVERED", "ACK FLOOR"]))
                    for consumer in info.consumers {
                        printLine(pad(["  " + consumer.name, consumer.filterSubject, String(consumer.numPending),
                                       String(consumer.numAckPending), String(consumer.numRedelivered),
                                       String(consumer.ackFloorStreamSequence)]))
                    }
                }
            }
        }
    }

    struct Tail: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Print a subject's messages as JSON lines, decoded through the schema (headers included).")
        @OptionGroup var connection: ConnectionArguments
        @Argument(help: "Subject or pattern, e.g. qt.market.kline.BTCUSDT or 'qt.plan.>'.") var subject: String
        @Option(help: "How many of the latest messages to print first.") var last: Int = 10
        @Flag(help: "Keep printing new messages until interrupted.") var follow = false
        @Flag(help: "Print payloads as base64 bytes instead of decoding them.") var raw = false

        func run() async throws {
            try await reportingErrors {
                let bus = try connection.connect()
                defer { bus.close() }
                let failures = Counter()
                try await bus.tail(subject, last: max(0, last), follow: follow) { message in
                    let rendered = MessageJSON.render(message, raw: raw)
                    if !rendered.decoded { failures.increment() }
                    printLine(rendered.json)
                    return true
                }
                if failures.value > 0 {
                    throw ValidationError("\(failures.value) message(s) could not be decoded (see their \"error\" field)")
                }
            }
        }
    }
}

final class Counter: Sendable {
    private let count = Atomic<Int>(0)
    var value: Int { count.load(ordering: .relaxed) }
    func increment() { count.add(1, ordering: .relaxed) }
}

/// Left-aligned columns for table output.
func pad(_ columns: [String], widths: [Int] = [28, 12, 12, 12, 12, 12]) -> String {
    columns.enumerated().map { index, text in
        index < widths.count && index < columns.count - 1
            ? text.padding(toLength: max(widths[index], text.count + 1), withPad: " ", startingAt: 0) : text
    }.joined()
}
