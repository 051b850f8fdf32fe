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

    /// A plain literal (`[+-]?digits[.digits]`, no exponent) written one way for equal numbers:
    /// no sign but `-`, no leading zeros, no trailing fraction zeros, `0` for any zero ("0.50" and
    /// ".5" are "0.5"). Nil for anything else, which the caller compares some other way. Without
    /// Foundation: plan digests take it twice per plan.
    public static func canonical(_ text: String) -> String? {
        var negative = false
        var integer: [UInt8] = []
        var fraction: [UInt8] = []
        var seenPoint = false
        var digits = 0
        for (offset, byte) in text.utf8.enumerated() {
            switch byte {
            case UInt8(ascii: "-") where offset == 0: negative = true
            case UInt8(ascii: "+") where offset == 0: break
            case UInt8(ascii: ".") where !seenPoint: seenPoint = true
            case UInt8(ascii: "0")...UInt8(ascii: "9"):
                digits += 1
                if seenPoint { fraction.append(byte) } else if !(integer.isEmpty && byte == UInt8(ascii: "0")) { integer.append(byte) }
            default: return nil
            }
        }
        guard digits > 0 else { return nil }
        while fraction.last == UInt8(ascii: "0") { fraction.removeLast() }
        if integer.isEmpty && fraction.isEmpty { return "0" }
        var result: [UInt8] = negative ? [UInt8(ascii: "-")] : []
        result += integer.isEmpty ? [UInt8(ascii: "0")] : integer
        if !fraction.isEmpty { result += [UInt8(ascii: ".")] + fraction }
        return String(decoding: result, as: UTF8.self)
    }
}
