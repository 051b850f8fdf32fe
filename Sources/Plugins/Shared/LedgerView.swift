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
public final class LedgerView: Sendable {
    private struct State {
        var entries: [String: (entry: LedgerEntry?, revision: UInt64)] = [:]
        var watch: KeyChanges<LedgerEntry>?
        var follower: Task<Void, Never>?
        var loaded = false
    }

    private let state = Mutex(State())

    public init() {}

    deinit {
        state.withLock { state in
            state.follower?.cancel()
            state.watch?.stop()
        }
    }

    /// Every key's latest entry with its revision (deleted keys left out).
    public func current(_ ledger: PluginKV) async throws -> [(symbol: String, entry: LedgerEntry, revision: UInt64)] {
        if !state.withLock({ $0.loaded }) { try await load(ledger) }
        return state.withLock {
            $0.entries.compactMap { key, value in value.entry.map { (key, $0, value.revision) } }.sorted { $0.symbol < $1.symbol }
        }
    }

    /// Open positions and unreadable entries, as `LedgerPosition.scan` reads them from the bucket.
    public func scan(_ ledger: PluginKV) async throws -> LedgerScan {
        LedgerPosition.scan(try await current(ledger))
    }

    /// The watch starts before the scan, so no change falls between them; either may deliver a
    /// key first, and the higher revision wins.
    private func load(_ ledger: PluginKV) async throws {
        let watch = try await ledger.changes(LedgerEntry.self)
        let follower = Task.detached { [weak self] in
            for await change in watch {
                self?.apply(change.key, change.value, revision: change.revision)
            }
        }
        for key in try await ledger.keys() {
            if let found = try await ledger.get(LedgerEntry.self, key) { apply(key, found.value, revision: found.revision) }
        }
        let replaced = state.withLock { state in
            defer { (state.watch, state.follower, state.loaded) = (watch, follower, true) }
            return (state.watch, state.follower)
        }
        replaced.1?.cancel()
        replaced.0?.stop()
    }

    private func apply(_ key: String, _ entry: LedgerEntry?, revision: UInt64) {
        state.withLock { state in
            if let known = state.entries[key], known.revision >= revision { return }
            state.entries[key] = (entry, revision)
        }
    }
}
