import Identity
import XCTest

final class ContentIDTests: XCTestCase {
    func testSHA256MatchesTheFIPSTestVectors() {
        // FIPS 180-2 appendix B.1 and the empty string.
        XCTAssertEqual(ContentID.sha256Hex("abc"), "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad")
        XCTAssertEqual(ContentID.sha256Hex(""), "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855")
    }

    func testHashJoinsPartsWithABarAndKeeps32HexCharacters() {
        let id = ContentID.hash("a", "b", "c")
        XCTAssertEqual(id, String(ContentID.sha256Hex("a|b|c").prefix(32)))
        XCTAssertEqual(id.count, 32)
        XCTAssertTrue(id.allSatisfy { "0123456789abcdef".contains($0) })
        XCTAssertEqual(ContentID.hash(["a", "b", "c"]), id)
    }

    func testCausedAndContentIDsAreStableAndDistinct() {
        let caused = ContentID.caused(plugin: "heat-gate", inputStream: "QT_EXIT", inputSequence: 42, outputIndex: 0)
        XCTAssertEqual(caused, ContentID.hash("heat-gate", "QT_EXIT", "42", "0"))
        XCTAssertNotEqual(caused, ContentID.caused(plugin: "heat-gate", inputStream: "QT_EXIT", inputSequence: 42, outputIndex: 1))
        XCTAssertNotEqual(caused, ContentID.caused(plugin: "heat-gate", inputStream: "QT_PLAN", inputSequence: 42, outputIndex: 0))
        let content = ContentID.content(plugin: "universe", kind: "universe", symbol: "", eventTimeMs: 1_700_000_000_000, revision: 3)
        XCTAssertEqual(content, ContentID.hash("universe", "universe", "", "1700000000000", "3"))
    }

    func testSHA256OfBytesIsTheStandardDigest() {
        XCTAssertEqual(ContentID.sha256Hex(bytes: Array("abc".utf8)), "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad")
        XCTAssertEqual(ContentID.sha256Hex(bytes: Array("qt".utf8)), ContentID.sha256Hex("qt"))
    }
}
