import Foundation
import Logging
import Synchronization

/// The host's and the plugins' log lines, through swift-log, on stderr. `QT_LOG_FORMAT=json` gives
/// one JSON object per line for log shippers (`ts`, `level`, `label`, `message` and the metadata:
/// `host`, `plugin`, …); anything else gives the text lines operators already know
/// (`qt host node-a: draining`). Loggers carry their own handler, so a process needs no global
/// `LoggingSystem.bootstrap` and several hosts in one process (`qt up`, tests) keep their labels.
public enum HostLog {
    public enum Format: String, Sendable {
        case text, json
    }

    /// Read once from `QT_LOG_FORMAT`; an unknown value is named on stderr and text is used.
    public static let format: Format = {
        guard let raw = ProcessInfo.processInfo.environment["QT_LOG_FORMAT"], !raw.isEmpty else { return .text }
        guard let format = Format(rawValue: raw.lowercased()) else {
            FileHandle.standardError.write(Data("QT_LOG_FORMAT: \"\(raw)\" is not one of text, json; using text\n".utf8))
            return .text
        }
        return format
    }()

    /// The logger of one host, or of one plugin on it.
    public static func logger(host hostID: String, plugin: String? = nil) -> Logger {
        var logger = Logger(label: "qt host \(hostID)") { label in StderrLogHandler(label: label, format: format) }
        logger[metadataKey: "host"] = .string(hostID)
        if let plugin { logger[metadataKey: "plugin"] = .string(plugin) }
        return logger
    }
}

/// One line per record, written whole (lines from concurrent handlers never interleave).
struct StderrLogHandler: LogHandler {
    let label: String
    let format: HostLog.Format
    var metadata: Logger.Metadata = [:]
    var logLevel: Logger.Level = .info

    private static let output = Mutex(FileHandle.standardError)

    subscript(metadataKey key: String) -> Logger.Metadata.Value? {
        get { metadata[key] }
        set { metadata[key] = newValue }
    }

    func log(event: LogEvent) {
        let line: String
        switch format {
        case .text:
            line = "\(label): \(event.message)\n"
        case .json:
            var fields: [String: Any] = ["ts": ISO8601DateFormatter.string(from: Date(), timeZone: TimeZone(identifier: "UTC")!,
                                                                           formatOptions: [.withInternetDateTime, .withFractionalSeconds]),
                                         "level": event.level.rawValue, "label": label, "message": event.message.description]
            for (key, value) in metadata.merging(event.metadata ?? [:], uniquingKeysWith: { $1 }) { fields[key] = value.description }
            guard let data = try? JSONSerialization.data(withJSONObject: fields, options: [.sortedKeys]) else { return }
            line = String(decoding: data, as: UTF8.self) + "\n"
        }
        Self.output.withLock { $0.write(Data(line.utf8)) }
    }
}
