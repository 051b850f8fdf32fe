import CNats

/// Every failure the Bus reports. Each case names what failed and, where it can, what to do.
public enum BusError: Error, CustomStringConvertible, Equatable {
    /// A libnats call failed: the operation, the status and libnats' own text.
    case nats(operation: String, status: String, text: String, jetStreamCode: Int)
    /// Could not connect to any of the servers.
    case unreachable(servers: [String], text: String)
    /// No stream owns the subject (a JetStream publish answered "no responders").
    case noStream(subject: String)
    /// The subject is not in the topology (DESIGN.md §3.1).
    case unknownSubject(String)
    /// The message type is not the one registered for the subject (R1: one type per subject).
    case wrongType(subject: String, expected: String, actual: String)
    /// KV compare-and-set lost: the key's revision is not the expected one.
    case conflict(bucket: String, key: String, expectedRevision: UInt64)
    case notFound(String)
    case timeout(String)
    case closed(String)
    case invalidArgument(String)
    /// The server lacks what provisioning creates (the cluster layout, a stream, a durable), or has it
    /// with other settings: the text names it and the command that fixes it.
    case notProvisioned(String)

    public var description: String {
        switch self {
        case let .nats(operation, status, text, code):
            let codeText = code != 0 ? " (JetStream error \(code))" : ""
            return "\(operation) failed: \(status)\(codeText): \(text)"
        case let .unreachable(servers, text):
            // A TLS or authorization answer came from a running server: the hint about starting one would mislead.
            let hint = text.contains("TLS") || text.contains("uthorization") ? ""
                : ". Is nats-server running (`qt up`, or `nats-server -js`)? Use --server to point elsewhere."
            return "cannot connect to NATS at \(servers.joined(separator: ",")): \(text)\(hint)"
        case let .noStream(subject):
            return "no stream owns subject \(subject): run `qt streams provision`"
        case let .unknownSubject(subject):
            return "subject \(subject) is not in the topology (DESIGN.md §3.1)"
        case let .wrongType(subject, expected, actual):
            return "subject \(subject) carries \(expected), not \(actual)"
        case let .conflict(bucket, key, revision):
            return "compare-and-set conflict on \(bucket)/\(key): expected revision \(revision)"
        case let .notFound(what):
            return "not found: \(what)"
        case let .timeout(what):
            return "timed out: \(what)"
        case let .closed(what):
            return "closed: \(what)"
        case let .invalidArgument(what):
            return "invalid argument: \(what)"
        case let .notProvisioned(what):
            return "not provisioned: \(what)"
        }
    }
}

enum NatsCall {
    /// Turns a libnats status into a thrown `BusError`, with libnats' last error text.
    static func check(_ status: natsStatus, _ operation: @autoclosure () -> String, jetStreamCode: jsErrCode = jsErrCode(rawValue: 0)) throws {
        guard status != NATS_OK else { return }
        throw error(status, operation(), jetStreamCode: jetStreamCode)
    }

    static func error(_ status: natsStatus, _ operation: String, jetStreamCode: jsErrCode = jsErrCode(rawValue: 0)) -> BusError {
        if status == NATS_TIMEOUT { return .timeout(operation) }
        return .nats(operation: operation, status: statusText(status), text: lastErrorText(),
                     jetStreamCode: Int(jetStreamCode.rawValue))
    }

    static func statusText(_ status: natsStatus) -> String {
        guard let text = natsStatus_GetText(status) else { return "status \(status.rawValue)" }
        return String(cString: text)
    }

    static func lastErrorText() -> String {
        var status = NATS_OK
        guard let text = nats_GetLastError(&status) else { return "" }
        return String(cString: text)
    }
}
