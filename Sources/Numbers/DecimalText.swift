import Foundation

/// Decimal amounts as text: how Binance writes them and how messages carry them (DESIGN.md §4).
/// One grammar for every reader, the exchange client and the message field rules alike.
extension Decimal {
    /// Parses "123.45", "-0.001", "1e-8": the whole string, ASCII digits, an optional sign, point
    /// and exponent. Nil for anything else ("1.5-2", "NaN", "٣", "1e300", never a prefix or a silent
    /// zero).
    public static func parse(_ text: String) -> Decimal? {
        let trimmed = text.trimmingCharacters(in: .whitespaces)
        guard DecimalLiteral.sign(of: trimmed) != nil, let value = Decimal(string: trimmed, locale: posix), value.isFinite else { return nil }
        return value
    }

    private static let posix = Locale(identifier: "en_US_POSIX")

    /// Plain notation as Binance writes it ("0.00100000" is accepted, "1E-3" is not).
    public var plainString: String {
        var value = self
        var rounded = Decimal()
        NSDecimalRound(&rounded, &value, 12, .plain)
        return NSDecimalNumber(decimal: rounded).description(withLocale: Decimal.posix)
    }

    public var doubleValue: Double { NSDecimalNumber(decimal: self).doubleValue }
}

/// The grammar of a decimal literal, read without building a number: cheap enough to check every
/// decimal field of every message.
public enum DecimalLiteral {
    public enum Sign: Sendable { case negative, zero, positive }

    /// `[+-]?(digits[.digits?] | .digits)([eE][+-]?digits)?` with at most two exponent digits
    /// (Decimal holds exponents up to ±127), and its sign; nil when `text` is not one.
    public static func sign(of text: String) -> Sign? {
        var rest = Substring(text).utf8
        var nonZero = false
        func digits(ofMantissa: Bool = false) -> Int {
            let run = rest.prefix { $0 >= UInt8(ascii: "0") && $0 <= UInt8(ascii: "9") }
            if ofMantissa, run.contains(where: { $0 != UInt8(ascii: "0") }) { nonZero = true }
            rest = rest.dropFirst(run.count)
            return run.count
        }
        func take(_ characters: String) -> UInt8? {
            guard let first = rest.first, characters.utf8.contains(first) else { return nil }
            rest = rest.dropFirst()
            return first
        }
        let negative = take("+-") == UInt8(ascii: "-")
        var mantissa = digits(ofMantissa: true)
        if take(".") != nil { mantissa += digits(ofMantissa: true) }
        guard mantissa > 0 else { return nil }
        if take("eE") != nil {
            _ = take("+-")
            guard (1...2).contains(digits()) else { return nil }
        }
        guard rest.isEmpty else { return nil }
        return nonZero ? (negative ? .negative : .positive) : .zero
    }
}
