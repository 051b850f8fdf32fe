/// A NATS `.creds` file (`nsc generate creds`): a user JWT and the nkey seed that signs for it,
/// each between a `-----BEGIN …-----` and an `------END …------` line.
public struct UserCredentials: Sendable {
    public let jwt: String
    public let key: NKey

    public init(text: String) throws {
        var sections: [String] = []
        var lines = text.split(whereSeparator: \.isNewline).map { String($0.filter { !$0.isWhitespace }) }[...]
        while let line = lines.popFirst() {
            guard Self.isBoundary(line), line.contains("BEGIN") else { continue }
            guard let value = lines.popFirst(), !Self.isBoundary(value), let end = lines.popFirst(), Self.isBoundary(end) else {
                throw NKeyError("credentials: '\(line)' is not followed by one value and an END line")
            }
            sections.append(value)
        }
        guard sections.count >= 2 else {
            throw NKeyError("credentials: expected a user JWT section and a user nkey seed section, found \(sections.count) section(s)")
        }
        jwt = sections[0]
        key = try NKey(seed: sections[1])
    }

    /// A boundary line starts and ends with at least three dashes, as every NATS client reads it.
    private static func isBoundary(_ line: String) -> Bool {
        line.count >= 6 && line.hasPrefix("---") && line.hasSuffix("---")
    }
}
