/// NATS subject matching: tokens separated by `.`, `*` matches one token, `>` the rest (one or more).
public struct SubjectPattern: Hashable, Sendable, CustomStringConvertible {
    public let pattern: String
    private let tokens: [Substring]

    public init(_ pattern: String) {
        self.pattern = pattern
        self.tokens = pattern.split(separator: ".", omittingEmptySubsequences: false)
    }

    public var description: String { pattern }

    /// Walks the subject's bytes once, without splitting it: every publish and emit asks this.
    public func matches(_ subject: String) -> Bool {
        var subject = subject
        return subject.withUTF8 { bytes in
            var position = 0
            for (index, token) in tokens.enumerated() {
                if token == ">" { return position < bytes.count }
                var end = position
                while end < bytes.count && bytes[end] != UInt8(ascii: ".") { end += 1 }
                if end == position { return false }
                if token != "*" {
                    let utf8 = token.utf8
                    if utf8.count != end - position || !utf8.elementsEqual(bytes[position..<end]) { return false }
                }
                let isLast = index == tokens.count - 1
                if isLast { return end == bytes.count }
                if end == bytes.count { return false }
                position = end + 1
            }
            return bytes.isEmpty && tokens.isEmpty
        }
    }

    /// Whether some subject matches both patterns.
    public func overlaps(_ other: SubjectPattern) -> Bool {
        for index in 0..<max(tokens.count, other.tokens.count) {
            let mine = index < tokens.count ? tokens[index] : nil
            let theirs = index < other.tokens.count ? other.tokens[index] : nil
            if mine == ">" { return theirs != nil }
            if theirs == ">" { return mine != nil }
            guard let mine, let theirs else { return false }
            if mine != "*" && theirs != "*" && mine != theirs { return false }
        }
        return true
    }

    /// Whether every subject this pattern matches is also matched by `other` (used to check
    /// that a stream owns a declared subject).
    public func isCovered(by other: SubjectPattern) -> Bool {
        for (index, token) in tokens.enumerated() {
            guard index < other.tokens.count else { return false }
            let theirs = other.tokens[index]
            if theirs == ">" { return true }
            if token == ">" { return false }
            if theirs == "*" { continue }
            if token == "*" || token != theirs { return false }
        }
        return tokens.count == other.tokens.count
    }
}

/// Subject builders for DESIGN.md §3.1. Symbols and names become a single token.
public enum Subjects {
    public static func kline(_ symbol: String) -> String { "qt.market.kline.\(symbol)" }
    public static func marketState(_ symbol: String) -> String { "qt.market.state.\(symbol)" }
    public static func intent(_ symbol: String) -> String { "qt.signal.intent.\(symbol)" }
    public static func harvestProposed(_ symbol: String) -> String { "qt.harvest.proposed.\(symbol)" }
    public static func harvestCalibrated(_ symbol: String) -> String { "qt.harvest.calibrated.\(symbol)" }
    public static func planProposed(_ symbol: String) -> String { "qt.plan.proposed.\(symbol)" }
    public static func planSized(_ symbol: String) -> String { "qt.plan.sized.\(symbol)" }
    public static func planApproved(_ symbol: String) -> String { "qt.plan.approved.\(symbol)" }
    public static func execResult(_ symbol: String) -> String { "qt.exec.result.\(symbol)" }
    public static func execFill(_ symbol: String) -> String { "qt.exec.fill.\(symbol)" }
    public static func decision(plugin: String, symbol: String) -> String { "qt.decision.\(plugin).\(symbol)" }
    public static func alert(_ kind: AlertKind) -> String { "qt.alert.\(kind.subjectToken)" }
    public static func deadLetter(consumer: String) -> String { "qt.dlq.\(consumer)" }

    public static let shadowPrefix = "qt.shadow."
    public static func shadow(_ liveSubject: String) -> String { shadowPrefix + liveSubject }

    /// Whether `token` can be one subject token: no dots, no wildcards, no white space, not empty.
    public static func isValidToken(_ token: String) -> Bool {
        !token.isEmpty && !token.contains(where: { $0 == "." || $0 == "*" || $0 == ">" || $0.isWhitespace })
    }

    /// A concrete subject a plugin may publish on: printable ASCII tokens, none empty, no
    /// wildcards, no white space (CR or LF in a subject would be read as a protocol line).
    public static func isPublishable(_ subject: String) -> Bool {
        var subject = subject
        return subject.withUTF8 { bytes in
            var tokenLength = 0
            for byte in bytes {
                guard byte > 0x20 && byte < 0x7F && byte != UInt8(ascii: "*") && byte != UInt8(ascii: ">") else { return false }
                if byte == UInt8(ascii: ".") {
                    if tokenLength == 0 { return false }
                    tokenLength = 0
                } else {
                    tokenLength += 1
                }
            }
            return tokenLength > 0
        }
    }
}

/// What a symbol may be wherever it becomes a subject token or a KV key: 2 to 32 characters of
/// `A-Z` and `0-9` (every USDⓈ-M perpetual this system trades; Binance has listed others, which
/// the universe skips with a warning and never trades).
public enum Symbols {
    public static let rule = "[A-Z0-9]{2,32}"

    public static func isValid(_ symbol: String) -> Bool {
        (2...32).contains(symbol.utf8.count) && symbol.utf8.allSatisfy { (0x41...0x5A).contains($0) || (0x30...0x39).contains($0) }
    }
}

extension AlertKind {
    /// The last token of `qt.alert.<kind>`: the enum value name in lower snake case.
    public var subjectToken: String {
        switch self {
        case .unspecified: return "unspecified"
        case .deadLetter: return "dead_letter"
        case .redelivery: return "redelivery"
        case .topology: return "topology"
        case .maxPositions: return "max_positions"
        case .heatHot: return "heat_hot"
        case .marginRatio: return "margin_ratio"
        case .consumerLag: return "consumer_lag"
        case .reconcile: return "reconcile"
        case .staleInput: return "stale_input"
        case .exitBlocked: return "exit_blocked"
        case .limit: return "limit"
        case .lease: return "lease"
        case .control: return "control"
        case .timer: return "timer"
        case .clock: return "clock"
        case .unreadableState: return "unreadable_state"
        case .permitMismatch: return "permit_mismatch"
        case .hostSilent: return "host_silent"
        case .UNRECOGNIZED(let value): return "unrecognized_\(value)"
        }
    }
}
