import Foundation
import Synchronization
import Host
import Messages

/// The whole ledger in memory, kept current by a KV watch, for gates that need every position
/// per message (the governor's open notional, the portfolio gate's occupied slots). Scanning
/// the bucket instead costs one KV read per symbol per message: with 566 symbols that was most
/// of an entry's latency. A view may trail the bucket by a watch delivery (milliseconds); both
/// uses tolerate that: the notional cap is a cap on sizing, and an entry slot stays held by its
/// permit until the ledger shows the position.
///
/// It fails closed: a value that does not decode is held as unreadable (never read as a
/// deletion), and when the watch ends (a closed connection, a server error) the view is stale:
/// the next read starts a new watch and reloads the bucket before it answers, and if that
/// fails the read throws, so the entry waiting on it is retried rather than sized on old data.
/// Only entries read the view; exits read their symbol's entry from the bucket.
public final class LedgerView: Sendable {
    private enum Value {
        case entry(LedgerEntry)
        case undecodable(String)
        case deleted
    }

    private struct State {
        var values: [String: (value: Value, revision: UInt64)] = [:]
        var watch: KeyChanges<LedgerEntry>?
        var follower: Task<Void, Never>?
        var generation = 0
        var current = false
        var restarts = 0
    }

    private let state = Mutex(State())

    public init() {}

    deinit {
        state.withLock { state in
            state.follower?.cancel()
            state.watch?.stop()
        }
    }

    /// How often a watch that ended was replaced (for tests and logs).
    public var restarts: Int { state.withLock { $0.restarts } }

    /// The ledger as the view holds it: every readable entry, the open positions, the claimed
    /// symbols, and each unreadable entry (undecodable, or a field that does not parse).
    public func read(_ ledger: PluginKV) async throws -> LedgerReading {
        if !state.withLock({ $0.current }) { try await load(ledger) }
        let (entries, undecodable) = state.withLock { state in
            var entries: [(symbol: String, entry: LedgerEntry, revision: UInt64)] = []
            var undecodable: [String: String] = [:]
            for (key, held) in state.values {
                switch held.value {
                case .entry(let entry): entries.append((key, entry, held.revision))
                case .undecodable(let why): undecodable[key] = why
                case .deleted: break
                }
            }
            return (entries.sorted { $0.symbol < $1.symbol }, undecodable)
        }
        var scan = LedgerPosition.scan(entries)
        scan.unreadable.merge(undecodable) { parsed, _ in parsed }
        return LedgerReading(entries: entries, scan: scan)
    }

    /// The watch starts before the scan, so no change falls between them; either may deliver a
    /// key first, and the higher revision wins. A stale view starts over from an empty map: a
    /// key deleted while no watch ran must not survive.
    private func load(_ ledger: PluginKV) async throws {
        let watch = try await ledger.changes(LedgerEntry.self)
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
        let follower = Task.detached { [weak self] in
            for await change in watch {
                let value: Value = change.value.map { .entry($0) } ?? change.problem.map { .undecodable($0) } ?? .deleted
                self?.apply(change.key, value, revision: change.revision, generation: generation)
            }
            self?.watchEnded(generation: generation)
        }
        state.withLock { $0.follower = follower }
        do {
            for key in try await ledger.keys() {
                do {
                    if let found = try await ledger.get(LedgerEntry.self, key) {
                        apply(key, .entry(found.value), revision: found.revision, generation: generation)
                    }
                } catch {
                    apply(key, .undecodable("\(error)"), revision: 0, generation: generation)
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

    private func apply(_ key: String, _ value: Value, revision: UInt64, generation: Int) {
        state.withLock { state in
            guard state.generation == generation else { return }
            // An entry `get` could not decode comes with revision 0: the watch's copy replaces it.
            if let known = state.values[key], known.revision >= revision { return }
            state.values[key] = (value, revision)
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

/// One read of a `LedgerView`.
public struct LedgerReading: Sendable {
    public let entries: [(symbol: String, entry: LedgerEntry, revision: UInt64)]
    /// Open positions, and the entries that cannot be read (held, never read as flat).
    public let scan: LedgerScan

    /// Symbols whose entry holds a claim (an order in flight).
    public var claimed: Set<String> { Set(entries.filter { !$0.entry.pendingClientOrderID.isEmpty }.map(\.symbol)) }

    /// Symbols a position, a claim or an unreadable entry occupies.
    public var occupied: Set<String> { Set(scan.open.map(\.symbol)).union(claimed).union(scan.unreadable.keys) }
}
