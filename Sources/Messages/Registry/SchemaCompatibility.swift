import Foundation
import SwiftProtobuf

/// How two versions of proto/qt/v1 differ, message type by message type (DESIGN.md §10, schema
/// evolution). A field or enum value only one side has is an addition: proto3 readers skip fields
/// they do not know, and an enum value is safe once every consumer knows it (consumers first).
/// A field number whose type, cardinality or name differs, or an enum number with another name,
/// is a break: the two sides would read the same bytes as different things.
public enum SchemaCompatibility {
    public struct Difference: Sendable, Equatable, CustomStringConvertible {
        /// `qt.v1.Plan`, `qt.v1.ReasonCode`.
        public let typeName: String
        public let detail: String
        public let breaking: Bool
        public var description: String { "\(typeName): \(detail)" }

        public init(typeName: String, detail: String, breaking: Bool) {
            self.typeName = typeName
            self.detail = detail
            self.breaking = breaking
        }
    }

    /// The schema this binary was built with.
    public static var current: Google_Protobuf_FileDescriptorSet {
        get throws { try Google_Protobuf_FileDescriptorSet(serializedBytes: Data(base64Encoded: SchemaDescriptor.base64) ?? Data()) }
    }

    /// What `mine` changes relative to `theirs` (the fleet's, from the cluster layout).
    public static func differences(from theirs: Google_Protobuf_FileDescriptorSet, to mine: Google_Protobuf_FileDescriptorSet) -> [Difference] {
        let (theirMessages, theirEnums) = index(theirs)
        let (myMessages, myEnums) = index(mine)
        var found: [Difference] = []
        for name in Set(theirMessages.keys).union(myMessages.keys).sorted() {
            guard let old = theirMessages[name], let new = myMessages[name] else {
                found.append(Difference(typeName: name, detail: myMessages[name] == nil ? "message only in the fleet's schema" : "new message", breaking: false))
                continue
            }
            let oldFields = Dictionary(old.field.map { ($0.number, $0) }, uniquingKeysWith: { first, _ in first })
            let newFields = Dictionary(new.field.map { ($0.number, $0) }, uniquingKeysWith: { first, _ in first })
            for number in Set(oldFields.keys).union(newFields.keys).sorted() {
                switch (oldFields[number], newFields[number]) {
                case let (old?, new?):
                    if let change = fieldChange(old, new) {
                        found.append(Difference(typeName: name, detail: "field \(number) \(change)", breaking: true))
                    }
                case let (nil, new?):
                    found.append(Difference(typeName: name, detail: "field \(number) \(new.name) added", breaking: false))
                case let (old?, nil):
                    found.append(Difference(typeName: name, detail: "field \(number) \(old.name) only in the fleet's schema", breaking: false))
                case (nil, nil):
                    break
                }
            }
        }
        for name in Set(theirEnums.keys).union(myEnums.keys).sorted() {
            guard let old = theirEnums[name], let new = myEnums[name] else {
                found.append(Difference(typeName: name, detail: myEnums[name] == nil ? "enum only in the fleet's schema" : "new enum", breaking: false))
                continue
            }
            let oldValues = Dictionary(old.value.map { ($0.number, $0.name) }, uniquingKeysWith: { first, _ in first })
            let newValues = Dictionary(new.value.map { ($0.number, $0.name) }, uniquingKeysWith: { first, _ in first })
            for number in Set(oldValues.keys).union(newValues.keys).sorted() {
                switch (oldValues[number], newValues[number]) {
                case let (old?, new?) where old != new:
                    found.append(Difference(typeName: name, detail: "value \(number) renamed \(old) → \(new)", breaking: true))
                case let (nil, new?):
                    found.append(Difference(typeName: name, detail: "value \(number) \(new) added (consumers first)", breaking: false))
                case let (old?, nil):
                    found.append(Difference(typeName: name, detail: "value \(number) \(old) only in the fleet's schema", breaking: false))
                default:
                    break
                }
            }
        }
        return found
    }

    private static func fieldChange(_ old: Google_Protobuf_FieldDescriptorProto, _ new: Google_Protobuf_FieldDescriptorProto) -> String? {
        func shape(_ field: Google_Protobuf_FieldDescriptorProto) -> String {
            let type = field.typeName.isEmpty ? "\(field.type)" : field.typeName
            return (field.label == .repeated ? "repeated " : "") + type
        }
        if shape(old) != shape(new) { return "\(old.name): \(shape(old)) → \(shape(new))" }
        if old.name != new.name { return "renamed \(old.name) → \(new.name)" }
        return nil
    }

    /// Every message and enum by full name (`qt.v1.Plan`, nested ones as `qt.v1.Plan.Inner`).
    private static func index(_ set: Google_Protobuf_FileDescriptorSet)
        -> ([String: Google_Protobuf_DescriptorProto], [String: Google_Protobuf_EnumDescriptorProto]) {
        var messages: [String: Google_Protobuf_DescriptorProto] = [:]
        var enums: [String: Google_Protobuf_EnumDescriptorProto] = [:]
        func add(_ message: Google_Protobuf_DescriptorProto, prefix: String) {
            let name = "\(prefix).\(message.name)"
            messages[name] = message
            message.nestedType.forEach { add($0, prefix: name) }
            message.enumType.forEach { enums["\(name).\($0.name)"] = $0 }
        }
        for file in set.file {
            file.messageType.forEach { add($0, prefix: file.package) }
            file.enumType.forEach { enums["\(file.package).\($0.name)"] = $0 }
        }
        return (messages, enums)
    }
}
