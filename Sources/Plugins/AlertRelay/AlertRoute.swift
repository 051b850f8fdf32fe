import Host
import Messages

/// What one sink does with an alert: send it, send it without a notification sound, or nothing.
enum SinkMode: String, Sendable, Equatable {
    case on, silent, off
}

/// A sink's routing setting, e.g. `critical=on, warning=on, info=silent, consumer_lag=off`:
/// severities (`critical`, `warning`, `info`) and alert kinds (`dead_letter`, `consumer_lag`, …, the
/// enum's names without `ALERT_KIND_`, in lower case) each map to `on`, `silent` or `off`. A kind's
/// rule wins over its severity's; an alert neither names is `off`. Anything else in the setting is
/// refused when the plugin starts, with the setting's name and the word it did not know.
struct AlertRoute: Sendable, Equatable {
    private(set) var bySeverity: [AlertSeverity: SinkMode] = [:]
    private(set) var byKind: [AlertKind: SinkMode] = [:]

    static let severities: [String: AlertSeverity] = ["critical": .critical, "warning": .warning, "info": .info]
    static let kinds: [String: AlertKind] = Dictionary(uniqueKeysWithValues: AlertKind.allCases.compactMap { kind in
        guard kind != .unspecified, let name = kindName(kind) else { return nil }
        return (name, kind)
    })

    /// `consumer_lag` for `.consumerLag`: the kind's subject token (`qt.alert.<kind>`).
    static func kindName(_ kind: AlertKind) -> String? {
        if case .UNRECOGNIZED(_) = kind { return nil }
        return kind.subjectToken
    }

    init(parsing text: String, setting: String) throws {
        for rule in text.split(separator: ",").map({ $0.trimmingCharacters(in: .whitespaces) }) where !rule.isEmpty {
            let parts = rule.split(separator: "=", omittingEmptySubsequences: false).map { $0.trimmingCharacters(in: .whitespaces) }
            guard parts.count == 2, let mode = SinkMode(rawValue: parts[1]) else {
                throw PluginError.permanent("\(setting): \"\(rule)\" is not <severity or kind>=<on|silent|off>")
            }
            if let severity = Self.severities[parts[0]] {
                bySeverity[severity] = mode
            } else if let kind = Self.kinds[parts[0]] {
                byKind[kind] = mode
            } else {
                throw PluginError.permanent("\(setting): \"\(parts[0])\" is neither a severity (critical, warning, info) "
                                            + "nor an alert kind (\(Self.kinds.keys.sorted().joined(separator: ", ")))")
            }
        }
    }

    func mode(for alert: Alert) -> SinkMode {
        byKind[alert.kind] ?? bySeverity[alert.severity] ?? .off
    }
}
