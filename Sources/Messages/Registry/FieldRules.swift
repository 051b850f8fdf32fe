import Numbers

/// Each message type's field rules, declared once here (issue 17): which numbers must be finite
/// and in what range, which strings must be decimal literals and of what sign, which must be
/// symbols, which times may not be negative. The host applies them wherever a message crosses a
/// boundary: on consume (a broken input is dead-lettered with the field and its value), on a KV
/// read (that key is unreadable: the plugin holds what depends on it), and on publish or KV
/// write (a plugin's bug is a permanent error at its source). A type without rules here has only
/// free text, ids and enums, which R2 checks already.
public protocol FieldRuled {
    func checkFields(_ check: inout FieldCheck)
}

public enum FieldRules {
    /// The first field of `message` that breaks its type's rules, as "Plan.stop_dist_pct is inf,
    /// expected a finite number in 0…1", or nil.
    public static func problem(_ message: any BusMessage) -> String? {
        var check = FieldCheck(type: type(of: message))
        message.checkFields(&check)
        return check.problem
    }
}

/// Collects the first broken rule of one message.
public struct FieldCheck {
    public enum Sign: String { case any, nonNegative = "≥ 0", positive = "> 0" }

    private let type: any BusMessage.Type
    /// Field names of the nested messages being checked; the path is built only for a problem.
    private var nesting: [String] = []
    public private(set) var problem: String?

    init(type: any BusMessage.Type) { self.type = type }

    private mutating func fail(_ field: String, _ value: String, _ expected: String) {
        guard problem == nil else { return }
        let name = type.protoMessageName.split(separator: ".").last.map(String.init) ?? type.protoMessageName
        problem = "\(([name] + nesting + [field]).joined(separator: ".")) is \(value), expected \(expected)"
    }

    /// No number this system carries comes near it (a day's quote volume is ~1e10): 1e300 is a
    /// bug or an attack, not a value.
    public static let magnitude = 1e12

    public mutating func finite(_ field: String, _ value: Double, in range: ClosedRange<Double>? = nil) {
        let range = range ?? -Self.magnitude...Self.magnitude
        guard value.isFinite, range.contains(value) else {
            return fail(field, "\(value)", "a finite number in \(Self.describe(range.lowerBound))…\(Self.describe(range.upperBound))")
        }
    }

    public mutating func finite(_ field: String, _ values: [Double]) {
        if let index = values.firstIndex(where: { !($0.isFinite && abs($0) <= Self.magnitude) }) {
            fail("\(field)[\(index)]", "\(values[index])", "a finite number of magnitude ≤ 1e12")
        }
    }

    private static func describe(_ bound: Double) -> String {
        abs(bound) == magnitude ? (bound < 0 ? "-1e12" : "1e12") : "\(bound)"
    }

    /// A decimal string (`Decimal.parse`'s grammar). Empty passes unless `required`.
    public mutating func decimal(_ field: String, _ text: String, _ sign: Sign = .any, required: Bool = false) {
        if text.isEmpty {
            if required { fail(field, "empty", "a decimal string") }
            return
        }
        guard let found = DecimalLiteral.sign(of: text) else { return fail(field, quoted(text), "a decimal string") }
        switch (sign, found) {
        case (.nonNegative, .negative), (.positive, .negative), (.positive, .zero):
            fail(field, quoted(text), "a decimal string \(sign.rawValue)")
        default: break
        }
    }

    /// A symbol by `Symbols.rule`. Empty passes unless `required`.
    public mutating func symbol(_ field: String, _ text: String, required: Bool = true) {
        if text.isEmpty, !required { return }
        if !Symbols.isValid(text) { fail(field, quoted(text), "a symbol matching \(Symbols.rule)") }
    }

    /// Epoch milliseconds (or any count) that cannot be negative.
    public mutating func notNegative(_ field: String, _ value: Int64) {
        if value < 0 { fail(field, String(value), "≥ 0") }
    }

    public mutating func within(_ field: String, _ value: Int64, _ range: ClosedRange<Int64>) {
        if !range.contains(value) { fail(field, String(value), "\(range.lowerBound)…\(range.upperBound)") }
    }

    public mutating func meta(_ meta: Meta) { notNegative("meta.event_time_ms", meta.eventTimeMs) }

    /// A message inside this one, under its field name.
    public mutating func nested(_ field: String, _ message: some FieldRuled) {
        nesting.append(field)
        message.checkFields(&self)
        nesting.removeLast()
    }

    private func quoted(_ text: String) -> String {
        let shown = text.count > 40 ? String(text.prefix(40)) + "…" : text
        return "\"" + shown.unicodeScalars.map { $0.isASCII && $0.value >= 0x20 ? String($0) : $0.escaped(asASCII: true) }.joined() + "\""
    }
}

private let probability: ClosedRange<Double> = 0...1
private let nonNegative: ClosedRange<Double> = 0...FieldCheck.magnitude

extension Kline: FieldRuled {
    public func checkFields(_ check: inout FieldCheck) {
        check.meta(meta)
        check.symbol("symbol", symbol)
        check.notNegative("open_time_ms", openTimeMs)
        check.notNegative("close_time_ms", closeTimeMs)
        // Non-negative, not positive: a consumer that cannot use a zero price (log returns)
        // refuses what it makes of it (a non-finite market state) at its own publish.
        check.decimal("open", open, .nonNegative)
        check.decimal("high", high, .nonNegative)
        check.decimal("low", low, .nonNegative)
        check.decimal("close", close, .nonNegative)
        check.decimal("volume", volume, .nonNegative)
        check.decimal("quote_volume", quoteVolume, .nonNegative)
        check.notNegative("trades", trades)
    }
}

extension MarketState: FieldRuled {
    public func checkFields(_ check: inout FieldCheck) {
        check.meta(meta)
        check.symbol("symbol", symbol)
        check.finite("sigma", sigma, in: nonNegative)
        check.finite("sigma_ewma", sigmaEwma, in: nonNegative)
        check.finite("sigma_mad", sigmaMad, in: nonNegative)
        check.finite("spike_proxy", spikeProxy)
        check.finite("mu", mu)
        check.finite("ts", ts)
        check.finite("dp", dp)
        check.finite("vr", vr)
        check.finite("p_trend", pTrend, in: probability)
        check.finite("p_mr", pMr, in: probability)
        check.finite("p_chop", pChop, in: probability)
        check.notNegative("bars_used", Int64(barsUsed))
        check.notNegative("as_of_ms", asOfMs)
    }
}

extension UniverseEntry: FieldRuled {
    public func checkFields(_ check: inout FieldCheck) {
        check.symbol("symbol", symbol)
        check.finite("quote_volume", quoteVolume, in: nonNegative)
        check.finite("sigma", sigma)
        check.finite("ts", ts)
    }
}

extension Universe: FieldRuled {
    public func checkFields(_ check: inout FieldCheck) {
        check.meta(meta)
        check.notNegative("version", version)
        check.notNegative("as_of_ms", asOfMs)
        for (index, entry) in entries.enumerated() { check.nested("entries[\(index)]", entry) }
    }
}

extension CloseWindow: FieldRuled {
    public func checkFields(_ check: inout FieldCheck) {
        check.finite("closes", closes)
    }
}

extension BarWindow: FieldRuled {
    public func checkFields(_ check: inout FieldCheck) {
        check.finite("highs", highs)
        check.finite("lows", lows)
        check.finite("closes", closes)
        check.finite("volumes", volumes)
    }
}

extension LedgerEntry: FieldRuled {
    public func checkFields(_ check: inout FieldCheck) {
        check.meta(meta)
        check.symbol("symbol", symbol, required: false)
        check.decimal("position_amt", positionAmt)
        check.decimal("entry_price", entryPrice, .nonNegative)
        check.decimal("realized_pnl", realizedPnl)
        check.decimal("stop_price", stopPrice, .nonNegative)
        check.finite("stop_dist_pct", stopDistPct, in: 0...1)
        check.notNegative("opened_at_ms", openedAtMs)
        check.within("tranches_taken", Int64(tranchesTaken), 0...3)
        check.notNegative("adopted_at_ms", adoptedAtMs)
    }
}

extension PositionSnapshot: FieldRuled {
    public func checkFields(_ check: inout FieldCheck) {
        check.meta(meta)
        check.symbol("symbol", symbol)
        check.decimal("position_amt", positionAmt)
        check.decimal("entry_price", entryPrice, .nonNegative)
        check.decimal("mark_price", markPrice, .nonNegative)
        check.decimal("unrealized_pnl", unrealizedPnl)
        check.within("leverage", Int64(leverage), FieldRuleRanges.leverage)
        check.decimal("liquidation_price", liquidationPrice, .nonNegative)
        check.decimal("notional", notional)
        check.notNegative("as_of_ms", asOfMs)
    }
}

extension AccountSnapshot: FieldRuled {
    public func checkFields(_ check: inout FieldCheck) {
        check.meta(meta)
        check.decimal("total_wallet_balance", totalWalletBalance)
        check.decimal("total_margin_balance", totalMarginBalance)
        check.decimal("total_maint_margin", totalMaintMargin, .nonNegative)
        check.decimal("total_unrealized_pnl", totalUnrealizedPnl)
        check.decimal("available_balance", availableBalance)
        check.finite("margin_ratio", marginRatio, in: nonNegative)
        check.notNegative("as_of_ms", asOfMs)
    }
}

extension HarvestProposal: FieldRuled {
    public func checkFields(_ check: inout FieldCheck) {
        check.meta(meta)
        check.symbol("symbol", symbol)
        check.finite("r_net", rNet)
        check.finite("risk_per_unit", riskPerUnit)
        check.finite("kill_score", killScore, in: probability)
        check.finite("kill_components.regime_flip", killComponents.regimeFlip)
        check.finite("kill_components.sigma_spike", killComponents.sigmaSpike)
        check.finite("kill_components.ts_drop", killComponents.tsDrop)
        check.finite("kill_components.age_penalty", killComponents.agePenalty)
        check.decimal("new_stop_price", newStopPrice, .positive)
        check.decimal("position_amt", positionAmt)
        check.decimal("entry_price", entryPrice, .nonNegative)
        check.decimal("mark_price", markPrice, .nonNegative)
        check.within("tranches_taken", Int64(tranchesTaken), 0...3)
    }
}

extension CalibratedProposal: FieldRuled {
    public func checkFields(_ check: inout FieldCheck) {
        check.meta(meta)
        check.nested("proposal", proposal)
        check.finite("heat", heat, in: nonNegative)
    }
}

extension Plan: FieldRuled {
    public func checkFields(_ check: inout FieldCheck) {
        check.meta(meta)
        check.symbol("symbol", symbol)
        check.decimal("quantity", quantity, .positive)
        check.decimal("stop_price", stopPrice, .positive)
        check.finite("stop_dist_pct", stopDistPct, in: 0...0.999_999)
        check.finite("confidence", confidence, in: probability)
        check.finite("kill_score", killScore, in: probability)
        check.within("leverage", Int64(leverage), FieldRuleRanges.leverage)
        check.within("reduce_percent", Int64(reducePercent), 0...100)
        check.notNegative("expires_at_ms", expiresAtMs)
    }
}

extension Permit: FieldRuled {
    public func checkFields(_ check: inout FieldCheck) {
        check.meta(meta)
        check.symbol("symbol", symbol, required: false)
        check.notNegative("granted_at_ms", grantedAtMs)
        check.notNegative("expires_at_ms", expiresAtMs)
        check.decimal("max_quantity", maxQuantity, .nonNegative)
    }
}

extension OrderRecord: FieldRuled {
    public func checkFields(_ check: inout FieldCheck) {
        check.meta(meta)
        check.symbol("symbol", symbol)
        check.decimal("executed_qty", executedQty, .nonNegative)
        check.decimal("avg_price", avgPrice, .nonNegative)
        check.decimal("fee", fee)
        check.decimal("realized_pnl", realizedPnl)
        check.decimal("quantity", quantity, .nonNegative)
        check.notNegative("updated_at_ms", updatedAtMs)
        check.notNegative("sent_at_ms", sentAtMs)
        if hasPlan { check.nested("plan", plan) }
    }
}

extension OrderResult: FieldRuled {
    public func checkFields(_ check: inout FieldCheck) {
        check.meta(meta)
        check.symbol("symbol", symbol)
        check.decimal("executed_qty", executedQty, .nonNegative)
        check.decimal("avg_price", avgPrice, .nonNegative)
        check.decimal("fee", fee)
        check.decimal("realized_pnl", realizedPnl)
    }
}

extension Fill: FieldRuled {
    public func checkFields(_ check: inout FieldCheck) {
        check.meta(meta)
        check.symbol("symbol", symbol)
        check.decimal("qty", qty, .nonNegative)
        check.decimal("price", price, .nonNegative)
        check.decimal("fee", fee)
        check.decimal("realized_pnl", realizedPnl)
        check.notNegative("time_ms", timeMs)
    }
}

extension TradeIntent: FieldRuled {
    public func checkFields(_ check: inout FieldCheck) {
        check.meta(meta)
        check.symbol("symbol", symbol)
        check.finite("confidence", confidence, in: probability)
        check.within("leverage", Int64(leverage), FieldRuleRanges.leverage)
        for (name, value) in features.sorted(by: { $0.key < $1.key }) { check.finite("features[\(name)]", value) }
    }
}

extension Control: FieldRuled {
    public func checkFields(_ check: inout FieldCheck) {
        check.meta(meta)
        check.notNegative("set_at_ms", setAtMs)
    }
}

public enum FieldRuleRanges {
    /// Binance's maximum leverage on any USDⓈ-M symbol; 0 means unset.
    public static let leverage: ClosedRange<Int64> = 0...125
}
