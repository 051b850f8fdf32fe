import Host
import Messages

/// The ids a plugin has acted on, remembered in its `qt_state/<plugin>.<name>` for `keepMs` of
/// event time, so a repeat is recognised after JetStream's duplicate window has passed. Each id
/// remembers the input that made it: a redelivery of that input (a crash before the ack) acts
/// again with the same output ids, while another input carrying the id is a duplicate.
struct OnceMemory {
    enum Outcome: Equatable {
        /// First time: recorded now.
        case first
        /// The input that recorded it, delivered again: act again (the outputs have the same ids).
        case redelivery
        /// Another input already acted on this id.
        case duplicate
    }

    let context: HandlerContext
    /// The plugin's view of these keys (`BucketView.ownState`), which remembers each write once it
    /// is stored: the host handles the subject's next message only after that.
    let view: BucketView<PluginState>
    let name: String
    let keepMs: Int64

    /// A first sighting is written with the handler's outputs, at the revision the view holds: no
    /// round trip of its own. A conflict (a write the view has not seen, from a host that owned the
    /// partition before) fails the batch and the input comes back; nothing is written when the
    /// handler throws after this.
    func record(_ id: String, eventTimeMs: Int64, inputSequence: UInt64, symbol: String) async throws -> Outcome {
        let stored = try await view.stateForWrite(name, context)
        var made = stored.state?.values ?? [:]
        if let maker = made[id].flatMap(Maker.init) {
            return maker.inputSequence == inputSequence ? .redelivery : .duplicate
        }
        made = made.filter { (Maker($0.value)?.eventTimeMs ?? 0) > eventTimeMs - keepMs }
        made[id] = Maker(eventTimeMs: eventTimeMs, inputSequence: inputSequence).encoded
        var state = PluginState()
        state.values = made
        state.symbols = [symbol]
        let key = "\(context.plugin).\(name)"
        try await context.saveStateWithOutputs(name, state, expectedRevision: stored.revision) { [view] written, revision in
            view.remember(key, written, revision: revision)
        }
        return .first
    }

    private struct Maker {
        var eventTimeMs: Int64
        var inputSequence: UInt64

        init(eventTimeMs: Int64, inputSequence: UInt64) {
            self.eventTimeMs = eventTimeMs
            self.inputSequence = inputSequence
        }

        init?(_ encoded: String) {
            let parts = encoded.split(separator: "|")
            guard parts.count == 2, let time = Int64(parts[0]), let sequence = UInt64(parts[1]) else { return nil }
            eventTimeMs = time
            inputSequence = sequence
        }

        var encoded: String { "\(eventTimeMs)|\(inputSequence)" }
    }
}
