import Messages

/// What a plugin consumes, produces, reads, writes and schedules, declared as data. The host
/// binds from it, the topology check and `qt topology show` read it (through `HostInfo`), and
/// the node-config validator checks settings against its config keys.
public struct PluginManifest: Sendable {
    public let name: String
    public let version: String
    public let inputs: [InputSpec]
    public let outputs: [OutputSpec]
    public let kvReads: [String]
    public let kvWrites: [String]
    public let timers: [TimerSpec]
    public let config: [ConfigKey]

    public init(name: String, version: String, inputs: [InputSpec] = [], outputs: [OutputSpec] = [],
                kvReads: [String] = [], kvWrites: [String] = [], timers: [TimerSpec] = [], config: [ConfigKey] = []) {
        self.name = name
        self.version = version
        self.inputs = inputs
        self.outputs = outputs
        self.kvReads = kvReads
        self.kvWrites = kvWrites
        self.timers = timers
        self.config = config
    }
}

/// One consumed subject pattern: becomes the durable `<plugin>__<name>`.
public struct InputSpec: Sendable {
    public let name: String
    public let subject: String
    public let type: any BusMessage.Type
    public var ackWaitMs: Int64
    public var fetchBatch: Int
    /// Messages of a batch on different subjects handled at once, up to this many; one
    /// subject's messages always one after another, in stream order. For handlers that wait on
    /// I/O per message (the executor's exchange calls), where the subject is the unit that must
    /// stay ordered (a symbol).
    public var concurrency: Int
    /// How far back a newly created durable starts (wall clock), for inputs whose old messages
    /// must not be acted on (intents, plans): nil reads the stream from its start.
    public var replayLimit: ReplayLimit?

    /// AckWait of an input keyed by symbol, unless the manifest or the node config says otherwise:
    /// below the partition lease's TTL (15 s), so after a crash the new owner waits at most this
    /// long for the old owner's unacked messages before it fetches (DESIGN.md §3.3).
    public static let keyedAckWaitMs: Int64 = 10_000
    public static let defaultAckWaitMs: Int64 = 30_000

    /// A new durable of a plan input starts this far back: an approved plan lives 60 s, a
    /// proposed or sized one is minutes from its intent; older plans are history, not orders.
    public static let planReplay = ReplayLimit.seconds(300)

    public init(_ name: String, subject: String, type: any BusMessage.Type, ackWaitMs: Int64? = nil, fetchBatch: Int = 64,
                concurrency: Int = 1, replayLimit: ReplayLimit? = nil) {
        self.name = name
        self.subject = subject
        self.type = type
        let keyed = Topology.route(forFilter: subject)?.keyed == true
        self.ackWaitMs = ackWaitMs ?? (keyed ? Self.keyedAckWaitMs : Self.defaultAckWaitMs)
        self.fetchBatch = fetchBatch
        self.concurrency = max(1, concurrency)
        self.replayLimit = replayLimit
    }
}

/// How far back a new durable of an input reads: a plugin setting in seconds (so `qt up`'s
/// scaling and a node config apply), or a fixed number of seconds.
public enum ReplayLimit: Sendable {
    case setting(String)
    case seconds(Int)
}

/// One produced subject pattern; the plugin may publish only there, only this type.
public struct OutputSpec: Sendable {
    public let name: String
    public let subject: String
    public let type: any BusMessage.Type
    let pattern: SubjectPattern

    public init(_ name: String, subject: String, type: any BusMessage.Type) {
        self.name = name
        self.subject = subject
        self.type = type
        self.pattern = SubjectPattern(subject)
    }
}

public struct TimerSpec: Sendable {
    public let name: String
    public let intervalMs: Int64
    /// Runs on one host of the fleet at a time, under a `qt_leases` lease.
    public let singleton: Bool
    /// A config key in seconds (e.g. `interval_s`) that overrides `intervalMs`, so a node config
    /// (and `qt up`, scaling to the simulator's bar speed) sets the period.
    public let intervalSecondsSetting: String?
    /// The first tick comes right after start (once the lease is taken), not one interval later:
    /// for startup passes and for state that should exist as soon as the host runs.
    public let firesAtStart: Bool
    /// Also fires each time this host takes a partition of the plugin (a recovery pass over what the
    /// previous owner left). Such a timer runs on every host and acts on owned symbols only.
    public let firesOnPartitionAcquired: Bool

    public init(_ name: String, intervalMs: Int64, singleton: Bool, intervalSecondsSetting: String? = nil, firesAtStart: Bool = false,
                firesOnPartitionAcquired: Bool = false) {
        self.name = name
        self.intervalMs = intervalMs
        self.singleton = singleton
        self.intervalSecondsSetting = intervalSecondsSetting
        self.firesAtStart = firesAtStart
        self.firesOnPartitionAcquired = firesOnPartitionAcquired
    }

    public func interval(in settings: PluginSettings) -> Int64 {
        let seconds: Double
        switch intervalSecondsSetting.flatMap({ settings.values[$0] }) {
        case .double(let value)?: seconds = value
        case .int(let value)?: seconds = Double(value)
        default: return intervalMs
        }
        return seconds > 0 ? max(1, Int64(seconds * 1000)) : intervalMs
    }
}

extension PluginManifest {
    /// The manifest as the schema's message, for `HostInfo` in `qt_hosts`.
    func message(shadow: Bool) -> Messages.PluginManifestInfo {
        var message = Messages.PluginManifestInfo()
        message.name = name
        message.version = version
        message.inputs = inputs.map { binding($0.name, $0.subject, $0.type) }
        message.outputs = outputs.map { binding($0.name, $0.subject, $0.type) }
        message.kvReads = kvReads
        message.kvWrites = kvWrites
        message.timers = timers.map {
            var timer = Messages.TimerInfo()
            timer.name = $0.name
            timer.intervalMs = $0.intervalMs
            timer.singleton = $0.singleton
            return timer
        }
        message.shadow = shadow
        return message
    }

    private func binding(_ name: String, _ subject: String, _ type: any BusMessage.Type) -> SubjectBinding {
        var binding = SubjectBinding()
        binding.name = name
        binding.subject = subject
        binding.type = type.protoMessageName
        return binding
    }
}
