import Synchronization

/// The server round trips one user of the Bus made (a plugin, in the host), by kind: what a
/// trade costs in NATS requests (issue 20). Bus handles opened with a counter count themselves:
/// a KV bucket its reads (get, keys, history) and writes (put, create, update, delete), a
/// consumer its fetches that brought messages (an idle fetch that times out costs waiting, not
/// work), a publisher each batch whose PubAcks it awaits (the messages of a batch travel together:
/// one round trip). Watches are not counted: they are one subscription, not a request per read.
public final class BusOperationCounter: Sendable {
    public enum Kind: String, CaseIterable, Sendable {
        case kvRead = "kv_read"
        case kvWrite = "kv_write"
        case publish
        case fetch
    }

    private let counts = Mutex<[Kind: Int]>([:])
    private let observer: (@Sendable (Kind, Int) -> Void)?

    /// `observer` sees every count as it happens (the host turns them into metrics).
    public init(observer: (@Sendable (Kind, Int) -> Void)? = nil) {
        self.observer = observer
    }

    public func add(_ kind: Kind, _ amount: Int = 1) {
        counts.withLock { $0[kind, default: 0] += amount }
        observer?(kind, amount)
    }

    public func count(_ kind: Kind) -> Int { counts.withLock { $0[kind] ?? 0 } }

    /// Every kind's count so far.
    public var snapshot: [Kind: Int] { counts.withLock { $0 } }

    /// KV reads and writes, publishes and fetches together.
    public var roundTrips: Int { counts.withLock { $0.values.reduce(0, +) } }
}
