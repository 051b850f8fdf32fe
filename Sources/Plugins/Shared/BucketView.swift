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
        /// The load under way: concurrent readers wait for it rather than each starting one
        /// (which would cancel the others' and never finish on a large bucket).
        var loading: Task<Void, Error>?
    }

    let bucket: String
    /// The one key watched (the server sends only its changes), or nil: every key `includes` takes.
    private let key: String?
    private let includes: @Sendable (String) -> Bool
    private let state = Mutex(State())

    /// The keys of `bucket` for which `includes` is true (every key by default).
    init(_ bucket: String, includes: @escaping @Sendable (String) -> Bool = { _ in true }) {
        self.bucket = bucket
        self.key = nil
        self.includes = includes
    }

    /// One key of `bucket`, watched alone (a key of a busy bucket such as `qt_state`).
    init(_ bucket: String, key: String) {
        self.bucket = bucket
        self.key = key
        self.includes = { $0 == key }
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
        try await ensureCurrent(context)
        return state.withLock { $0.values }
    }

    /// One key, as `PluginKV.read` gives it.
    func read(_ key: String, _ context: HandlerContext) async throws -> KeyReading<M> {
        try await ensureCurrent(context)
        switch state.withLock({ $0.values[key] }) {
        case nil, .deleted: return .missing
        case .value(let value, let revision): return .value(value, revision: revision)
        case .unreadable(let why, _): return .unreadable(UnreadableValue(bucket: bucket, key: key, problem: why))
        }
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
        let kv = try await context.kv(bucket)
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
        let watch = try await kv.changes(M.self, key: key)
        let generation = state.withLock { state -> Int in
            state.follower?.cancel()
            state.watch?.stop()
            if state.generation > 0 { state.restarts += 1 }
            state.generation += 1
            state.values = [:]
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
            if let watched = self.key { keys = [watched] } else { keys = try await kv.keys() }
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

    private func apply(_ key: String, _ held: Held, generation: Int) {
        state.withLock { state in
            guard state.generation == generation else { return }
            if let known = state.values[key], known.revision >= held.revision { return }
            state.values[key] = held
        }
    }

    private func watchEnded(generation: Int) {
        state.withLock { state in
            guard state.generation == generation else { return }
            state.current = false
            state.watch = nil
        }
    }
}
