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
        let bytes = text.utf8
        var index = bytes.startIndex
        func isDigit(_ byte: UInt8) -> Bool { byte >= UInt8(ascii: "0") && byte <= UInt8(ascii: "9") }
        var negative = false
        if index < bytes.endIndex, bytes[index] == UInt8(ascii: "-") || bytes[index] == UInt8(ascii: "+") {
            negative = bytes[index] == UInt8(ascii: "-")
            index = bytes.index(after: index)
        }
        var mantissa = 0
        var nonZero = false
        var seenPoint = false
        while index < bytes.endIndex {
            let byte = bytes[index]
            if isDigit(byte) {
                mantissa += 1
                if byte != UInt8(ascii: "0") { nonZero = true }
            } else if byte == UInt8(ascii: "."), !seenPoint {
                seenPoint = true
            } else {
                break
            }
            index = bytes.index(after: index)
        }
        guard mantissa > 0 else { return nil }
        if index < bytes.endIndex, bytes[index] == UInt8(ascii: "e") || bytes[index] == UInt8(ascii: "E") {
            index = bytes.index(after: index)
            if index < bytes.endIndex, bytes[index] == UInt8(ascii: "-") || bytes[index] == UInt8(ascii: "+") {
                index = bytes.index(after: index)
            }
            var exponent = 0
            while index < bytes.endIndex, isDigit(bytes[index]) {
                exponent += 1
                index = bytes.index(after: index)
            }
            guard (1...2).contains(exponent) else { return nil }
        }
        guard index == bytes.endIndex else { return nil }
        return nonZero ? (negative ? .negative : .positive) : .zero
    }
}
