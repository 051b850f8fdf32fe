package import Bus
import Messages

/// What a watchdog plugin (sentinel) may see of the bus without touching libnats: dead letters,
/// consumer backlogs and the fleet's topology. Read-only.
public struct FleetObservation: Sendable {
    public struct Consumer: Sendable, Equatable {
        public let stream: String
        public let name: String
        /// Messages not yet delivered to the consumer.
        public let pending: UInt64
        public let ackPending: Int64
        public let redelivered: Int64
    }

    /// How full a stream or bucket is against its byte limit.
    public struct Storage: Sendable, Equatable {
        public let stream: String
        public let bytes: UInt64
        /// -1 when it has none.
        public let maxBytes: Int64

        public init(stream: String, bytes: UInt64, maxBytes: Int64) {
            self.stream = stream
            self.bytes = bytes
            self.maxBytes = maxBytes
        }

        /// bytes / max_bytes, or nil without a limit.
        public var fill: Double? { maxBytes > 0 ? Double(bytes) / Double(maxBytes) : nil }
    }

    /// Messages in `QT_DLQ`.
    public let deadLetters: UInt64
    /// The KV buckets (`KV_qt_ledger`, …): they refuse writes at their limit rather than discard
    /// (the ledger and the orders must never lose a value), so the sentinel watches how full they are.
    public let storage: [Storage]
    public let consumers: [Consumer]
    public let topologyProblems: [TopologyProblem]
    /// Partition owners and the live hosts (DESIGN.md §3.3).
    public let partitions: PartitionView
}

extension HandlerContext {
    public func observeFleet() async throws -> FleetObservation { try await scope.backend.observeFleet() }
}

extension FleetObservation {
    /// Every bucket: all of them refuse writes at their limit.
    static var watchedBuckets: [String] { Topology.buckets.map(\.name) }

    static func read(_ bus: BusConnection) async throws -> FleetObservation {
        var deadLetters: UInt64 = 0
        var consumers: [FleetObservation.Consumer] = []
        for stream in Topology.streams {
            let summary: StreamSummary
            do {
                summary = try await bus.streamInfo(stream.name)
            } catch BusError.notFound {
                continue  // the topology check reports a missing stream
            }
            if stream.name == "QT_DLQ" { deadLetters = summary.messages }
            consumers += summary.consumers.map {
                FleetObservation.Consumer(stream: stream.name, name: $0.name, pending: $0.numPending, ackPending: $0.numAckPending,
                                          redelivered: $0.numRedelivered)
            }
        }
        var storage: [Storage] = []
        for bucket in watchedBuckets {
            guard let summary = try? await bus.streamInfo("KV_" + bucket) else { continue }
            storage.append(Storage(stream: summary.name, bytes: summary.bytes, maxBytes: summary.maxBytes))
        }
        let partitions = try await PartitionView.read(bus)
        let problems = TopologyCheck.problems(in: partitions.hosts)
        return FleetObservation(deadLetters: deadLetters, storage: storage, consumers: consumers, topologyProblems: problems,
                                partitions: partitions)
    }
}
