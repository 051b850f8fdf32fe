import Messages

/// A durable pull consumer: `<plugin>__<input>` on one stream, explicit ack (DESIGN.md §3.3).
public struct ConsumerSpec: Sendable, Equatable {
    public let durable: String
    public let filterSubject: String
    public let stream: String
    /// The message type the filter's subjects carry (R1).
    public let typeName: String
    public var ackWaitMs: Int64 = 30_000
    public var maxAckPending: Int64 = 10_000
    /// How many messages one fetch asks for; small enough that a batch finishes inside AckWait.
    public var fetchBatch: Int = 64
    /// How long one fetch waits for the first message.
    public var fetchTimeoutMs: Int64 = 500
    /// Fetch the next batch while this one is handled (at most one batch ahead), so the fetch
    /// round trip overlaps with work. Two batches, not one, must then finish inside AckWait.
    public var prefetch = false

    public init(durable: String, filterSubject: String) throws {
        guard ConsumerSpec.isValidName(durable) else {
            throw BusError.invalidArgument("consumer name \"\(durable)\": use letters, digits, '-' and '_' only")
        }
        guard let route = Topology.route(forFilter: filterSubject) else { throw BusError.unknownSubject(filterSubject) }
        self.durable = durable
        self.filterSubject = filterSubject
        self.stream = route.stream
        self.typeName = route.typeName
    }

    /// `<plugin>__<input>`.
    public init(plugin: String, input: String, filterSubject: String) throws {
        try self.init(durable: "\(plugin)__\(input)", filterSubject: filterSubject)
    }

    public static func isValidName(_ name: String) -> Bool {
        !name.isEmpty && name.allSatisfy { $0.isASCII && ($0.isLetter || $0.isNumber || $0 == "-" || $0 == "_") }
    }
}
