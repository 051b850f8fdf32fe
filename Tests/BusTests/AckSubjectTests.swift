@testable import Bus
import XCTest

final class AckSubjectTests: XCTestCase {
    func testReadsTheNineTokenForm() throws {
        let parsed = try XCTUnwrap(AckSubject.parse("$JS.ACK.QT_MARKET.relay-a__klines.3.1042.17.1795560000000000000.250"))
        XCTAssertEqual(parsed.delivered, 3)
        XCTAssertEqual(parsed.streamSequence, 1042)
        XCTAssertEqual(parsed.timestampNs, 1_795_560_000_000_000_000)
        XCTAssertEqual(parsed.pending, 250)
    }

    func testReadsTheTwelveTokenFormWithDomainAndAccount() throws {
        let parsed = try XCTUnwrap(AckSubject.parse("$JS.ACK.hub.ACCHASH.QT_EXEC.executor__approved.1.7.7.1795560000000000000.0.r4nd"))
        XCTAssertEqual(parsed.delivered, 1)
        XCTAssertEqual(parsed.streamSequence, 7)
        XCTAssertEqual(parsed.pending, 0)
    }

    func testRejectsWhatIsNotAnAckSubject() {
        XCTAssertNil(AckSubject.parse("_INBOX.abc.def"))
        XCTAssertNil(AckSubject.parse("$JS.ACK.S.C.x.1.1.1.1"))
        XCTAssertNil(AckSubject.parse("$JS.ACK.S.C.1.2"))
    }
}
