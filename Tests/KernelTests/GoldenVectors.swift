import Foundation
import XCTest

/// The golden vectors in `../shared/vectors` (beside the repository), made by the reference
/// kernels; `QT_VECTORS_DIR` points elsewhere.
enum GoldenVectors {
    static var directory: URL {
        if let override = ProcessInfo.processInfo.environment["QT_VECTORS_DIR"] { return URL(fileURLWithPath: override) }
        let packageRoot = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()
        return packageRoot.deletingLastPathComponent().appendingPathComponent("shared/vectors")
    }

    static func cases(_ name: String) throws -> [[String: Any]] {
        let url = directory.appendingPathComponent(name + ".json")
        let data = try read(url)
        let root = try XCTUnwrap(JSONSerialization.jsonObject(with: data) as? [String: Any], "\(url.path) is not a JSON object")
        return try XCTUnwrap(root["cases"] as? [[String: Any]], "\(url.path) has no cases")
    }

    static func root(_ name: String) throws -> [String: Any] {
        try XCTUnwrap(JSONSerialization.jsonObject(with: read(directory.appendingPathComponent(name + ".json"))) as? [String: Any])
    }

    private static func read(_ url: URL) throws -> Data {
        guard let data = FileManager.default.contents(atPath: url.path) else {
            throw VectorError("golden vectors not found at \(url.path): check out shared/ beside the repository, or set QT_VECTORS_DIR")
        }
        return data
    }
}

/// `actual` within a relative tolerance of `expected`, or within `absolute` of it.
func assertClose(_ actual: Double, _ expected: Double, relative: Double = 1e-9, absolute: Double = 1e-12, _ what: String,
                 file: StaticString = #filePath, line: UInt = #line) {
    let difference = abs(actual - expected)
    XCTAssertTrue(difference <= absolute || difference <= relative * abs(expected),
                  "\(what): \(actual) vs expected \(expected) (difference \(difference))", file: file, line: line)
}

func number(_ value: Any?) -> Double? {
    (value as? NSNumber)?.doubleValue
}
