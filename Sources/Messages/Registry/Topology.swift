import Foundation
import Synchronization

/// The bus as data (DESIGN.md §3.1–3.2): which stream owns which subjects, which message type
/// each subject carries, and the KV buckets. The one place publishers, consumers, provisioning,
/// the topology check and the CLI look these up.
public enum Topology {
    public static let duplicateWindowSeconds: Int64 = 120

    /// Every stream and bucket has a byte limit (issue 17), so one flood cannot fill the disk
    /// under the others. Streams discard their oldest messages at the limit; buckets refuse new
    /// writes (KV semantics), so the ledger and the orders never lose a value: the sentinel
    /// alerts at 80 % of a bucket's limit instead. JetStream reserves these against the server's
    /// `max_file_store` (per replica): about 2.6 GiB in all, so a server needs at least that.
    static let mib: Int64 = 1 << 20
    static let gib: Int64 = 1 << 30

    public static let streams: [StreamSpec] = [
        StreamSpec(name: "QT_MARKET", maxAgeSeconds: 48 * hour, maxBytes: 1 * gib, routes: [
            Route.keyed("qt.market.kline.*", Kline.self),
            Route.keyed("qt.market.state.*", MarketState.self),
        ]),
        StreamSpec(name: "QT_SIGNAL", maxAgeSeconds: 7 * day, maxBytes: 128 * mib, routes: [
            Route.keyed("qt.signal.intent.*", TradeIntent.self),
        ]),
        StreamSpec(name: "QT_EXIT", maxAgeSeconds: 7 * day, maxBytes: 128 * mib, routes: [
            Route.keyed("qt.harvest.proposed.*", HarvestProposal.self),
            Route.keyed("qt.harvest.calibrated.*", CalibratedProposal.self),
        ]),
        StreamSpec(name: "QT_PLAN", maxAgeSeconds: 30 * day, maxBytes: 128 * mib, routes: [
            Route.keyed("qt.plan.proposed.*", Plan.self),
            Route.keyed("qt.plan.sized.*", Plan.self),
            Route.keyed("qt.plan.approved.*", Plan.self),
        ]),
        StreamSpec(name: "QT_EXEC", maxAgeSeconds: 400 * day, maxBytes: 256 * mib, routes: [
            Route.keyed("qt.exec.result.*", OrderResult.self),
            Route.keyed("qt.exec.fill.*", Fill.self),
        ]),
        StreamSpec(name: "QT_AUDIT", maxAgeSeconds: 30 * day, maxBytes: 256 * mib, routes: [
            Route("qt.decision.*.*", Decision.self),
            Route("qt.alert.*", Alert.self),
        ]),
        StreamSpec(name: "QT_DLQ", maxAgeSeconds: 30 * day, maxBytes: 128 * mib, routes: [
            Route("qt.dlq.*", DeadLetter.self),
        ]),
        // Carries the live subject's type: resolved by stripping the prefix (see `route(for:)`).
        StreamSpec(name: "QT_SHADOW", maxAgeSeconds: 7 * day, maxBytes: 64 * mib, routes: [], extraSubjects: ["qt.shadow.>"]),
    ]

    public static let buckets: [BucketSpec] = [
        BucketSpec(name: "qt_ledger", maxBytes: 32 * mib, history: 64, ttlSeconds: 0, valueType: LedgerEntry.self),
        BucketSpec(name: "qt_snapshot", maxBytes: 16 * mib, history: 1, ttlSeconds: 0, valueType: PositionSnapshot.self,
                   keyTypes: ["_account": AccountSnapshot.self]),
        BucketSpec(name: "qt_marketstate", maxBytes: 32 * mib, history: 1, ttlSeconds: 0, valueType: MarketState.self),
        BucketSpec(name: "qt_universe", maxBytes: 16 * mib, history: 64, ttlSeconds: 0, valueType: Universe.self),
        BucketSpec(name: "qt_permits", maxBytes: 8 * mib, history: 1, ttlSeconds: 60, valueType: Permit.self),
        // No TTL: an unfinished record must outlive any outage (the executor's recovery removes
        // finished records after a day; an expired SENT record would lose its fill).
        BucketSpec(name: "qt_orders", maxBytes: 128 * mib, history: 1, ttlSeconds: 0, valueType: OrderRecord.self),
        BucketSpec(name: "qt_state", maxBytes: 256 * mib, history: 8, ttlSeconds: 0, valueType: PluginState.self),
        BucketSpec(name: "qt_control", maxBytes: 8 * mib, history: 64, ttlSeconds: 0, valueType: Control.self),
        BucketSpec(name: "qt_hosts", maxBytes: 8 * mib, history: 1, ttlSeconds: 30, valueType: HostInfo.self),
        BucketSpec(name: "qt_leases", maxBytes: 8 * mib, history: 1, ttlSeconds: 15, valueType: Lease.self),
        BucketSpec(name: "qt_cluster", maxBytes: 8 * mib, history: 16, ttlSeconds: 0, valueType: ClusterLayout.self),
    ]

    /// The stream and message type of a concrete subject; shadow subjects resolve to their live
    /// subject's type and the shadow stream. `nil` when no stream owns the subject.
    /// Every publish asks this, so answers are cached per subject (symbols × patterns: small).
    public static func route(for subject: String) -> ResolvedRoute? {
        if let cached = routeCache.lookup(subject) { return cached }
        let resolved = resolveRoute(for: subject)
        if let resolved { routeCache.store(subject, resolved) }
        return resolved
    }

    private static let routeCache = RouteCache()

    private static func resolveRoute(for subject: String) -> ResolvedRoute? {
        if subject.hasPrefix(Subjects.shadowPrefix) {
            let live = String(subject.dropFirst(Subjects.shadowPrefix.count))
            guard let liveRoute = route(for: live) else { return nil }
            return ResolvedRoute(stream: "QT_SHADOW", pattern: SubjectPattern("qt.shadow." + liveRoute.pattern.pattern),
                                 messageType: liveRoute.messageType, keyed: liveRoute.keyed)
        }
        for stream in streams {
            for route in stream.routes where route.pattern.matches(subject) {
                return ResolvedRoute(stream: stream.name, pattern: route.pattern, messageType: route.messageType,
                                     keyed: route.keyed)
            }
        }
        return nil
    }

    /// The routes whose pattern overlaps a subscription filter (a filter may be narrower, such as
    /// one symbol, or equal to a route's pattern).
    public static func route(forFilter filter: String) -> ResolvedRoute? {
        if let exact = route(for: filter) { return exact }
        let pattern = SubjectPattern(filter)
        for stream in streams {
            for route in stream.routes where pattern.isCovered(by: route.pattern) {
                return ResolvedRoute(stream: stream.name, pattern: route.pattern, messageType: route.messageType,
                                     keyed: route.keyed)
            }
        }
        return nil
    }

    public static func stream(named name: String) -> StreamSpec? {
        streams.first { $0.name == name }
    }

    public static func bucket(named name: String) -> BucketSpec? {
        buckets.first { $0.name == name }
    }

    private static let hour: Int64 = 3600
    private static let day: Int64 = 86_400
}

private final class RouteCache: Sendable {
    private let routes = Mutex<[String: ResolvedRoute]>([:])
    private let limit = 50_000

    func lookup(_ subject: String) -> ResolvedRoute? {
        routes.withLock { $0[subject] }
    }

    func store(_ subject: String, _ route: ResolvedRoute) {
        routes.withLock { routes in
            if routes.count >= limit { routes.removeAll(keepingCapacity: true) }
            routes[subject] = route
        }
    }
}

public struct Route: Sendable {
    public let pattern: SubjectPattern
    public let messageType: any BusMessage.Type
    /// The pattern's last token is a symbol, and consumers read it per partition (DESIGN.md §3.3):
    /// on the wire the subject carries the symbol's partition token after the symbol.
    public let keyed: Bool

    public init(_ pattern: String, _ messageType: any BusMessage.Type, keyed: Bool = false) {
        self.pattern = SubjectPattern(pattern)
        self.messageType = messageType
        self.keyed = keyed
    }

    public static func keyed(_ pattern: String, _ messageType: any BusMessage.Type) -> Route {
        Route(pattern, messageType, keyed: true)
    }

    /// What the stream listens on: keyed subjects with their partition token.
    public var streamSubject: String { keyed ? pattern.pattern + ".*" : pattern.pattern }

    public var typeName: String { messageType.protoMessageName }
}

public struct ResolvedRoute: Sendable {
    public let stream: String
    public let pattern: SubjectPattern
    public let messageType: any BusMessage.Type
    public let keyed: Bool

    public var typeName: String { messageType.protoMessageName }
}

public struct StreamSpec: Sendable {
    public let name: String
    public let maxAgeSeconds: Int64
    public let maxBytes: Int64
    public let routes: [Route]
    public let subjects: [String]

    public init(name: String, maxAgeSeconds: Int64, maxBytes: Int64, routes: [Route], extraSubjects: [String] = []) {
        self.name = name
        self.maxAgeSeconds = maxAgeSeconds
        self.maxBytes = maxBytes
        self.routes = routes
        self.subjects = routes.map(\.streamSubject) + extraSubjects
    }
}

public struct BucketSpec: Sendable {
    public let name: String
    public let maxBytes: Int64
    public let history: Int
    /// 0 = values do not expire. Server 2.9 has per-bucket TTL only (DESIGN.md §11).
    public let ttlSeconds: Int64
    public let valueType: any BusMessage.Type
    /// Keys whose value has another type than `valueType` (`qt_snapshot/_account`).
    public let keyTypes: [String: any BusMessage.Type]

    public init(name: String, maxBytes: Int64, history: Int, ttlSeconds: Int64, valueType: any BusMessage.Type,
                keyTypes: [String: any BusMessage.Type] = [:]) {
        self.name = name
        self.maxBytes = maxBytes
        self.history = history
        self.ttlSeconds = ttlSeconds
        self.valueType = valueType
        self.keyTypes = keyTypes
    }

    public func valueType(forKey key: String) -> any BusMessage.Type {
        keyTypes[key] ?? valueType
    }
}
