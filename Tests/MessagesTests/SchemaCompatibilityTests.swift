import Foundation
import Messages
import SwiftProtobuf
import XCTest

/// Issue 18: two schemas compared field by field. The fleet's schema is this build's with one
/// change made to it, so each case is one difference.
final class SchemaCompatibilityTests: XCTestCase {
    private func fleet(_ change: (inout Google_Protobuf_FileDescriptorSet) -> Void) throws -> [SchemaCompatibility.Difference] {
        var theirs = try SchemaCompatibility.current
        change(&theirs)
        return SchemaCompatibility.differences(from: theirs, to: try SchemaCompatibility.current)
    }

    private func editMessage(_ set: inout Google_Protobuf_FileDescriptorSet, _ name: String, _ edit: (inout Google_Protobuf_DescriptorProto) -> Void) {
        for file in set.file.indices {
            for message in set.file[file].messageType.indices where set.file[file].messageType[message].name == name {
                edit(&set.file[file].messageType[message])
            }
        }
    }

    private func editEnum(_ set: inout Google_Protobuf_FileDescriptorSet, _ name: String, _ edit: (inout Google_Protobuf_EnumDescriptorProto) -> Void) {
        for file in set.file.indices {
            for item in set.file[file].enumType.indices where set.file[file].enumType[item].name == name {
                edit(&set.file[file].enumType[item])
            }
        }
    }

    func testTheEmbeddedSchemaIsThisBuildsAndEqualToItself() throws {
        let current = try SchemaCompatibility.current
        XCTAssertTrue(current.file.contains { $0.messageType.contains { $0.name == "Plan" } })
        XCTAssertEqual(try fleet { _ in }, [])
    }

    func testAFieldTheFleetLacksIsACompatibleAddition() throws {
        let differences = try fleet { editMessage(&$0, "Permit") { $0.field.removeAll { $0.name == "plan_digest" } } }
        XCTAssertEqual(differences, [.init(typeName: "qt.v1.Permit", detail: "field 8 plan_digest added", breaking: false)])
    }

    func testAnEnumValueTheFleetLacksIsACompatibleAddition() throws {
        let differences = try fleet { editEnum(&$0, "ReasonCode") { $0.value.removeAll { $0.name == "REASON_CODE_PERMIT_MISMATCH" } } }
        XCTAssertEqual(differences.map(\.breaking), [false])
        XCTAssertEqual(differences.first?.typeName, "qt.v1.ReasonCode")
    }

    func testAChangedFieldTypeIsABreakNamingTheTypeAndField() throws {
        let differences = try fleet {
            editMessage(&$0, "Plan") { plan in
                if let index = plan.field.firstIndex(where: { $0.name == "quantity" }) { plan.field[index].type = .double }
            }
        }
        XCTAssertEqual(differences.count, 1)
        XCTAssertEqual(differences.first?.typeName, "qt.v1.Plan")
        XCTAssertEqual(differences.first?.breaking, true)
        XCTAssertTrue(differences.first?.detail.contains("field 6 quantity") == true, "\(differences)")
    }

    func testARenamedFieldOrEnumValueIsABreak() throws {
        let renamedField = try fleet {
            editMessage(&$0, "Plan") { plan in
                if let index = plan.field.firstIndex(where: { $0.name == "quantity" }) { plan.field[index].name = "qty" }
            }
        }
        XCTAssertEqual(renamedField.map(\.breaking), [true])
        let renamedValue = try fleet {
            editEnum(&$0, "TradingState") { state in
                if let index = state.value.firstIndex(where: { $0.number == 1 }) { state.value[index].name = "TRADING_STATE_OTHER" }
            }
        }
        XCTAssertEqual(renamedValue.map(\.breaking), [true])
        XCTAssertEqual(renamedValue.first?.typeName, "qt.v1.TradingState")
    }
}
