import Foundation

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

extension Decimal {
    /// Parses "123.45", "-0.001", "1e-8"; nil for anything else (never a silent zero).
    public static func parse(_ text: String) -> Decimal? {
        let trimmed = text.trimmingCharacters(in: .whitespaces)
        guard !trimmed.isEmpty, trimmed.allSatisfy({ $0.isNumber || "+-.eE".contains($0) }) else { return nil }
        return Decimal(string: trimmed, locale: Locale(identifier: "en_US_POSIX"))
    }

    /// Plain notation as Binance writes it ("0.00100000" is accepted, "1E-3" is not).
    public var plainString: String {
        var value = self
        var rounded = Decimal()
        NSDecimalRound(&rounded, &value, 12, .plain)
        return NSDecimalNumber(decimal: rounded).description(withLocale: Locale(identifier: "en_US_POSIX"))
    }

    public var doubleValue: Double { NSDecimalNumber(decimal: self).doubleValue }
}
