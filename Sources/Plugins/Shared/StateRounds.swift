import Foundation
import Host
import Messages

/// One `qt_state` key shared by every host running a plugin, rewritten by compare-and-set: read,
/// decide, write; on a conflict (another host wrote first) read again, up to `attempts` rounds, then
/// leave it to the input's redelivery. `decide` returns the new state (nil: nothing to write) and
/// what the caller gets back.
enum StateRounds {
    static let attempts = 8

    static func rewrite<T>(_ name: String, context: HandlerContext,
                           _ decide: (PluginState?) throws -> (state: PluginState?, result: T)) async throws -> T {
        for _ in 0..<attempts {
            let stored = try await context.loadState(name)
            let (state, result) = try decide(stored?.state)
            guard let state else { return result }
            do {
                _ = try await context.saveState(name, state, expectedRevision: stored?.revision ?? 0)
                return result
            } catch is KVConflict {
                continue
            }
        }
        throw PluginError.transient("\(attempts) compare-and-set conflicts in a row on qt_state/\(context.plugin).\(name)")
    }
}
