import CNats
import Foundation
import Identity
import Synchronization

/// Signs the server's connect nonce for libnats, in place of `natsOptions_SetNKeyFromSeed` and
/// `natsOptions_SetUserCredentialsFromFiles`.
///
/// Why: libnats 3.4.1 (Debian's) base64-encodes the signature with a routine that treats a
/// first byte of 0 as an empty string (nats.c #705, fixed upstream in 2024), so one connect in
/// 256 goes out without `sig` and the server answers `Authorization Violation`. Two such answers
/// in a row from one server make libnats give up reconnecting for good. This signer refuses a
/// signature that starts with 0 instead: libnats drops that attempt before sending CONNECT and
/// tries again with a fresh nonce (reconnects), and `BusConnection` does the same at the first
/// connect. A refusal is not an authorization error, so it never counts toward giving up.
///
/// The seed is read from its file at each signature, as libnats does, so a secret stays in
/// memory only while it signs.
final class NonceSigner: Sendable {
    enum Source: Sendable {
        case seedFile(String, publicKey: String)
        case credentialsFile(String)
    }

    let source: Source
    private let refusals = Atomic<Int>(0)

    /// Refusals of a signature that began with 0, since the connection was made.
    var zeroLeadRefusals: Int { refusals.load(ordering: .relaxed) }

    init(_ source: Source) { self.source = source }

    func install(on opts: OpaquePointer) throws {
        let closure = Unmanaged.passUnretained(self).toOpaque()
        switch source {
        case .seedFile(let file, let publicKey):
            try NatsCall.check(natsOptions_SetNKey(opts, publicKey, Self.signCallback, closure), "nkey seed file \(file)")
        case .credentialsFile(let file):
            try NatsCall.check(natsOptions_SetUserCredentialsCallbacks(opts, Self.jwtCallback, closure, Self.signCallback, closure),
                               "credentials file \(file)")
        }
    }

    /// The key as its file holds it now.
    func currentKey() throws -> NKey {
        switch source {
        case .seedFile(let file, let publicKey):
            let key = try NKey(seed: String(contentsOfFile: file, encoding: .utf8))
            guard key.publicKey == publicKey else {
                throw NKeyError("the seed in \(file) changed since the connection was made (now \(key.publicKey), was \(publicKey)): restart to use the new key")
            }
            return key
        case .credentialsFile(let file):
            return try UserCredentials(text: String(contentsOfFile: file, encoding: .utf8)).key
        }
    }

    func userJWT() throws -> String {
        guard case .credentialsFile(let file) = source else { throw NKeyError("no credentials file") }
        return try UserCredentials(text: String(contentsOfFile: file, encoding: .utf8)).jwt
    }

    /// Signs `nonce`, or says why not: a signature starting with 0 is refused (see above).
    func signature(of nonce: [UInt8]) throws -> [UInt8] {
        let signature = try currentKey().sign(nonce)
        if signature.first == 0 {
            refusals.add(1, ordering: .relaxed)
            throw NKeyError("the nonce signature begins with a zero byte, which libnats 3.4.1 would drop (nats.c #705): trying again with a new nonce")
        }
        return signature
    }

    private static let signCallback: natsSignatureHandler = { errorText, signature, signatureLength, nonce, closure in
        guard let closure, let nonce, let signature, let signatureLength else { return NATS_INVALID_ARG }
        let signer = Unmanaged<NonceSigner>.fromOpaque(closure).takeUnretainedValue()
        do {
            let bytes = try signer.signature(of: Array(String(cString: nonce).utf8))
            guard let buffer = malloc(bytes.count)?.assumingMemoryBound(to: UInt8.self) else { return NATS_NO_MEMORY }
            buffer.initialize(from: bytes, count: bytes.count)
            signature.pointee = buffer
            signatureLength.pointee = Int32(bytes.count)
            return NATS_OK
        } catch {
            errorText?.pointee = strdup("\(error)")
            return NATS_ERR
        }
    }

    private static let jwtCallback: natsUserJWTHandler = { userJWT, errorText, closure in
        guard let closure, let userJWT else { return NATS_INVALID_ARG }
        let signer = Unmanaged<NonceSigner>.fromOpaque(closure).takeUnretainedValue()
        do {
            userJWT.pointee = strdup(try signer.userJWT())
            return NATS_OK
        } catch {
            errorText?.pointee = strdup("\(error)")
            return NATS_ERR
        }
    }
}
