import COpenSSL

/// A NATS user nkey (an Ed25519 key pair in NATS's text encoding): the public key `U…` goes into
/// the server's authorization, the seed `SU…` stays in a 0600 file on the host that uses it. The
/// server challenges each connection with a nonce that only the seed can sign, so the server
/// config holds no secret.
///
/// Encoding (as nats-server and every NATS client read it): base32 without padding of a prefix,
/// the 32 raw key bytes and a CRC-16/XMODEM of those, little-endian.
public struct NKey: Sendable {
    public let seed: String
    public let publicKey: String
    private let rawSeed: [UInt8]

    static let userPrefix: UInt8 = 20 << 3
    static let seedPrefix: UInt8 = 18 << 3

    /// A new user key from 32 bytes of OpenSSL's random generator.
    public static func generate() throws -> NKey {
        var raw = [UInt8](repeating: 0, count: 32)
        guard RAND_bytes(&raw, 32) == 1 else { throw NKeyError("OpenSSL RAND_bytes failed") }
        return try NKey(rawSeed: raw)
    }

    init(rawSeed: [UInt8]) throws {
        let publicRaw = try Self.ed25519PublicKey(rawSeed)
        self.rawSeed = rawSeed
        seed = Self.encode([Self.seedPrefix | (Self.userPrefix >> 5), (Self.userPrefix & 31) << 3] + rawSeed)
        publicKey = Self.encode([Self.userPrefix] + publicRaw)
    }

    /// Reads a seed as `nk -gen user` or `qt auth generate` wrote it.
    public init(seed text: String) throws {
        let trimmed = text.trimmingWhitespace
        guard let bytes = Self.decode(trimmed), bytes.count == 36 else { throw NKeyError("not an nkey seed (base32 of 36 bytes)") }
        let body = Array(bytes[0..<34])
        guard Self.crc16(body) == UInt16(bytes[34]) | UInt16(bytes[35]) << 8 else { throw NKeyError("nkey seed checksum does not match") }
        guard body[0] & 0xF8 == Self.seedPrefix, (body[0] & 7) << 5 | body[1] >> 3 == Self.userPrefix else {
            throw NKeyError("not a user seed (expected it to start with SU)")
        }
        try self.init(rawSeed: Array(body[2...]))
    }

    /// The Ed25519 signature of `message` (64 bytes), as the server verifies the connect nonce.
    public func sign(_ message: [UInt8]) throws -> [UInt8] {
        guard let key = EVP_PKEY_new_raw_private_key(EVP_PKEY_ED25519, nil, rawSeed, rawSeed.count) else {
            throw NKeyError("OpenSSL refused an Ed25519 seed")
        }
        defer { EVP_PKEY_free(key) }
        guard let context = EVP_MD_CTX_new() else { throw NKeyError("OpenSSL could not allocate a signing context") }
        defer { EVP_MD_CTX_free(context) }
        var signature = [UInt8](repeating: 0, count: 64)
        var length = 64
        guard EVP_DigestSignInit(context, nil, nil, nil, key) == 1,
              EVP_DigestSign(context, &signature, &length, message, message.count) == 1, length == 64 else {
            throw NKeyError("OpenSSL could not sign with the Ed25519 key")
        }
        return signature
    }

    static func ed25519PublicKey(_ seed: [UInt8]) throws -> [UInt8] {
        guard let key = EVP_PKEY_new_raw_private_key(EVP_PKEY_ED25519, nil, seed, seed.count) else {
            throw NKeyError("OpenSSL refused an Ed25519 seed")
        }
        defer { EVP_PKEY_free(key) }
        var publicKey = [UInt8](repeating: 0, count: 32)
        var length = 32
        guard EVP_PKEY_get_raw_public_key(key, &publicKey, &length) == 1, length == 32 else {
            throw NKeyError("OpenSSL could not derive the Ed25519 public key")
        }
        return publicKey
    }

    static let alphabet = Array("ABCDEFGHIJKLMNOPQRSTUVWXYZ234567".utf8)

    static func encode(_ body: [UInt8]) -> String {
        let checksum = crc16(body)
        let bytes = body + [UInt8(checksum & 0xFF), UInt8(checksum >> 8)]
        var output: [UInt8] = []
        var buffer = 0, bits = 0
        for byte in bytes {
            buffer = buffer << 8 | Int(byte)
            bits += 8
            while bits >= 5 {
                output.append(alphabet[(buffer >> (bits - 5)) & 31])
                bits -= 5
            }
        }
        if bits > 0 { output.append(alphabet[(buffer << (5 - bits)) & 31]) }
        return String(decoding: output, as: UTF8.self)
    }

    static func decode(_ text: String) -> [UInt8]? {
        var output: [UInt8] = []
        var buffer = 0, bits = 0
        for character in text.utf8 {
            guard let value = alphabet.firstIndex(of: character) else { return nil }
            buffer = (buffer << 5 | value) & 0xFFFF
            bits += 5
            if bits >= 8 {
                output.append(UInt8((buffer >> (bits - 8)) & 0xFF))
                bits -= 8
            }
        }
        return output
    }

    /// CRC-16/XMODEM (polynomial 0x1021, initial 0), bit by bit: keys are encoded a few times per start.
    static func crc16(_ bytes: [UInt8]) -> UInt16 {
        var crc: UInt16 = 0
        for byte in bytes {
            crc ^= UInt16(byte) << 8
            for _ in 0..<8 { crc = crc & 0x8000 != 0 ? (crc << 1) ^ 0x1021 : crc << 1 }
        }
        return crc
    }
}

public struct NKeyError: Error, CustomStringConvertible {
    public let description: String
    package init(_ description: String) { self.description = description }
}

extension String {
    fileprivate var trimmingWhitespace: String {
        String(self.drop { $0.isWhitespace }.reversed().drop { $0.isWhitespace }.reversed())
    }
}
