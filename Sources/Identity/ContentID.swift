import COpenSSL

/// The id function `H` of DESIGN.md §3.3: SHA-256 of the UTF-8 string `a|b|…`, lower-case hex,
/// first 32 characters.
///
/// Never Swift's `Hasher`: its seed changes per process, and these ids must be the same on
/// every host and after every restart (they are `Nats-Msg-Id`s and client order ids).
public enum ContentID {
    public static let length = 32

    public static func hash(_ parts: [String]) -> String {
        String(sha256Hex(parts.joined(separator: "|")).prefix(length))
    }

    public static func hash(_ parts: String...) -> String {
        hash(parts)
    }

    /// The id of an output caused by an input message: `H(plugin, input stream, input sequence, output index)`.
    public static func caused(plugin: String, inputStream: String, inputSequence: UInt64, outputIndex: Int) -> String {
        String(sha256Hex("\(plugin)|\(inputStream)|\(inputSequence)|\(outputIndex)").prefix(length))
    }

    /// The id of an output with no input message (timer, poll): `H(plugin, kind, symbol, event time, revision)`.
    public static func content(plugin: String, kind: String, symbol: String, eventTimeMs: Int64, revision: UInt64) -> String {
        hash([plugin, kind, symbol, String(eventTimeMs), String(revision)])
    }

    public static func sha256Hex(_ text: String) -> String {
        var utf8 = Array(text.utf8)
        var digest = [UInt8](repeating: 0, count: Int(SHA256_DIGEST_LENGTH))
        utf8.withUnsafeMutableBufferPointer { input in
            _ = SHA256(input.baseAddress, input.count, &digest)
        }
        return hex(digest)
    }

    public static func hex(_ bytes: [UInt8]) -> String {
        let digits = Array("0123456789abcdef".utf8)
        var out = [UInt8]()
        out.reserveCapacity(bytes.count * 2)
        for byte in bytes {
            out.append(digits[Int(byte >> 4)])
            out.append(digits[Int(byte & 0x0f)])
        }
        return String(decoding: out, as: UTF8.self)
    }
}
