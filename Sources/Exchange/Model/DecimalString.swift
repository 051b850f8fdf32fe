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
    /// Parses "123.45", "-0.001", "1e-8": the whole string, ASCII digits, an optional sign, point
    /// and exponent. Nil for anything else ("1.5-2", "NaN", "٣", "1e300", never a prefix or a silent
    /// zero).
    public static func parse(_ text: String) -> Decimal? {
        let trimmed = text.trimmingCharacters(in: .whitespaces)
        guard isLiteral(trimmed), let value = Decimal(string: trimmed, locale: Locale(identifier: "en_US_POSIX")),
              value.isFinite else { return nil }
        return value
    }

    /// `[+-]?(digits[.digits?] | .digits)([eE][+-]?digits)?`, with at most two exponent digits
    /// (Decimal holds exponents up to ±127).
    private static func isLiteral(_ text: String) -> Bool {
        var rest = Substring(text).utf8
        func digits() -> Int {
            let count = rest.prefix { $0 >= UInt8(ascii: "0") && $0 <= UInt8(ascii: "9") }.count
            rest = rest.dropFirst(count)
            return count
        }
        func take(_ characters: String) -> Bool {
            guard let first = rest.first, characters.utf8.contains(first) else { return false }
            rest = rest.dropFirst()
            return true
        }
        _ = take("+-")
        var mantissa = digits()
        if take(".") { mantissa += digits() }
        guard mantissa > 0 else { return false }
        if take("eE") {
            _ = take("+-")
            guard (1...2).contains(digits()) else { return false }
        }
        return rest.isEmpty
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
