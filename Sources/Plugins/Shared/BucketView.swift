import Foundation
import Host
import Messages
import Synchronization

/// The keys of one bucket a plugin reads per message, in memory, kept current by a KV watch:
/// a read costs no round trip (issue 20: the trading state was read six times per entry, the
/// universe twice). A view may trail the bucket by a watch delivery (milliseconds); a gate
/// that must not act on that lag reads the bucket, and the compare-and-sets behind every order
/// (the ledger claim) stay the guard.
///
/// It fails closed, like a read of the bucket: a value that does not decode, holds an enum value
/// the schema does not know or breaks its field rules is held as unreadable (never a deletion,
/// never a default); when the watch ends (a closed connection, a server error) the view is stale,
/// and the next read starts a new watch and reloads before it answers; if that fails, the read
/// throws and the message waiting on it is retried rather than judged on old data.
final class BucketView<M: BusMessage>: Sendable {
    enum Held: Sendable {
        case value(M, revision: UInt64)
        case unreadable(String, revision: UInt64)
        case deleted(revision: UInt64)

        var revision: UInt64 {
            switch self {
            case .value(_, let revision), .unreadable(_, let revision), .deleted(let revision): return revision
            }
        }
    }

    private struct State {
        var values: [String: Held] = [:]
        var watch: KeyChanges<M>?
        var follower: Task<Void, Never>?
        var generation = 0
        var current = false
        var restarts = 0
        /// Counts every change the view took in (and every reload): equal counts, equal contents.
        var version = 0
        /// The key of each change after version `journalFrom`, oldest first: a reader that derived
        /// something at an earlier version updates only those keys. A reload or a prune starts it over.
        var journal: [(version: Int, key: String)] = []
        var journalFrom = 0
        /// The load under way: concurrent readers wait for it rather than each starting one
        /// (which would cancel the others' and never finish on a large bucket).
        var loading: Task<Void, Error>?
        /// Readers waiting for a key's first delivery (`awaitArrival`), by key and waiter.
        var arrivals: [String: [Int: CheckedContinuation<Void, Never>]] = [:]
        var nextWaiter = 0
    }

    let bucket: String
    /// What the watch asks the server for: one key, a pattern (`governor.>`), or nil for every key.
    private let watched: String?
    private let includes: @Sendable (String) -> Bool
    private let source: @Sendable (HandlerContext) async throws -> PluginKV
    private let state = Mutex(State())

    /// The keys of `bucket` for which `includes` is true (every key by default).
    convenience init(_ bucket: String, includes: @escaping @Sendable (String) -> Bool = { _ in true }) {
        self.init(bucket, watching: nil, includes: includes) { try await $0.kv(bucket) }
    }

    /// One key of `bucket`, watched alone (a key of a busy bucket such as `qt_state`).
    convenience init(_ bucket: String, key: String) {
        self.init(bucket, watching: key, includes: { $0 == key }) { try await $0.kv(bucket) }
    }

    private init(_ bucket: String, watching: String?, includes: @escaping @Sendable (String) -> Bool,
                 source: @escaping @Sendable (HandlerContext) async throws -> PluginKV) {
        self.bucket = bucket
        self.watched = watching
        self.includes = includes
        self.source = source
    }

    deinit {
        state.withLock { state in
            state.follower?.cancel()
            state.watch?.stop()
        }
    }

    /// How often a watch that ended was replaced (for tests and logs).
    var restarts: Int { state.withLock { $0.restarts } }

    /// Every key the view holds, current as of this read.
    func read(_ context: HandlerContext) async throws -> [String: Held] {
        try await readVersioned(context).values
    }

    /// Every key and the view's version: a caller that derives something from all of them (the
    /// ledger's scan) derives it again only when the version moved.
    func readVersioned(_ context: HandlerContext) async throws -> (values: [String: Held], version: Int) {
        try await ensureCurrent(context)
        return state.withLock { ($0.values, $0.version) }
    }

    /// Every key, the view's version, and the keys changed since `version` (nil when the journal
    /// no longer reaches back that far: a reload, a prune, or more changes than it keeps).
    func readChanges(since version: Int, _ context: HandlerContext) async throws -> (values: [String: Held], changed: [String]?, version: Int) {
        try await ensureCurrent(context)
        return state.withLock { state in
            guard version >= state.journalFrom, version <= state.version else { return (state.values, nil, state.version) }
            let newer = state.journal.reversed().prefix { $0.version > version }.map(\.key)
            return (state.values, newer, state.version)
        }
    }

    static var journalLimit: Int { 4_096 }

    /// One key, as `PluginKV.read` gives it.
    func read(_ key: String, _ context: HandlerContext) async throws -> KeyReading<M> {
        try await ensureCurrent(context)
        switch state.withLock({ $0.values[key] }) {
        case nil, .deleted: return .missing
        case .value(let value, let revision): return .value(value, revision: revision)
        case .unreadable(let why, _): return .unreadable(UnreadableValue(bucket: bucket, key: key, problem: why))
        }
    }

    /// What the view holds for `key`, deletions included.
    func held(_ key: String, _ context: HandlerContext) async throws -> Held? {
        try await ensureCurrent(context)
        return state.withLock { $0.values[key] }
    }

    /// One key from the view when `passes` accepts it; otherwise from the bucket, so a refusal is
    /// never caused by the view trailing a write it has not seen yet (a snapshot just renewed, a
    /// symbol just activated). The common case, passing, costs no round trip.
    func read(_ key: String, _ context: HandlerContext, confirmingUnless passes: (KeyReading<M>) -> Bool) async throws -> KeyReading<M> {
        let viewed = try await read(key, context)
        if passes(viewed) { return viewed }
        return try await context.kv(bucket).read(M.self, key)
    }

    private func ensureCurrent(_ context: HandlerContext) async throws {
        // The common case, a current view, is a lock and a flag: no bucket handle is looked up.
        if state.withLock({ $0.current }) { return }
        let kv = try await source(context)
        let loading = state.withLock { state -> Task<Void, Error>? in
            if state.current { return nil }
            if let running = state.loading { return running }
            let started = Task { try await self.load(kv) }
            state.loading = started
            return started
        }
        guard let loading else { return }
        defer { state.withLock { if $0.loading == loading { $0.loading = nil } } }
        try await loading.value
    }

    /// The watch starts before the reads, so no change falls between them; either may deliver a
    /// key first, and the higher revision wins. A stale view starts over from an empty map: a
    /// key deleted while no watch ran must not survive.
    private func load(_ kv: PluginKV) async throws {
        let watch = try await kv.changes(M.self, key: watched)
        let generation = state.withLock { state -> Int in
            state.follower?.cancel()
            state.watch?.stop()
            if state.generation > 0 { state.restarts += 1 }
            state.generation += 1
            state.values = [:]
            state.version += 1
            state.journal = []
            state.journalFrom = state.version
            state.watch = watch
            state.current = false
            return state.generation
        }
        let includes = includes
        let follower = Task.detached { [weak self] in
            for await change in watch where includes(change.key) {
                let held: Held
                if let value = change.value {
                    held = UnreadableValue.problem(value).map { .unreadable($0, revision: change.revision) } ?? .value(value, revision: change.revision)
                } else {
                    held = change.problem.map { .unreadable($0, revision: change.revision) } ?? .deleted(revision: change.revision)
                }
                self?.apply(change.key, held, generation: generation)
            }
            self?.watchEnded(generation: generation)
        }
        state.withLock { $0.follower = follower }
        do {
            var keys = [String]()
            if let watched, !watched.contains(where: { $0 == "*" || $0 == ">" }) { keys = [watched] } else { keys = try await kv.keys() }
            for key in keys where includes(key) {
                switch try await kv.read(M.self, key) {
                case .missing: break
                case .value(let value, let revision): apply(key, .value(value, revision: revision), generation: generation)
                // Unreadable values come at revision 0 here: the watch's copy, with its revision, replaces it.
                case .unreadable(let why): apply(key, .unreadable(why.problem, revision: 0), generation: generation)
                }
            }
        } catch {
            watch.stop()
            throw error
        }
        state.withLock { state in
            if state.generation == generation, state.watch != nil { state.current = true }
        }
    }

    /// A value this plugin just wrote at `revision`: the next read sees it even before the watch
    /// delivers it (a compare-and-set that succeeded implies the value).
    func remember(_ key: String, _ value: M, revision: UInt64) {
        let generation = state.withLock { $0.generation }
        apply(key, .value(value, revision: revision), generation: generation)
    }

    /// True when the view holds nothing for `key`, not even a deletion: a key that may still be on
    /// its way (a write that travels beside the message asking for it).
    func neverSaw(_ key: String) -> Bool {
        state.withLock { $0.values[key] == nil }
    }

    /// Returns once the view holds something for `key` (a value, a deletion, an unreadable value),
    /// the watch ends, or `timeoutNs` passes: resumed by the watch's delivery itself, so a key
    /// written beside the message asking for it costs no more than that delivery (sleeping in
    /// steps and reading again cost up to a step more, and a timer per step).
    func awaitArrival(of key: String, timeoutNs: UInt64) async {
        var timeout: Task<Void, Never>?
        await withCheckedContinuation { (continuation: CheckedContinuation<Void, Never>) in
            let waiter = state.withLock { state -> Int? in
                guard state.values[key] == nil, state.watch != nil else { return nil }
                state.nextWaiter += 1
                state.arrivals[key, default: [:]][state.nextWaiter] = continuation
                return state.nextWaiter
            }
            guard let waiter else { return continuation.resume() }
            // Started once the waiter is registered, so the timeout can never come first and be lost.
            timeout = Task {
                try? await Task.sleep(nanoseconds: timeoutNs)
                self.resumeArrival(of: key, waiter: waiter)
            }
        }
        timeout?.cancel()
    }

    private func resumeArrival(of key: String, waiter: Int) {
        let continuation = state.withLock { state -> CheckedContinuation<Void, Never>? in
            let found = state.arrivals[key]?.removeValue(forKey: waiter)
            if state.arrivals[key]?.isEmpty == true { state.arrivals[key] = nil }
            return found
        }
        continuation?.resume()
    }

    /// Drops the keys `removes` picks (deletions, values past their use) from a current view, so
    /// a bucket of short-lived keys does not grow the view without end. A key dropped and written
    /// again comes back with the watch, at its higher revision.
    func prune(removing removes: (String, Held) -> Bool) {
        state.withLock { state in
            guard state.current, state.loading == nil else { return }
            let before = state.values.count
            state.values = state.values.filter { !removes($0.key, $0.value) }
            if state.values.count != before {
                state.version += 1
                state.journal = []
                state.journalFrom = state.version
            }
        }
    }

    private func apply(_ key: String, _ held: Held, generation: Int) {
        let waiting = state.withLock { state -> [Int: CheckedContinuation<Void, Never>]? in
            guard state.generation == generation else { return nil }
            if let known = state.values[key], known.revision >= held.revision { return nil }
            state.values[key] = held
            state.version += 1
            state.journal.append((state.version, key))
            if state.journal.count > Self.journalLimit {
                state.journal.removeFirst(Self.journalLimit / 2)
                state.journalFrom = state.journal[0].version - 1
            }
            return state.arrivals.removeValue(forKey: key)
        }
        waiting?.values.forEach { $0.resume() }
    }

    private func watchEnded(generation: Int) {
        let waiting = state.withLock { state -> [CheckedContinuation<Void, Never>] in
            guard state.generation == generation else { return [] }
            state.current = false
            state.watch = nil
            defer { state.arrivals = [:] }
            return state.arrivals.values.flatMap(\.values)
        }
        waiting.forEach { $0.resume() }
    }
}

/// A plugin's own `qt_state` keys named `<plugin>.<prefix>…`, for state read before a
/// compare-and-set (`saveState` at the revision read): a view that trails makes that write fail,
/// and the caller reads the bucket (`loadState`) and tries again. Per-symbol state costs one write
/// per message instead of a read and a write.
extension BucketView where M == PluginState {
    static func ownState(of plugin: String, prefix: String) -> BucketView<PluginState> {
        let keys = "\(plugin).\(prefix)"
        return BucketView("qt_state", watching: "\(plugin).>", includes: { $0.hasPrefix(keys) }) { try await $0.stateReader() }
    }

    /// `loadState(name)`, from the view.
    func state(_ name: String, _ context: HandlerContext) async throws -> (state: PluginState, revision: UInt64)? {
        switch try await read("\(context.plugin).\(name)", context) {
        case .missing: return nil
        case .value(let state, let revision): return (state, revision)
        case .unreadable(let why): throw why
        }
    }

    /// `loadState(name)` from the view, with the revision a write of it must expect: the value's,
    /// a delete marker's (the key is gone but its stream still holds the marker), or 0 for a key
    /// never written.
    func stateForWrite(_ name: String, _ context: HandlerContext) async throws -> (state: PluginState?, revision: UInt64) {
        switch try await held("\(context.plugin).\(name)", context) {
        case nil: return (nil, 0)
        case .deleted(let revision): return (nil, revision)
        case .value(let state, let revision): return (state, revision)
        case .unreadable(let why, _): throw UnreadableValue(bucket: bucket, key: "\(context.plugin).\(name)", problem: why)
        }
    }

    /// `saveState(name, …)`, remembered by the view.
    func save(_ name: String, _ state: PluginState, expectedRevision: UInt64, _ context: HandlerContext) async throws -> UInt64 {
        let revision = try await context.saveState(name, state, expectedRevision: expectedRevision)
        var stamped = state
        stamped.plugin = context.plugin
        stamped.name = name
        remember("\(context.plugin).\(name)", stamped, revision: revision)
        return revision
    }
}
