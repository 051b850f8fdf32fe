import Messages

/// A durable pull consumer: `<plugin>__<input>` on one stream, explicit ack (DESIGN.md §3.3);
/// `<plugin>__<input>__p<k>` for partition k of a keyed input.
public struct ConsumerSpec: Sendable, Equatable {
    public let durable: String
    /// The logical filter (`qt.market.kline.*`), as plugins declare it.
    public let filterSubject: String
    /// The partition of a keyed input this durable reads; nil reads every partition.
    public let partition: Int?
    /// The filter the server applies: a keyed filter with the partition token (or `*`).
    public let wireFilterSubject: String
    public let stream: String
    /// The message type the filter's subjects carry (R1).
    public let typeName: String
    public var ackWaitMs: Int64 = 30_000
    public var maxAckPending: Int64 = 10_000
    /// How many messages one pull request asks for; small enough that two batches (the one handled
    /// and the one the open request brings meanwhile) finish inside AckWait.
    public var fetchBatch: Int = 64
    /// How long one pull request stays open (its `expires`): a partition's owner sends one only
    /// while its lease outlives it, and a clean stop waits for it to end before it NAKs. Longer
    /// means fewer requests (at 20 intents/s over 8 partitions a hop's durable sees 2.5 messages a
    /// second), shorter a quicker hand-off.
    public var fetchTimeoutMs: Int64 = 2_000
    /// Created to read only messages stored after it (a new partition durable after a drained
    /// change of P); otherwise a new durable reads the stream from its start.
    public var deliverNewOnly = false
    /// Created to read only messages stored at most this long before it (wall clock): a new
    /// durable for intents or plans must not act on days of history. Nil reads from the start.
    public var replayWithinMs: Int64?

    public init(durable: String, filterSubject: String, partition: Int? = nil) throws {
        guard ConsumerSpec.isValidName(durable) else {
            throw BusError.invalidArgument("consumer name \"\(durable)\": use letters, digits, '-' and '_' only")
        }
        guard let route = Topology.route(forFilter: filterSubject) else { throw BusError.unknownSubject(filterSubject) }
        if partition != nil && !route.keyed {
            throw BusError.invalidArgument("consumer \(durable): \(filterSubject) is not keyed by symbol, so it has no partitions")
        }
        self.durable = durable
        self.filterSubject = filterSubject
        self.partition = partition
        self.wireFilterSubject = Partitioning.wireFilter(filterSubject, partition: partition)
        self.stream = route.stream
        self.typeName = route.typeName
    }

    /// `<plugin>__<input>`, or `<plugin>__<input>__p<k>` for one partition.
    public init(plugin: String, input: String, filterSubject: String, partition: Int? = nil) throws {
        try self.init(durable: Self.durableName(plugin: plugin, input: input, partition: partition),
                      filterSubject: filterSubject, partition: partition)
    }

    public static func durableName(plugin: String, input: String, partition: Int?) -> String {
        "\(plugin)__\(input)" + (partition.map { "__" + Partitioning.token($0) } ?? "")
    }

    public static func isValidName(_ name: String) -> Bool {
        !name.isEmpty && name.allSatisfy { $0.isASCII && ($0.isLetter || $0.isNumber || $0 == "-" || $0 == "_") }
    }
}
