import SwiftProtobuf

/// A message that travels on the bus or sits in a KV bucket: every one has `Meta meta = 1`
/// (DESIGN.md §4). Conformances are listed here by hand, once, for every top-level type.
public protocol BusMessage: SwiftProtobuf.Message {
    var meta: Meta { get set }
    /// The type's field rules (`FieldRules.swift`); a requirement rather than a cast to
    /// `FieldRuled`, so checking every message on the hot path costs a witness call.
    func checkFields(_ check: inout FieldCheck)
}

extension BusMessage {
    /// Types with only free text, ids and enums have no field rules.
    public func checkFields(_ check: inout FieldCheck) {}
}

extension Kline: BusMessage {}
extension MarketState: BusMessage {}
extension Universe: BusMessage {}
extension TradeIntent: BusMessage {}
extension HarvestProposal: BusMessage {}
extension CalibratedProposal: BusMessage {}
extension Plan: BusMessage {}
extension Permit: BusMessage {}
extension OrderRecord: BusMessage {}
extension OrderResult: BusMessage {}
extension Fill: BusMessage {}
extension LedgerEntry: BusMessage {}
extension PositionSnapshot: BusMessage {}
extension AccountSnapshot: BusMessage {}
extension Decision: BusMessage {}
extension Alert: BusMessage {}
extension DeadLetter: BusMessage {}
extension Control: BusMessage {}
extension PluginState: BusMessage {}
extension HostInfo: BusMessage {}
extension Lease: BusMessage {}
extension ClusterLayout: BusMessage {}

/// Every bus message type, by its full protobuf name (`qt.v1.Kline`), for decoding by header
/// (`Qt-Type`) in the CLI and in dead-letter tooling.
public enum MessageTypes {
    public static let all: [any BusMessage.Type] = [
        Kline.self, MarketState.self, Universe.self, TradeIntent.self, HarvestProposal.self,
        CalibratedProposal.self, Plan.self, Permit.self, OrderRecord.self, OrderResult.self,
        Fill.self, LedgerEntry.self, PositionSnapshot.self, AccountSnapshot.self, Decision.self,
        Alert.self, DeadLetter.self, Control.self, PluginState.self, HostInfo.self, Lease.self,
        ClusterLayout.self,
    ]

    private static let byName: [String: any BusMessage.Type] = Dictionary(
        uniqueKeysWithValues: all.map { ($0.protoMessageName, $0) }
    )

    public static func named(_ fullName: String) -> (any BusMessage.Type)? {
        byName[fullName]
    }
}
