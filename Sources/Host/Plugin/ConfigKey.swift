/// A plugin setting: its name, type and default. The node config is checked against these.
public struct ConfigKey: Sendable {
    public enum Kind: Sendable, Equatable {
        case int, double, bool, string
        case choice([String])

        var description: String {
            switch self {
            case .int: return "an integer"
            case .double: return "a number"
            case .bool: return "true or false"
            case .string: return "a string"
            case .choice(let choices): return "one of \(choices.joined(separator: ", "))"
            }
        }
    }

    public let name: String
    public let kind: Kind
    public let defaultValue: ConfigValue
    /// The values a number may take (both ends included); a node config outside it is a config
    /// error. Every numeric setting of a built-in plugin declares one (PluginContractTests).
    public let range: ClosedRange<Double>?
    public let help: String

    public init(_ name: String, _ kind: Kind, default defaultValue: ConfigValue, range: ClosedRange<Double>? = nil, help: String = "") {
        self.name = name
        self.kind = kind
        self.defaultValue = defaultValue
        self.range = range
        self.help = help
    }

    /// "between 0.2 and 3600" (integers without a fraction).
    public var rangeDescription: String? {
        range.map { "between \(Self.number($0.lowerBound)) and \(Self.number($0.upperBound))" }
    }

    private static func number(_ value: Double) -> String {
        value == value.rounded() && abs(value) < 1e15 ? String(Int64(value)) : String(value)
    }
}

public enum ConfigValue: Sendable, Equatable, CustomStringConvertible {
    case int(Int)
    case double(Double)
    case bool(Bool)
    case string(String)

    public var description: String {
        switch self {
        case .int(let value): return String(value)
        case .double(let value): return String(value)
        case .bool(let value): return String(value)
        case .string(let value): return value
        }
    }
}

/// A plugin's settings after validation: every declared key has a value (given or default).
public struct PluginSettings: Sendable {
    public let values: [String: ConfigValue]
    /// `shadow: true`: outputs go to `qt.shadow.*` and KV writes are skipped.
    public let shadow: Bool
    /// `ack_wait_s`: the AckWait of every input's durable consumer instead of the manifest's
    /// (30 s): how long a message held by a host that died waits before another host gets it.
    /// Hosts running the same plugin should agree: the last one to start sets the durable.
    public let ackWaitMs: Int64?

    public init(values: [String: ConfigValue], shadow: Bool, ackWaitMs: Int64? = nil) {
        self.values = values
        self.shadow = shadow
        self.ackWaitMs = ackWaitMs
    }

    public func int(_ key: String) throws -> Int {
        if case .int(let value)? = values[key] { return value }
        throw undeclared(key, "an integer")
    }

    public func double(_ key: String) throws -> Double {
        switch values[key] {
        case .double(let value)?: return value
        case .int(let value)?: return Double(value)
        default: throw undeclared(key, "a number")
        }
    }

    public func bool(_ key: String) throws -> Bool {
        if case .bool(let value)? = values[key] { return value }
        throw undeclared(key, "a boolean")
    }

    public func string(_ key: String) throws -> String {
        if case .string(let value)? = values[key] { return value }
        throw undeclared(key, "a string")
    }

    /// A plugin read a setting its manifest does not declare (or as another type): the host
    /// refuses to start it, naming the key and what is declared, instead of trapping.
    private func undeclared(_ key: String, _ kind: String) -> PluginError {
        .contract("setting \(key) is not declared as \(kind); declared: \(values.keys.sorted().joined(separator: ", "))")
    }
}
