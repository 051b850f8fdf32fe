import Foundation
@_exported import Numbers

/// A decimal that Binance sends and expects as a JSON string ("0.001"): exchange-facing amounts
/// are never binary floating point (DESIGN.md §4).
@propertyWrapper
public struct DecimalString: Codable, Sendable, Equatable, Hashable {
    public var wrappedValue: Decimal

    public init(wrappedValue: Decimal) { self.wrappedValue = wrappedValue }

    public init(from decoder: Decoder) throws {
        let container = try decoder.singleValueContainer()
        let text = try container.decode(String.self)
        guard let value = Decimal.parse(text) else {
            throw DecodingError.dataCorruptedError(in: container, debugDescription: "\"\(text)\" is not a decimal number")
        }
        wrappedValue = value
    }

    public func encode(to encoder: Encoder) throws {
        var container = encoder.singleValueContainer()
        try container.encode(wrappedValue.plainString)
    }
}
