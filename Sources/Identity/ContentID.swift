import COpenSSL

/// The id function `H` of DESIGN.md §3.3: SHA-256 of the UTF-8 string `a|b|…`, lower-case hex,
/// first 32 characters.
///
/// Never Swift's `Hasher`: its seed changes per process, and these ids must be the same on
/// every host and after every restart (they are `Nats-Msg-Id`s and client order ids).
public enum ContentID {
    public static let length = 32

    public static func hash(_ parts: [String]) -> String {
        hexDigest(parts.joined(separator: "|"), characters: length)
    }

    public static func hash(_ parts: String...) -> String {
        hash(parts)
    }

    /// The id of an output caused by an input message: `H(plugin, input stream, input sequence, output index)`.
    public static func caused(plugin: String, inputStream: String, inputSequence: UInt64, outputIndex: Int) -> String {
        hexDigest("\(plugin)|\(inputStream)|\(inputSequence)|\(outputIndex)", characters: length)
    }

    /// The id of an output with no input message (timer, poll): `H(plugin, kind, symbol, event time, revision)`.
    public static func content(plugin: String, kind: String, symbol: String, eventTimeMs: Int64, revision: UInt64) -> String {
        hash([plugin, kind, symbol, String(eventTimeMs), String(revision)])
    }

    public static func sha256Hex(_ text: String) -> String {
        hexDigest(text, characters: 64)
    }

    /// SHA-256 of raw bytes as lower-case hex (a dead letter's whole payload).
    public static func sha256Hex(bytes: [UInt8]) -> String {
        var digest = [UInt8](repeating: 0, count: 32)
        bytes.withUnsafeBufferPointer { input in _ = SHA256(input.baseAddress, input.count, &digest) }
        let hex = Array("0123456789abcdef".utf8)
        return String(decoding: digest.flatMap { [hex[Int($0 >> 4)], hex[Int($0 & 0x0f)]] }, as: UTF8.self)
    }

    /// SHA-256 of the UTF-8 text as lower-case hex, cut to `characters`; no intermediate arrays
    /// (every output message id goes through here).
    static func hexDigest(_ text: String, characters: Int) -> String {
        var text = text
        return withUnsafeTemporaryAllocation(of: UInt8.self, capacity: 32) { digest in
            text.withUTF8 { input in _ = SHA256(input.baseAddress, input.count, digest.baseAddress) }
            return String(unsafeUninitializedCapacity: characters) { output in
                for index in 0..<characters {
                    let byte = digest[index / 2]
                    let nibble = index % 2 == 0 ? byte >> 4 : byte & 0x0f
                    output[index] = nibble < 10 ? 48 + nibble : 87 + nibble
                }
                return characters
            }
        }
    }
}
