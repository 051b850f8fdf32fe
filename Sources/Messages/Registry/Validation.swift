import Foundation
import SwiftProtobuf

/// R2: an enum value the schema does not know is rejected, never defaulted. swift-protobuf keeps
/// such values as `.UNRECOGNIZED(n)`; this finds them anywhere in a message, nested messages,
/// repeated fields and maps included.
public enum SchemaValidation {
    public struct UnknownEnumValue: Error, CustomStringConvertible, Equatable {
        public let enumType: String
        public let fieldNumber: Int
        public let rawValue: Int
        public var description: String {
            "field \(fieldNumber): value \(rawValue) is not a member of enum \(enumType)"
        }
    }

    public static func unknownEnumValue(in message: any SwiftProtobuf.Message) -> UnknownEnumValue? {
        var visitor = UnknownEnumVisitor()
        try? message.traverse(visitor: &visitor)
        return visitor.found
    }
}

private struct UnknownEnumVisitor: SwiftProtobuf.Visitor {
    var found: SchemaValidation.UnknownEnumValue?

    private mutating func check<E: SwiftProtobuf.Enum>(_ value: E, _ fieldNumber: Int) {
        guard found == nil else { return }
        if !isKnownCase(value) {
            found = .init(enumType: String(describing: E.self), fieldNumber: fieldNumber, rawValue: value.rawValue)
        }
    }

    /// Generated enums are `CaseIterable` without `UNRECOGNIZED` among `allCases`.
    private func isKnownCase<E: SwiftProtobuf.Enum>(_ value: E) -> Bool {
        guard let iterable = E.self as? any (CaseIterable & RawRepresentable<Int>).Type else { return true }
        return containsRawValue(iterable, value.rawValue)
    }

    private func containsRawValue<C: CaseIterable & RawRepresentable<Int>>(_ type: C.Type, _ rawValue: Int) -> Bool {
        type.allCases.contains { $0.rawValue == rawValue }
    }

    mutating func visitSingularEnumField<E: SwiftProtobuf.Enum>(value: E, fieldNumber: Int) throws {
        check(value, fieldNumber)
    }

    mutating func visitRepeatedEnumField<E: SwiftProtobuf.Enum>(value: [E], fieldNumber: Int) throws {
        value.forEach { check($0, fieldNumber) }
    }

    mutating func visitPackedEnumField<E: SwiftProtobuf.Enum>(value: [E], fieldNumber: Int) throws {
        value.forEach { check($0, fieldNumber) }
    }

    mutating func visitSingularMessageField<M: SwiftProtobuf.Message>(value: M, fieldNumber: Int) throws {
        try value.traverse(visitor: &self)
    }

    mutating func visitRepeatedMessageField<M: SwiftProtobuf.Message>(value: [M], fieldNumber: Int) throws {
        for element in value { try element.traverse(visitor: &self) }
    }

    // Scalars, strings, bytes and unknown fields carry no enum values: required by the protocol,
    // nothing to check.
    mutating func visitSingularDoubleField(value: Double, fieldNumber: Int) throws {}
    mutating func visitSingularInt64Field(value: Int64, fieldNumber: Int) throws {}
    mutating func visitSingularUInt64Field(value: UInt64, fieldNumber: Int) throws {}
    mutating func visitSingularBoolField(value: Bool, fieldNumber: Int) throws {}
    mutating func visitSingularStringField(value: String, fieldNumber: Int) throws {}
    mutating func visitSingularBytesField(value: Data, fieldNumber: Int) throws {}
    mutating func visitSingularGroupField<G: SwiftProtobuf.Message>(value: G, fieldNumber: Int) throws {}
    mutating func visitUnknown(bytes: Data) throws {}
    mutating func visitMapField<KeyType, ValueType: MapValueType>(
        fieldType: _ProtobufMap<KeyType, ValueType>.Type, value: _ProtobufMap<KeyType, ValueType>.BaseType, fieldNumber: Int
    ) throws {}
    mutating func visitMapField<KeyType, ValueType>(
        fieldType: _ProtobufEnumMap<KeyType, ValueType>.Type, value: _ProtobufEnumMap<KeyType, ValueType>.BaseType, fieldNumber: Int
    ) throws where ValueType.RawValue == Int {
        value.values.forEach { check($0, fieldNumber) }
    }
    mutating func visitMapField<KeyType, ValueType>(
        fieldType: _ProtobufMessageMap<KeyType, ValueType>.Type, value: _ProtobufMessageMap<KeyType, ValueType>.BaseType, fieldNumber: Int
    ) throws {
        for element in value.values { try element.traverse(visitor: &self) }
    }
}
