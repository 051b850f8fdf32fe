import SwiftProtobuf

/// An enum value as operators read it in logs and tools: the proto value name without the
/// type prefix (`VERDICT_BLOCK` → `BLOCK`, `REASON_CODE_NOT_IN_UNIVERSE` → `NOT_IN_UNIVERSE`).
/// Values the schema does not know print as `UNRECOGNIZED(n)`, never as a default.
public func shortName<E: SwiftProtobuf.Enum>(_ value: E) -> String {
    let caseName = String(describing: value)
    if caseName.hasPrefix("UNRECOGNIZED") { return caseName }
    var name = ""
    for character in caseName {
        if character.isUppercase, !name.isEmpty { name.append("_") }
        name.append(contentsOf: character.uppercased())
    }
    return name
}
