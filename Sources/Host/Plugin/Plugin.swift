import Messages

/// A service the host runs. A plugin implements `handle` (and `tick` if it declares timers);
/// the host owns everything around it. What the host promises:
///
/// - `handle` is called once per delivered input message, in stream order per input, on one
///   task at a time per input; a message may be delivered again after a crash (at-least-once),
///   so a handler must be idempotent or rely on the ids and compare-and-set the host gives it.
/// - Returning normally means "done": the host publishes what the handler emitted, waits for
///   JetStream to acknowledge every output, and only then acks the input.
/// - Throwing `PluginError.permanent` (bad input: failed validation, an impossible value)
///   terminates the input, copies it to `qt.dlq.<consumer>` with the reason and raises an alert
///   (R2). Nothing the handler emitted is published.
/// - Throwing anything else is transient (NATS, the exchange, a CAS conflict): nothing emitted is
///   published, the input is NAKed and redelivered after 1 s, doubling to 30 s, with no limit; an
///   alert is raised at the 5th delivery.
/// - A plugin never sees libnats: it emits through the context, to declared outputs only, and
///   reads and writes declared KV buckets only.
public protocol Plugin: AnyObject, Sendable {
    /// Called once before any input or timer is bound; throwing stops the host from starting
    /// (a precondition the plugin cannot work without, e.g. an account in hedge mode).
    func prepare() async throws
    func handle(_ input: Input, context: HandlerContext) async throws
    /// A declared timer fired. Singleton timers fire on one host of the fleet at a time.
    func tick(_ timer: String, context: HandlerContext) async throws
    /// This host gave up or lost a partition: forget whatever was cached for the symbols for which
    /// `isGone` is true (another host now owns their state, DESIGN.md §3.2).
    func forget(symbolsWhere isGone: @escaping @Sendable (String) -> Bool)
    /// The host is shutting down and every handler and tick has returned: close what the plugin
    /// opened outside the bus (exchange streams), which would otherwise outlive the host.
    func stop() async
}

extension Plugin {
    public func prepare() async throws {}

    public func forget(symbolsWhere isGone: @escaping @Sendable (String) -> Bool) {}

    public func stop() async {}

    public func tick(_ timer: String, context: HandlerContext) async throws {
        throw PluginError.permanent("plugin declares timer \(timer) but does not implement tick")
    }
}

public enum PluginError: Error, CustomStringConvertible, Equatable {
    /// The input can never be handled: dead-letter it (R2).
    case permanent(String)
    /// Try again later.
    case transient(String)
    /// The plugin broke its manifest (undeclared output, wrong type, undeclared bucket).
    case contract(String)

    public var description: String {
        switch self {
        case .permanent(let text): return "permanent: \(text)"
        case .transient(let text): return "transient: \(text)"
        case .contract(let text): return "manifest violation: \(text)"
        }
    }
}

/// A decoded input message as the plugin sees it.
public struct Input: Sendable {
    public let name: String
    public let subject: String
    public let message: any BusMessage
    public let streamSequence: UInt64
    public let deliveryCount: UInt64
    /// When JetStream stored the message (wall clock, ms): how long an input has waited, judged
    /// by the server and not by its event time (which runs fast in the simulator).
    public let storedAtMs: Int64

    package init(name: String, subject: String, message: any BusMessage, streamSequence: UInt64, deliveryCount: UInt64, storedAtMs: Int64) {
        self.name = name
        self.subject = subject
        self.message = message
        self.streamSequence = streamSequence
        self.deliveryCount = deliveryCount
        self.storedAtMs = storedAtMs
    }

    /// The message as its declared type (`nil` only if asked for another type).
    public func message<M: BusMessage>(as type: M.Type) -> M? {
        message as? M
    }

    /// Event time of the input (DESIGN.md §3.3: trading logic never reads the wall clock).
    public var eventTimeMs: Int64 { message.meta.eventTimeMs }
}

/// How a plugin is made: its manifest and a constructor that receives the validated settings.
public struct PluginRegistration: Sendable {
    public let manifest: PluginManifest
    public let make: @Sendable (PluginSetup) throws -> any Plugin

    public init(manifest: PluginManifest, make: @escaping @Sendable (PluginSetup) throws -> any Plugin) {
        self.manifest = manifest
        self.make = make
    }
}

public struct PluginSetup: Sendable {
    public let hostID: String
    public let settings: PluginSettings
    /// The node config's `exchange:` section, if it has one.
    public let exchange: ExchangeSettings?
    /// Wall-clock time; plugins read no other clock.
    public let clock: any PluginClock

    public init(hostID: String, settings: PluginSettings, exchange: ExchangeSettings? = nil, clock: any PluginClock = SystemClock()) {
        self.hostID = hostID
        self.settings = settings
        self.exchange = exchange
        self.clock = clock
    }
}

/// The built-in plugins, by name. `qt` (the composition root) fills it; the host knows only this.
public struct PluginRegistry: Sendable {
    public private(set) var registrations: [String: PluginRegistration] = [:]

    public init(_ registrations: [PluginRegistration] = []) {
        for registration in registrations { register(registration) }
    }

    public mutating func register(_ registration: PluginRegistration) {
        precondition(registrations[registration.manifest.name] == nil, "plugin \(registration.manifest.name) registered twice")
        registrations[registration.manifest.name] = registration
    }

    public var names: [String] { registrations.keys.sorted() }

    public subscript(name: String) -> PluginRegistration? { registrations[name] }
}
