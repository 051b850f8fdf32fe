import Foundation
import Host
import Messages
import Synchronization

/// One `qt_state` key shared by every host running a plugin, rewritten by compare-and-set: read,
/// decide, write; on a conflict (another host wrote first) read again, up to `attempts` rounds, then
/// leave it to the input's redelivery. `decide` returns the new state (nil: nothing to write) and
/// what the caller gets back.
///
/// What this host wrote last is kept and the next round starts from it instead of a read (a
/// compare-and-set that succeeded implies the value); another host's write in between fails the
/// compare-and-set, and that round reads. A refusal (`decide` throws) or "nothing to write" is
/// never judged on the kept value alone: the round is repeated on a fresh read first.
///
/// Rounds on one name take turns within this process: handlers running at once would otherwise
/// all read the same revision and all but one lose the compare-and-set (eight losses in a row
/// for one plan at 50 entries/s). Taking turns, each round starts from the value the previous
/// one wrote, and only another host's write costs a retry.
final class StateRounds: Sendable {
    static let attempts = 8

    private let written = Mutex<[String: (state: PluginState, revision: UInt64)]>([:])
    private let turns = Turns()

    /// `alongside` is another write that must land with this one and does not depend on it: it
    /// starts once, as the first decided compare-and-set goes out, so the two round trips overlap
    /// (with nothing to write, it runs after). A refusal before that skips it; one in a later round
    /// (another host wrote first) comes after it has landed. It is awaited before `rewrite` returns
    /// or throws, and its error is thrown first.
    func rewrite<T>(_ name: String, context: HandlerContext, alongside: (@Sendable () async throws -> Void)? = nil,
                    _ decide: (PluginState?) throws -> (state: PluginState?, result: T)) async throws -> T {
        var companion: Task<Void, Error>?
        let result: T
        do {
            result = try await rounds(name, context: context, decide) {
                if companion == nil, let alongside { companion = Task { try await alongside() } }
            }
        } catch {
            try await companion?.value
            throw error
        }
        if let companion { try await companion.value } else { try await alongside?() }
        return result
    }

    private func rounds<T>(_ name: String, context: HandlerContext, _ decide: (PluginState?) throws -> (state: PluginState?, result: T),
                           writing: () -> Void) async throws -> T {
        await turns.take(name)
        defer { turns.pass(name) }
        for _ in 0..<Self.attempts {
            let kept = written.withLock { $0.removeValue(forKey: name) }
            let stored: (state: PluginState, revision: UInt64)?
            if let kept { stored = kept } else { stored = try await context.loadState(name) }
            let decided: (state: PluginState?, result: T)
            do {
                decided = try decide(stored?.state)
            } catch where kept != nil {
                continue
            }
            guard let state = decided.state else {
                if kept != nil { continue }
                return decided.result
            }
            writing()
            do {
                let revision = try await context.saveState(name, state, expectedRevision: stored?.revision ?? 0)
                written.withLock { $0[name] = (state, revision) }
                return decided.result
            } catch is KVConflict {
                continue
            }
        }
        throw PluginError.transient("\(Self.attempts) compare-and-set conflicts in a row on qt_state/\(context.plugin).\(name)")
    }
}

extension StateRounds {
    /// `rewrite` for a record kept as a `PluginState`: `read` turns the stored state into the
    /// record, `change` edits it, and only a record that changed is written back (`write`).
    func rewrite<Record: Equatable, T>(_ name: String, context: HandlerContext, read: (PluginState?) -> Record,
                                       write: (Record) -> PluginState, _ change: (inout Record) -> T) async throws -> T {
        try await rewrite(name, context: context) { stored in
            var record = read(stored)
            let before = record
            let result = change(&record)
            return (record == before ? nil : write(record), result)
        }
    }
}

/// One holder per name at a time, the others waiting in arrival order.
private final class Turns: Sendable {
    /// A name is held while it has an entry; the entry lists who waits for it.
    private let waiting = Mutex<[String: [CheckedContinuation<Void, Never>]]>([:])

    func take(_ name: String) async {
        await withCheckedContinuation { (continuation: CheckedContinuation<Void, Never>) in
            let free = waiting.withLock { waiting -> Bool in
                guard waiting[name] != nil else {
                    waiting[name] = []
                    return true
                }
                waiting[name]!.append(continuation)
                return false
            }
            if free { continuation.resume() }
        }
    }

    func pass(_ name: String) {
        let next = waiting.withLock { waiting -> CheckedContinuation<Void, Never>? in
            guard var queue = waiting[name], !queue.isEmpty else {
                waiting[name] = nil
                return nil
            }
            let first = queue.removeFirst()
            waiting[name] = queue
            return first
        }
        next?.resume()
    }
}
