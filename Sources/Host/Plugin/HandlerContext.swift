package import Bus
import Foundation
public import Logging
import Identity
import Messages
import SwiftProtobuf

/// What a handler or a timer may do: emit declared outputs, record decisions, use declared KV
/// buckets and its own state. Outputs are collected and published by the host after the handler
/// returns; ids are given here so a redelivery or a replay reproduces them (DESIGN.md §3.3).
public final class HandlerContext: @unchecked Sendable {
    public let plugin: String
    public let hostID: String
    /// Event time of the input; for a timer, the wall-clock time the tick was due.
    public let eventTimeMs: Int64
    let scope: PluginScope
    let cause: Cause?
    let causeStream: String
    let causeSequence: UInt64
    /// The lease the work is done under: a partition's for a keyed input, a singleton timer's.
    let fence: LeaseFence?
    private(set) var outputs: [OutgoingMessage] = []
    /// Writes with the outputs whose writer wants the revision they got (`whenStored`), by index
    /// into `outputs`.
    private var storedListeners: [(index: Int, listener: @Sendable (UInt64) -> Void)] = []

    init(scope: PluginScope, eventTimeMs: Int64, cause: Cause?, causeStream: String, causeSequence: UInt64,
         fence: LeaseFence? = nil) {
        self.scope = scope
        self.fence = fence
        self.plugin = scope.manifest.name
        self.hostID = scope.hostID
        self.eventTimeMs = eventTimeMs
        self.cause = cause
        self.causeStream = causeStream
        self.causeSequence = causeSequence
    }

    /// A context for an input (`cause` is the input's id and trace) or, with `cause` nil, a timer.
    package convenience init(scope: PluginScope, eventTimeMs: Int64, cause: (id: String, traceID: String)?,
                             causeStream: String = "", causeSequence: UInt64 = 0) {
        self.init(scope: scope, eventTimeMs: eventTimeMs, cause: cause.map { Cause(id: $0.id, traceID: $0.traceID) },
                  causeStream: causeStream, causeSequence: causeSequence)
    }

    /// Wall-clock time, for the rules that are about real time (expiry, cache age); trading
    /// logic runs on `eventTimeMs`.
    public var clock: any PluginClock { scope.clock }
    /// The host's log, labelled with this plugin (`QT_LOG_FORMAT=json` for log shippers).
    public var logger: Logger { scope.logger }

    /// What the handler emitted so far, in order.
    package var emissions: [Emission] { outputs.map(Emission.init(outgoing:)) }

    /// Emits `message` on `subject`, which must match the declared output `output`. For an
    /// input, the id is `H(plugin, input stream, input sequence, output index)`; a timer must
    /// pass a content id (`ContentID.content(...)`).
    public func emit<M: BusMessage>(_ output: String, _ message: M, subject: String, id: String? = nil) throws {
        guard let spec = scope.manifest.outputs.first(where: { $0.name == output }) else {
            throw PluginError.contract("\(plugin) has no output named \(output); declared: "
                                       + scope.manifest.outputs.map(\.name).joined(separator: ", "))
        }
        guard spec.type == M.self else {
            throw PluginError.contract("\(plugin) output \(output) carries \(spec.type.protoMessageName), not \(M.protoMessageName)")
        }
        if let problem = FieldRules.problem(message) {
            throw PluginError.permanent("\(plugin) output \(output) on \(subject): \(problem)")
        }
        guard Subjects.isPublishable(subject) else {
            throw PluginError.contract("\(plugin) output \(output): \(subject.debugDescription) is not a subject of printable tokens")
        }
        guard spec.pattern.matches(subject) else {
            throw PluginError.contract("\(plugin) output \(output) is \(spec.subject); \(subject) does not match")
        }
        let messageID: String
        if let id {
            messageID = id
        } else if cause != nil {
            messageID = ContentID.caused(plugin: plugin, inputStream: causeStream, inputSequence: causeSequence,
                                         outputIndex: outputs.count)
        } else {
            throw PluginError.contract("\(plugin) emitted \(output) from a timer without a content id")
        }
        let target = scope.settings.shadow ? Subjects.shadow(subject) : subject
        outputs.append(try OutgoingMessage(message, subject: target, id: messageID, producer: scope.producer, cause: cause,
                                           eventTimeMs: eventTimeMs))
    }

    /// Records a gate's verdict (R8) on `qt.decision.<plugin>.<symbol>` (declare an output named
    /// `decisions` with subject `qt.decision.<plugin>.*`). A timer passes a content `id`.
    public func decide(_ verdict: Verdict, reason: ReasonCode, about subjectID: String, kind: DecisionSubject,
                       symbol: String, detail: String = "", before: [String: String] = [:], after: [String: String] = [:],
                       id: String? = nil) throws {
        var decision = Decision()
        decision.plugin = plugin
        decision.subjectKind = kind
        decision.subjectID = subjectID
        decision.symbol = symbol
        decision.verdict = verdict
        decision.reason = reason
        decision.detail = detail
        decision.before = before
        decision.after = after
        try emit("decisions", decision, subject: Subjects.decision(plugin: plugin, symbol: symbol), id: id)
    }

    /// Writes `value` to `bucket/key` at `expectedRevision` together with the outputs: the write
    /// goes out in the batch the host publishes when the handler returns (a timer's, at
    /// `publishNow`) and is acknowledged with it, so it costs no round trip of its own. Only for a
    /// write nothing in this handler waits for, whose loss the input's redelivery repairs: a
    /// conflict, like a refused publish, sends the input back (transient), and nothing is written
    /// when the handler throws. The batch is not atomic: its messages and writes may land apart.
    public func updateWithOutputs<M: BusMessage>(_ bucket: String, _ key: String, _ value: M, expectedRevision: UInt64) async throws {
        try await writeWithOutputs(bucket, key, value, .update(expectedRevision: expectedRevision))
    }

    /// This plugin's state `qt_state/<plugin>.<name>` at `expectedRevision` (0: the key holds
    /// nothing, not even a delete marker), written with the outputs (see `updateWithOutputs`).
    /// `whenStored` gets the revision it was stored at once the batch is acknowledged, before the
    /// input is: a view kept by the plugin remembers it, so the next message of the subject, which
    /// the host handles only after that (DESIGN.md §3.3, docs/decisions.md), reads it at once.
    public func saveStateWithOutputs(_ name: String, _ state: PluginState, expectedRevision: UInt64,
                                     whenStored: @escaping @Sendable (PluginState, UInt64) -> Void) async throws {
        var stamped = state
        stamped.plugin = plugin
        stamped.name = name
        try await writeWithOutputs("qt_state", "\(plugin).\(name)", stamped, .update(expectedRevision: expectedRevision))
        if scope.settings.shadow { return }
        let written = stamped
        storedListeners.append((outputs.count - 1, { whenStored(written, $0) }))
    }

    /// A write with the outputs is read back by the next message of the subject (`saveStateWithOutputs`).
    package var readsBackWrites: Bool { !storedListeners.isEmpty }

    /// The stream sequence of each output, in order, once all are acknowledged: the writes' revisions
    /// go to their `whenStored`.
    package func outputsStored(at sequences: [UInt64]) {
        for (index, listener) in storedListeners where index < sequences.count { listener(sequences[index]) }
    }

    /// Puts `value` at `bucket/key`, whatever it holds, together with the outputs (see
    /// `updateWithOutputs`). Queued before an output, it is sent before it, but a reader of the
    /// output may still find the key unwritten: a bucket's stream and the output's are stored apart.
    public func putWithOutputs<M: BusMessage>(_ bucket: String, _ key: String, _ value: M) async throws {
        try await writeWithOutputs(bucket, key, value, .put)
    }

    private func writeWithOutputs<M: BusMessage>(_ bucket: String, _ key: String, _ value: M, _ operation: KeyValueWrite.Operation) async throws {
        let store = try await kv(bucket)
        try store.checkWrite(key, value)
        if scope.settings.shadow { return }
        outputs.append(OutgoingMessage(KeyValueWrite(bucket: bucket, key: key, operation: operation), value: try value.serializedBytes()))
    }

    /// Deletes `bucket/key` together with the outputs (see `updateWithOutputs`).
    public func deleteWithOutputs(_ bucket: String, _ key: String) async throws {
        let store = try await kv(bucket)
        try store.checkWrite(key)
        if scope.settings.shadow { return }
        outputs.append(OutgoingMessage(KeyValueWrite(bucket: bucket, key: key, operation: .delete), value: []))
    }

    /// A timer's context: outputs need content ids (an input's get ids from the input).
    public var isTimer: Bool { cause == nil }

    /// Throws `LeaseLost` when the lease this work runs under has passed its deadline (DESIGN.md
    /// §3.3, fencing). The host checks it before every publish and KV write; a plugin calls it
    /// before anything else with an effect outside the bus, such as an exchange call.
    public func checkLease() throws {
        try fence?.check()
    }

    /// Throws `LeaseLost` unless this host still owns `symbol`'s partition (with a valid fence):
    /// for work a timer does on one symbol, and before an exchange call for that symbol.
    public func checkLease(symbol: String) throws {
        try checkLease()
        guard owns(symbol: symbol) else { throw LeaseLost(name: "\(scope.instance) partition of \(symbol)") }
    }

    /// Whether this host owns `symbol`'s partition of this plugin now. Timers that act per symbol
    /// (recovery passes, periodic proposals) act only on owned symbols; a plugin without keyed
    /// inputs owns every symbol.
    public func owns(symbol: String) -> Bool {
        scope.ownership.current?(symbol) ?? true
    }

    /// Counts an event the plugin does not publish (`qt_plugin_events_total{event=...}`).
    public func count(_ event: String) {
        scope.metrics.event(event).increment()
    }

    /// Sets a value the plugin reports (`qt_plugin_value{value=...}`), such as a client's spending.
    public func record(_ value: Double, as name: String) {
        scope.metrics.value(name).set(value)
    }

    /// A declared bucket; writes need the bucket in `kvWrites` and are skipped in shadow mode.
    public func kv(_ bucket: String) async throws -> PluginKV {
        let canWrite = scope.manifest.kvWrites.contains(bucket)
        guard canWrite || scope.manifest.kvReads.contains(bucket) else {
            throw PluginError.contract("\(plugin) did not declare KV bucket \(bucket)")
        }
        return PluginKV(store: try await scope.backend.store(bucket), plugin: plugin, canWrite: canWrite,
                        shadow: scope.settings.shadow, fence: fence, journal: scope.journal, instance: scope.instance)
    }

    /// `qt_state` to read only: a plugin's view of its own keys (`<plugin>.…`) follows it. Every
    /// write goes through `saveState`.
    public func stateReader() async throws -> PluginKV {
        PluginKV(store: try await scope.backend.store("qt_state"), plugin: plugin, canWrite: false,
                 shadow: scope.settings.shadow, fence: fence, journal: scope.journal, instance: scope.instance)
    }

    /// This plugin's own state `qt_state/<plugin>.<name>`, with its revision for compare-and-set.
    public func loadState(_ name: String) async throws -> (state: PluginState, revision: UInt64)? {
        let store = try await scope.backend.store("qt_state")
        let key = "\(plugin).\(name)"
        do {
            guard let entry = try await store.get(PluginState.self, key) else { return nil }
            return (entry.value, entry.revision)
        } catch let error as SwiftProtobuf.BinaryDecodingError {
            throw UnreadableValue(bucket: store.name, key: key, problem: "does not decode as \(PluginState.protoMessageName): \(error)")
        }
    }

    /// Writes this plugin's state if it is still at `expectedRevision` (0: must not exist yet).
    /// A conflict throws (transient: the input is retried with fresh state).
    @discardableResult
    public func saveState(_ name: String, _ state: PluginState, expectedRevision: UInt64) async throws -> UInt64 {
        if scope.settings.shadow { return expectedRevision }
        try checkLease()
        var stamped = state
        stamped.plugin = plugin
        stamped.name = name
        let bucket = try await scope.backend.store("qt_state")
        let revision = expectedRevision == 0
            ? try await bucket.create("\(plugin).\(name)", stamped)
            : try await bucket.update("\(plugin).\(name)", stamped, expectedRevision: expectedRevision)
        scope.journal?.kvWrite(instance: scope.instance, bucket: "qt_state", key: "\(plugin).\(name)", revision: revision,
                                 partition: fence?.partition)
        return revision
    }

    /// A timer's outputs so far, published now and acknowledged by JetStream, so the timer may
    /// record (a cursor, a watermark) only what is really on the bus. Not for input handlers:
    /// their outputs are published with the ack.
    public func publishNow() async throws {
        guard cause == nil else {
            throw PluginError.contract("\(plugin): publishNow is for timers; a handler's outputs go out with its ack")
        }
        guard !outputs.isEmpty else { return }
        try checkLease()
        let pending = outputs
        let sequences = try await scope.backend.publishNow(pending.map(Emission.init(outgoing:)))
        scope.journal?.kvWrites(among: pending, sequences: sequences, instance: scope.instance, partition: fence?.partition)
        scope.metrics.messagesOut.add(pending.filter { $0.keyValueWrite == nil }.count)
        outputsStored(at: sequences)
        outputs.removeAll()
        storedListeners.removeAll()
    }
}

/// A plugin's view of one KV bucket.
public struct PluginKV: Sendable, KeyValueReading {
    let store: any KeyValueStore
    let plugin: String
    let canWrite: Bool
    let shadow: Bool
    let fence: LeaseFence?
    let journal: HandlingJournal?
    let instance: String

    /// The key's value, or nil when it has none. A value that does not decode, carries an enum
    /// value the schema does not know or breaks its type's field rules throws `UnreadableValue`:
    /// never a default, never nil (a missing value and a broken one mean different things).
    public func get<M: BusMessage>(_ type: M.Type, _ key: String) async throws -> (value: M, revision: UInt64)? {
        let found: (value: M, revision: UInt64)?
        do {
            found = try await store.get(type, key)
        } catch let error as SwiftProtobuf.BinaryDecodingError {
            throw UnreadableValue(bucket: store.name, key: key, problem: "does not decode as \(M.protoMessageName): \(error)")
        }
        guard let found else { return nil }
        if let problem = UnreadableValue.problem(found.value) {
            throw UnreadableValue(bucket: store.name, key: key, problem: problem)
        }
        return found
    }

    /// `get` for a reader that holds what depends on a broken key rather than retrying: the
    /// unreadable value comes back as a case, other errors (NATS) still throw.
    public func read<M: BusMessage>(_ type: M.Type, _ key: String) async throws -> KeyReading<M> {
        do {
            guard let found = try await get(type, key) else { return .missing }
            return .value(found.value, revision: found.revision)
        } catch let unreadable as UnreadableValue {
            return .unreadable(unreadable)
        }
    }

    public func keys() async throws -> [String] { try await store.keys() }

    /// The bucket's current values (or one key's), then every change, decoded as `M` (see `KeyValueBucket.watch`).
    public func changes<M: BusMessage>(_ type: M.Type, key: String? = nil) async throws -> KeyChanges<M> {
        try await store.changes(type, key: key)
    }

    @discardableResult
    public func put<M: BusMessage>(_ key: String, _ value: M) async throws -> UInt64 {
        try checkWrite(key, value)
        if shadow { return 0 }
        return recorded(key, try await store.put(key, value))
    }

    @discardableResult
    public func update<M: BusMessage>(_ key: String, _ value: M, expectedRevision: UInt64) async throws -> UInt64 {
        try checkWrite(key, value)
        if shadow { return expectedRevision }
        return recorded(key, try await store.update(key, value, expectedRevision: expectedRevision))
    }

    @discardableResult
    public func create<M: BusMessage>(_ key: String, _ value: M) async throws -> UInt64 {
        try checkWrite(key, value)
        if shadow { return 0 }
        return recorded(key, try await store.create(key, value))
    }

    /// Creates the key (`revision` nil) or replaces it at `revision`; a lost race throws `KVConflict`.
    @discardableResult
    public func write<M: BusMessage>(_ key: String, _ value: M, over revision: UInt64?) async throws -> UInt64 {
        if let revision { return try await update(key, value, expectedRevision: revision) }
        return try await create(key, value)
    }

    public func delete(_ key: String) async throws {
        try checkWrite(key)
        if shadow { return }
        try await store.delete(key)
    }

    /// Declared, and still under the lease the work runs under.
    func checkWrite<M: BusMessage>(_ key: String, _ value: M) throws {
        try checkWrite(key)
        if let problem = UnreadableValue.problem(value) {
            throw PluginError.permanent("\(plugin) writes \(store.name)/\(key): \(problem)")
        }
    }

    /// Declared, in the plugin's own part of a shared bucket (the server's permissions refuse the
    /// same write when the plugin runs on its own identity), and under the lease.
    func checkWrite(_ key: String) throws {
        guard canWrite else { throw PluginError.contract("\(plugin) did not declare KV writes to \(store.name)") }
        if store.name == Self.sharedStateBucket, !key.hasPrefix("\(plugin).") {
            throw PluginError.contract("\(plugin) writes \(store.name)/\(key): a plugin writes only its own keys, \(store.name)/\(plugin).<name>")
        }
        try fence?.check()
    }

    static let sharedStateBucket = "qt_state"

    private func recorded(_ key: String, _ revision: UInt64) -> UInt64 {
        journal?.kvWrite(instance: instance, bucket: store.name, key: key, revision: revision, partition: fence?.partition)
        return revision
    }
}

/// What reading a bucket needs, whether through a plugin's declared access or a tool's own
/// connection, so code that only reads (heat, the status view) serves both.
public protocol KeyValueReading: Sendable {
    func get<M: BusMessage>(_ type: M.Type, _ key: String) async throws -> (value: M, revision: UInt64)?
    func keys() async throws -> [String]
}

extension KeyValueBucket: KeyValueReading {}

/// A KV value a plugin asked for that cannot be used: it does not decode, holds an unknown enum
/// value, or breaks its type's field rules. What depends on that key is held (entries refused,
/// an alert raised) and nothing else is; thrown on as a handler error it is transient, so the
/// input waits for the key to be repaired rather than being dead-lettered for it.
public struct UnreadableValue: Error, CustomStringConvertible {
    public let bucket: String
    public let key: String
    public let problem: String
    public var description: String { "\(bucket)/\(key) cannot be read: \(problem)" }

    public init(bucket: String, key: String, problem: String) {
        self.bucket = bucket
        self.key = key
        self.problem = problem
    }

    /// What makes a decoded value unusable, or nil.
    public static func problem(_ value: any BusMessage) -> String? {
        if let unknown = SchemaValidation.unknownEnumValue(in: value) { return "\(type(of: value).protoMessageName) \(unknown)" }
        return FieldRules.problem(value)
    }
}

/// One key as `PluginKV.read` finds it.
public enum KeyReading<M: BusMessage>: Sendable {
    case missing
    case value(M, revision: UInt64)
    case unreadable(UnreadableValue)

    public var value: M? {
        if case .value(let value, _) = self { return value }
        return nil
    }
}
