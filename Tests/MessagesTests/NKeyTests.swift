@testable import Identity
import XCTest

/// NATS nkeys as other NATS libraries encode them: published seed/public-key pairs, the CRC, and
/// refusals of a damaged or foreign seed. (A real nats-server accepting our keys is in AuthorizationTests.)
final class NKeyTests: XCTestCase {
    func testPublishedSeedsGiveTheirPublishedPublicKeys() throws {
        let pairs = [
            ("SUAMLK2ZNL35WSMW37E7UD4VZ7ELPKW7DHC3BWBSD2GCZ7IUQQXZIORRBU", "UCK5N7N66OBOINFXAYC2ACJQYFSOD4VYNU6APEJTAVFZB2SVHLKGEW7L"),
            ("SUACLFDTUS353H4ITLDAFQWYA43IAP2L7LGZ5XDEEARMJ4KNPHUWDKDUFQ", "UCBWG2NENI2VLZRMXKAQOZVKVVPA5GBUY2G7KGEDJRDWFSQ5VV3P7VYD"),
        ]
        for (seed, publicKey) in pairs {
            let key = try NKey(seed: seed + "\n")
            XCTAssertEqual(key.publicKey, publicKey)
            XCTAssertEqual(key.seed, seed, "re-encoding the seed gives the same text")
        }
    }

    func testCRC16IsXMODEM() {
        XCTAssertEqual(NKey.crc16(Array("123456789".utf8)), 0x31C3)
        XCTAssertEqual(NKey.crc16([]), 0)
    }

    func testAGeneratedKeyReadsBackAndKeysDiffer() throws {
        let first = try NKey.generate(), second = try NKey.generate()
        XCTAssertNotEqual(first.seed, second.seed)
        XCTAssertTrue(first.seed.hasPrefix("SU") && first.seed.count == 58, first.seed)
        XCTAssertTrue(first.publicKey.hasPrefix("U") && first.publicKey.count == 56, first.publicKey)
        XCTAssertEqual(try NKey(seed: first.seed).publicKey, first.publicKey)
    }

    func testADamagedOrForeignSeedIsRefused() throws {
        let seed = "SUAMLK2ZNL35WSMW37E7UD4VZ7ELPKW7DHC3BWBSD2GCZ7IUQQXZIORRBU"
        var damaged = Array(seed)
        damaged[20] = damaged[20] == "A" ? "B" : "A"
        XCTAssertThrowsError(try NKey(seed: String(damaged))) { XCTAssertTrue("\($0)".contains("checksum"), "\($0)") }
        XCTAssertThrowsError(try NKey(seed: "UCK5N7N66OBOINFXAYC2ACJQYFSOD4VYNU6APEJTAVFZB2SVHLKGEW7L"), "a public key is not a seed")
        XCTAssertThrowsError(try NKey(seed: "not base32!"))
    }
}
