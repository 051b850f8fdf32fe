import COpenSSL
import Foundation

/// HMAC-SHA256 of the exact query string, lower-case hex: Binance's `signature` parameter.
/// The simulator checks signatures with the same function.
public enum RequestSigner {
    public static func signature(of payload: String, secret: String) -> String {
        var digest = [UInt8](repeating: 0, count: Int(EVP_MAX_MD_SIZE))
        var length: UInt32 = 0
        let key = Array(secret.utf8)
        let data = Array(payload.utf8)
        _ = HMAC(EVP_sha256(), key, Int32(key.count), data, data.count, &digest, &length)
        return digest.prefix(Int(length)).map { String(format: "%02x", $0) }.joined()
    }

    /// Constant-time comparison, so a wrong signature reveals nothing by its timing.
    public static func matches(_ candidate: String, _ expected: String) -> Bool {
        let left = Array(candidate.utf8), right = Array(expected.utf8)
        guard left.count == right.count else { return false }
        var difference: UInt8 = 0
        for index in left.indices { difference |= left[index] ^ right[index] }
        return difference == 0
    }
}
