/// Keyed partitions (DESIGN.md §3.3): the symbols are divided into P partitions, and each
/// (plugin, input, partition) has its own durable, owned by one host at a time.
///
/// The function is fixed: partition = FNV-1a 32 of the symbol's UTF-8 bytes, modulo P (the same
/// hash nats-server's `partition()` subject mapping uses, so a later move to server-side mapping
/// keeps every symbol where it is). Changing P moves symbols; it is a drain-and-migrate step
/// (docs/operations.md), never a silent remap.
///
/// On the wire a keyed subject carries its partition as one more token after the symbol:
/// `qt.market.kline.BTCUSDT` travels as `qt.market.kline.BTCUSDT.p5`. Publishers and consumers
/// speak the logical subject; the Bus adds the token when it publishes and strips it when it
/// delivers, and a filter by symbol becomes `qt.market.kline.BTCUSDT.*`.
public struct Partitioning: Sendable, Equatable, CustomStringConvertible {
    public static let defaultCount = 8
    public static let maximumCount = 1024

    /// P.
    public let count: Int

    public init(count: Int) throws {
        guard (1...Self.maximumCount).contains(count) else { throw PartitioningError.invalidCount(count) }
        self.count = count
    }

    public var description: String { "\(count) partitions" }

    public var all: Range<Int> { 0..<count }

    public func partition(of symbol: String) -> Int {
        Int(Self.fnv1a32(symbol) % UInt32(count))
    }

    public static func fnv1a32(_ text: String) -> UInt32 {
        var hash: UInt32 = 2_166_136_261
        for byte in text.utf8 {
            hash ^= UInt32(byte)
            hash = hash &* 16_777_619
        }
        return hash
    }

    public static func token(_ partition: Int) -> String { "p\(partition)" }

    /// The subject as published: a keyed subject gets its symbol's partition token.
    public func wireSubject(_ logical: String) -> String {
        guard Topology.route(for: logical)?.keyed == true, let dot = logical.lastIndex(of: ".") else { return logical }
        return logical + "." + Self.token(partition(of: String(logical[logical.index(after: dot)...])))
    }

    /// The subject as consumers and tools see it: the partition token removed. Any other subject
    /// is returned as it is.
    public static func logicalSubject(_ wire: String) -> String {
        guard let dot = wire.lastIndex(of: "."), isToken(wire[wire.index(after: dot)...]) else { return wire }
        let logical = String(wire[..<dot])
        return Topology.route(for: logical)?.keyed == true ? logical : wire
    }

    /// The partition a wire subject carries, if it is keyed.
    public static func partition(ofWireSubject wire: String) -> Int? {
        guard let dot = wire.lastIndex(of: "."), logicalSubject(wire) != wire else { return nil }
        return Int(wire[wire.index(after: dot)...].dropFirst())
    }

    /// A consumer or tail filter: a filter inside a keyed route gets the token of `partition`, or a
    /// wildcard for every partition (so a filter by symbol needs no P). Other filters, `>` ones
    /// included, are returned as they are.
    public static func wireFilter(_ logicalFilter: String, partition: Int? = nil) -> String {
        guard !logicalFilter.hasSuffix(">"), let route = Topology.route(forFilter: logicalFilter), route.keyed,
              SubjectPattern(logicalFilter).isCovered(by: route.pattern) else { return logicalFilter }
        return logicalFilter + "." + (partition.map(token) ?? "*")
    }

    private static func isToken(_ text: Substring) -> Bool {
        text.count >= 2 && text.first == "p" && text.dropFirst().allSatisfy(\.isASCII) && text.dropFirst().allSatisfy(\.isNumber)
    }
}

public enum PartitioningError: Error, CustomStringConvertible {
    case invalidCount(Int)

    public var description: String {
        switch self {
        case .invalidCount(let count):
            return "partitions \(count): expected 1 to \(Partitioning.maximumCount)"
        }
    }
}
