@testable import Bus
import Foundation
import Identity
import NatsServerKit
import XCTest

/// Connecting with an nkey: libnats 3.4.1 sends no signature when the signature's first byte is 0
/// (nats.c #705), so one connect in 256 was refused with `Authorization Violation` (it stopped a
/// host at start in CI). `NonceSigner` refuses such a signature before CONNECT goes out, and the
/// connection tries again with a new nonce.
final class NonceSigningTests: XCTestCase {
    private var directory: URL!

    override func setUp() async throws {
        directory = FileManager.default.temporaryDirectory.appendingPathComponent("qt-nonce-\(UUID().uuidString.prefix(8))")
        try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
    }

    override func tearDown() async throws {
        if let directory { try? FileManager.default.removeItem(at: directory) }
    }

    private func writeSeed(_ key: NKey, _ name: String) throws -> String {
        let file = directory.appendingPathComponent(name).path
        try (key.seed + "\n").write(toFile: file, atomically: true, encoding: .utf8)
        return file
    }

    /// Without the signer about 1 in 256 of these connects failed: 512 fail at least once with
    /// probability 0.86, and every one must succeed.
    func testEveryConnectWithAnNKeyIsAccepted() throws {
        let key = try NKey.generate()
        let config = directory.appendingPathComponent("nats.conf")
        try "authorization { users: [ { nkey: \(key.publicKey) } ] }\n".write(to: config, atomically: true, encoding: .utf8)
        let server = try NatsServer(extraArguments: ["-c", config.path])
        defer { server.stop() }
        var options = ConnectionOptions(servers: [server.url], name: "nonce-test")
        options.nkeySeedFile = try writeSeed(key, "user.nk")
        options.maxReconnectAttempts = 0
        options.workerThreads = 1
        var refusals = 0
        for attempt in 0..<512 {
            do {
                let bus = try BusConnection(options)
                refusals += bus.nonceSigner?.zeroLeadRefusals ?? 0
                bus.close()
            } catch {
                XCTFail("connect \(attempt) failed: \(error)")
                return
            }
        }
        print("512 connects, \(refusals) signatures refused for a leading zero byte and signed again")

        // A key the server does not know is still refused, with the server's own words.
        options.nkeySeedFile = try writeSeed(try NKey.generate(), "stranger.nk")
        XCTAssertThrowsError(try BusConnection(options)) { XCTAssertTrue("\($0)".contains("Authorization Violation"), "\($0)") }
    }

    /// The refusal itself, on a nonce whose signature begins with 0 (found by trying nonces).
    func testASignatureThatBeginsWithZeroIsRefusedAndOthersVerify() throws {
        let key = try NKey.generate()
        let signer = NonceSigner(.seedFile(try writeSeed(key, "user.nk"), publicKey: key.publicKey))
        var zeroLead: [UInt8]?
        var plain: [UInt8]?
        for counter in 0..<20_000 where zeroLead == nil || plain == nil {
            let nonce = Array("nonce-\(counter)".utf8)
            let signature = try key.sign(nonce)
            XCTAssertEqual(signature.count, 64)
            if signature[0] == 0 { zeroLead = zeroLead ?? nonce } else { plain = plain ?? nonce }
        }
        let refused = try XCTUnwrap(zeroLead, "no nonce in 20,000 signs with a leading zero byte")
        XCTAssertThrowsError(try signer.signature(of: refused)) { XCTAssertTrue("\($0)".contains("zero byte"), "\($0)") }
        XCTAssertEqual(signer.zeroLeadRefusals, 1)
        XCTAssertEqual(try signer.signature(of: try XCTUnwrap(plain)), try key.sign(try XCTUnwrap(plain)))
        XCTAssertEqual(signer.zeroLeadRefusals, 1)

        // A seed file replaced under a running connection is not used with the old public key.
        _ = try writeSeed(try NKey.generate(), "user.nk")
        XCTAssertThrowsError(try signer.signature(of: try XCTUnwrap(plain))) { XCTAssertTrue("\($0)".contains("changed"), "\($0)") }
    }

    func testCredentialsFilesAreReadAsNatsWritesThem() throws {
        let key = try NKey.generate()
        let text = """
            -----BEGIN NATS USER JWT-----
            eyJ0eXAiOiJKV1QiLCJhbGciOiJlZDI1NTE5LW5rZXkifQ.e30.c2ln
            ------END NATS USER JWT------

            ************************* IMPORTANT *************************
            NKEY Seed printed below can be used to sign and prove identity.

            -----BEGIN USER NKEY SEED-----
            \(key.seed)
            ------END USER NKEY SEED------

            *************************************************************
            """
        let credentials = try UserCredentials(text: text)
        XCTAssertEqual(credentials.jwt, "eyJ0eXAiOiJKV1QiLCJhbGciOiJlZDI1NTE5LW5rZXkifQ.e30.c2ln")
        XCTAssertEqual(credentials.key.publicKey, key.publicKey)
        XCTAssertThrowsError(try UserCredentials(text: "-----BEGIN NATS USER JWT-----\neyJ\n------END NATS USER JWT------\n")) {
            XCTAssertTrue("\($0)".contains("found 1 section"), "\($0)")
        }
    }
}
