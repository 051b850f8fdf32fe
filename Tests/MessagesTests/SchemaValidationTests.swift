import Messages
import XCTest

final class SchemaValidationTests: XCTestCase {
    func testKnownValuesPass() {
        var proposal = HarvestProposal()
        proposal.action = .fullClose
        proposal.reasons = [.killScore, .regimeFlip]
        XCTAssertNil(SchemaValidation.unknownEnumValue(in: proposal))
    }

    func testUnknownValueInANestedMessageIsFound() throws {
        var calibrated = CalibratedProposal()
        calibrated.calibratedAction = .partial75
        calibrated.proposal.action = HarvestAction(rawValue: 99)!
        let decoded = try CalibratedProposal(serializedBytes: try calibrated.serializedBytes() as [UInt8])
        let found = try XCTUnwrap(SchemaValidation.unknownEnumValue(in: decoded))
        XCTAssertEqual(found.rawValue, 99)
        XCTAssertEqual(found.enumType, "HarvestAction")
        XCTAssertEqual(found.fieldNumber, 5)
    }

    func testUnknownValueInARepeatedFieldIsFound() throws {
        var proposal = HarvestProposal()
        proposal.reasons = [.killScore, ReasonCode(rawValue: 1000)!]
        XCTAssertEqual(SchemaValidation.unknownEnumValue(in: proposal)?.rawValue, 1000)
    }

    func testAFieldDriftedProducerIsCaught() throws {
        // The incident (R1): a producer wrote the action under another field number. Decoded
        // with our schema, the action reads as "unspecified" and the value sits in unknown fields;
        // the old system turned that default into UPDATE_SL.
        var foreign = HarvestProposal()
        foreign.symbol = "BTCUSDT"
        var bytes = try foreign.serializedBytes() as [UInt8]
        bytes += [0xa0, 0x01, 0x06]  // field 20 (varint) = 6, FULL_CLOSE under a number we do not know
        let decoded = try HarvestProposal(serializedBytes: bytes)
        XCTAssertEqual(decoded.action, .unspecified)
        XCTAssertFalse(decoded.unknownFields.data.isEmpty)
    }
}
