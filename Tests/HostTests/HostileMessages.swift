import Bus
import Foundation
import Identity
import Kernels
import Messages

/// What a broken or hostile producer sends on the subjects the `qt up` plugins consume (issue
/// 17): each message breaks one rule, chosen so the system must refuse it, except the event-time
/// family, which is well-formed apart from its time and must end in a decision.
struct HostileMessages {
    enum Family: String, CaseIterable {
        case randomBytes = "random bytes"
        case truncated = "truncated payload"
        case badNumber = "NaN/±Inf/negative/zero/1e300 field"
        case unknownEnum = "unknown enum value"
        case wrongType = "wrong Qt-Type"
        case missingType = "missing Qt-Type header"
        case badSymbol = "symbol with space/dot/wildcard/CR-LF"
        case nonASCIISymbol = "non-ASCII symbol (payload and subject)"
        case eventTime = "zero or days-old event time"
        case oversized = "oversized payload"
    }

    struct Message {
        let outgoing: OutgoingMessage
        let family: Family
        /// The intent or plan id a decision names, for messages that may be decided rather than dead-lettered.
        let decidedAs: String?
        /// The plan id it carries, if it is a plan (none of these may ever become an order).
        let planID: String?
    }

    let symbols: [String]
    let nowMs: Int64
    private var random: SeededGenerator
    private var serial = 0

    init(symbols: [String], nowMs: Int64, seed: UInt64 = 17) {
        self.symbols = symbols
        self.nowMs = nowMs
        self.random = SeededGenerator(seed: seed)
    }

    /// The subjects the `qt up` plugin set consumes, one base message type each.
    static let inputs: [(subject: @Sendable (String) -> String, type: String)] = [
        (Subjects.kline, Kline.protoMessageName), (Subjects.marketState, MarketState.protoMessageName),
        (Subjects.intent, TradeIntent.protoMessageName), (Subjects.planProposed, Plan.protoMessageName),
        (Subjects.planSized, Plan.protoMessageName), (Subjects.planApproved, Plan.protoMessageName),
        (Subjects.execFill, Fill.protoMessageName), (Subjects.harvestProposed, HarvestProposal.protoMessageName),
        (Subjects.harvestCalibrated, CalibratedProposal.protoMessageName), ({ _ in Subjects.alert(.deadLetter) }, Alert.protoMessageName),
    ]

    static let badSymbols = ["BTC USDT", "BTC.USDT", "BTC*", ">", "BTC\r\nPUB qt.plan.approved.X 1", "btcusdt", "B", "\u{0}USDT", ""]
    static let nonASCIISymbols = ["币安人生USDT", "ÆØÅUSDT", "BTC\u{200B}USDT"]
    static let badDecimals = ["NaN", "Infinity", "-1", "0", "1e300", "1.5-2", "0x10", "1,5"]
    static let badDoubles = [Double.nan, .infinity, -.infinity, -1, 1e300]

    mutating func make(_ count: Int, oversized: Int) -> [Message] {
        var messages: [Message] = []
        let families = Family.allCases.filter { $0 != .oversized }
        for index in 0..<count {
            let family = index < oversized ? Family.oversized : families[index % families.count]
            messages.append(make(input: index % Self.inputs.count, family: family))
        }
        return messages
    }

    private mutating func pick<T>(_ items: [T]) -> T { items[Int(random.next() % UInt64(items.count))] }

    private mutating func nextID(_ family: Family) -> String {
        serial += 1
        return ContentID.hash("hostile", family.rawValue, String(serial))
    }

    private mutating func make(input: Int, family: Family) -> Message {
        let (subjectOf, typeName) = Self.inputs[input]
        let symbol = pick(symbols)
        let id = nextID(family)
        var base = baseMessage(typeName, symbol: symbol, id: id)
        var subject = subjectOf(symbol)
        var type = typeName
        var payload: [UInt8]
        var decidedAs: String?
        switch family {
        case .randomBytes:
            // Field number 0 is never valid: the decoder refuses these whatever follows.
            payload = [0x07] + (0..<Int(random.next() % 300)).map { _ in UInt8.random(in: 0...255, using: &random) }
        case .truncated:
            payload = Array(serialize(base).dropLast())
        case .badNumber:
            if !breakNumber(&base) { base = unknownEnum(base) }
            payload = serialize(base)
        case .unknownEnum:
            payload = serialize(unknownEnum(base))
        case .wrongType:
            payload = serialize(base)
            type = typeName == Plan.protoMessageName ? Kline.protoMessageName : Plan.protoMessageName
        case .missingType:
            payload = serialize(base)
            type = ""
        case .badSymbol:
            base = withSymbol(base, pick(Self.badSymbols))
            payload = serialize(base)
        case .nonASCIISymbol:
            let bad = pick(Self.nonASCIISymbols)
            base = withSymbol(base, bad)
            if typeName != Alert.protoMessageName { subject = subjectOf(bad) }
            payload = serialize(base)
        case .eventTime:
            let timeMs: Int64 = random.next() % 2 == 0 ? 0 : nowMs - 3 * 86_400_000
            if var intent = base as? TradeIntent {
                intent.meta.eventTimeMs = timeMs
                base = intent
                decidedAs = intent.intentID
            } else if var plan = base as? Plan, subject.hasPrefix("qt.plan.proposed.") {
                plan.meta.eventTimeMs = timeMs
                base = plan
                decidedAs = plan.planID
            } else {
                // Only intents and proposed plans are judged on event time; elsewhere a bad number.
                if !breakNumber(&base) { base = unknownEnum(base) }
            }
            payload = serialize(base)
        case .oversized:
            payload = [0x07] + [UInt8](repeating: 0x41, count: 900_000)
        }
        let outgoing = OutgoingMessage(unchecked: subject, typeName: type, id: id, payload: payload, producer: "hostile@tests")
        return Message(outgoing: outgoing, family: family, decidedAs: decidedAs, planID: (base as? Plan)?.planID)
    }

    private func serialize(_ message: any BusMessage) -> [UInt8] {
        (try? message.serializedBytes()) ?? []
    }

    private func baseMessage(_ typeName: String, symbol: String, id: String) -> any BusMessage {
        var meta = Meta()
        meta.id = id
        meta.eventTimeMs = nowMs
        switch typeName {
        case Kline.protoMessageName:
            var bar = Kline()
            (bar.meta, bar.symbol, bar.openTimeMs, bar.closeTimeMs) = (meta, symbol, nowMs - 60_000, nowMs - 1)
            (bar.open, bar.high, bar.low, bar.close, bar.volume) = ("100", "101", "99", "100.5", "12")
            return bar
        case MarketState.protoMessageName:
            var state = MarketState()
            (state.meta, state.symbol, state.sigma, state.ts, state.asOfMs) = (meta, symbol, 0.01, 0.5, nowMs)
            (state.pTrend, state.pMr, state.pChop) = (0.5, 0.3, 0.2)
            return state
        case TradeIntent.protoMessageName:
            var intent = TradeIntent()
            (intent.meta, intent.intentID, intent.symbol, intent.action) = (meta, id, symbol, .openLong)
            (intent.confidence, intent.leverage, intent.model) = (0.9, 3, "hostile")
            return intent
        case Plan.protoMessageName:
            var plan = Plan()
            (plan.meta, plan.planID, plan.symbol, plan.kind, plan.side) = (meta, id, symbol, .open, .buy)
            (plan.quantity, plan.stopDistPct, plan.leverage, plan.confidence, plan.permitKind) = ("1", 0.02, 3, 0.9, .p33)
            plan.expiresAtMs = nowMs + 60_000
            return plan
        case Fill.protoMessageName:
            var fill = Fill()
            (fill.meta, fill.symbol, fill.tradeID, fill.orderID, fill.side) = (meta, symbol, 1, 1, .buy)
            (fill.qty, fill.price, fill.timeMs, fill.origin) = ("1", "100", nowMs, .external)
            return fill
        case HarvestProposal.protoMessageName:
            return proposal(meta, symbol: symbol, id: id)
        case CalibratedProposal.protoMessageName:
            var calibrated = CalibratedProposal()
            (calibrated.meta, calibrated.proposal, calibrated.heat, calibrated.bucket) = (meta, proposal(meta, symbol: symbol, id: id), 0.1, .cold)
            (calibrated.calibratedAction, calibrated.mode) = (.fullClose, .enforce)
            return calibrated
        default:
            var alert = Alert()
            (alert.meta, alert.kind, alert.severity, alert.symbol, alert.message) = (meta, .deadLetter, .warning, symbol, "hostile")
            return alert
        }
    }

    private func proposal(_ meta: Meta, symbol: String, id: String) -> HarvestProposal {
        var proposal = HarvestProposal()
        (proposal.meta, proposal.proposalID, proposal.symbol, proposal.action) = (meta, id, symbol, .fullClose)
        (proposal.rNet, proposal.riskPerUnit, proposal.killScore, proposal.side) = (1.5, 2, 0.3, .long)
        (proposal.positionAmt, proposal.entryPrice, proposal.markPrice) = ("1", "100", "103")
        return proposal
    }

    /// Sets one numeric field to a value its rules refuse; false for a type without one.
    private mutating func breakNumber(_ message: inout any BusMessage) -> Bool {
        let decimal = pick(Self.badDecimals)
        let double = pick(Self.badDoubles)
        switch message {
        case var bar as Kline:
            let decimal = pick(Self.badDecimals.filter { $0 != "0" })  // a zero price is a (useless) number
            switch random.next() % 3 {
            case 0: bar.close = decimal
            case 1: bar.volume = decimal
            default: bar.openTimeMs = -1
            }
            message = bar
        case var state as MarketState:
            if random.next() % 2 == 0 { state.sigma = double } else { state.pTrend = double == -1 ? 2 : double }
            message = state
        case var intent as TradeIntent:
            if random.next() % 2 == 0 { intent.confidence = double } else { intent.features = ["rsi": .nan] }
            message = intent
        case var plan as Plan:
            switch random.next() % 4 {
            case 0: plan.quantity = decimal
            case 1: plan.stopDistPct = double
            case 2: plan.leverage = 1000
            default: plan.stopPrice = decimal == "0" ? "-5" : decimal
            }
            message = plan
        case var fill as Fill:
            fill.price = decimal == "0" ? "-1" : decimal
            message = fill
        case var proposal as HarvestProposal:
            proposal.killScore = double
            message = proposal
        case var calibrated as CalibratedProposal:
            calibrated.heat = double
            message = calibrated
        default:
            return false
        }
        return true
    }

    private func unknownEnum(_ message: any BusMessage) -> any BusMessage {
        switch message {
        case var bar as Kline:
            bar.symbol = ""  // Kline has no enum: a missing symbol instead
            return bar
        case var state as MarketState:
            state.symbol = "x y"
            return state
        case var intent as TradeIntent:
            intent.action = .UNRECOGNIZED(99)
            return intent
        case var plan as Plan:
            plan.kind = .UNRECOGNIZED(42)
            return plan
        case var fill as Fill:
            fill.origin = .UNRECOGNIZED(7)
            return fill
        case var proposal as HarvestProposal:
            proposal.action = .UNRECOGNIZED(77)
            return proposal
        case var calibrated as CalibratedProposal:
            calibrated.bucket = .UNRECOGNIZED(9)
            return calibrated
        case var alert as Alert:
            alert.kind = .UNRECOGNIZED(1234)
            return alert
        default:
            return message
        }
    }

    private func withSymbol(_ message: any BusMessage, _ symbol: String) -> any BusMessage {
        switch message {
        case var bar as Kline: bar.symbol = symbol; return bar
        case var state as MarketState: state.symbol = symbol; return state
        case var intent as TradeIntent: intent.symbol = symbol; return intent
        case var plan as Plan: plan.symbol = symbol; return plan
        case var fill as Fill: fill.symbol = symbol; return fill
        case var proposal as HarvestProposal: proposal.symbol = symbol; return proposal
        case var calibrated as CalibratedProposal: calibrated.proposal.symbol = symbol; return calibrated
        default: return unknownEnum(message)
        }
    }
}
