import Foundation
import Host
import Messages
import SwiftProtobuf
import Synchronization

/// Per-symbol protobuf state in `qt_state/<plugin>.<name>` (its `payload`), with the revision this
/// host wrote last: a compare-and-set against the cached revision replaces a read per message; a
/// conflict (another host wrote) drops the cache so the retry reloads.
final class CachedState<Value: SwiftProtobuf.Message>: Sendable {
    private let entries = Mutex<[String: (value: Value, revision: UInt64, symbol: String)]>([:])

    /// The stored value and its revision; an empty value at revision 0 when there is none.
    func load(_ name: String, context: HandlerContext) async throws -> (value: Value, revision: UInt64) {
        if let cached = entries.withLock({ $0[name] }) { return (cached.value, cached.revision) }
        guard let loaded = try await context.loadState(name) else { return (Value(), 0) }
        guard loaded.state.payloadType == Value.protoMessageName else {
            throw PluginError.permanent("qt_state/\(context.plugin).\(name) holds \"\(loaded.state.payloadType)\", expected \(Value.protoMessageName)")
        }
        return (try Value(serializedBytes: loaded.state.payload), loaded.revision)
    }

    func save(_ name: String, _ value: Value, over revision: UInt64, symbol: String, context: HandlerContext) async throws {
        var state = PluginState()
        state.payload = try value.serializedBytes()
        state.payloadType = Value.protoMessageName
        state.symbols = [symbol]
        do {
            let written = try await context.saveState(name, state, expectedRevision: revision)
            entries.withLock { $0[name] = (value, written, symbol) }
        } catch {
            entries.withLock { $0[name] = nil }
            throw error
        }
    }

    /// The partition of these symbols moved to another host: its state there is newer than ours.
    func forget(symbolsWhere isGone: (String) -> Bool) {
        entries.withLock { $0 = $0.filter { !isGone($0.value.symbol) } }
    }
}
