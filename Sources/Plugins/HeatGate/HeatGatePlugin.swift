import Exchange
import Foundation
import Host
import Kernels
import Messages
import Synchronization

/// §6.3 on each harvest proposal: portfolio heat from the snapshots (notional of every open
/// position), each position's market-state sigma and the account's equity, then the calibrated
/// action. Publishes a `CalibratedProposal` that embeds the proposal unchanged (R1) beside
/// `calibrated_action`, and a `Decision`. A missing input (a position without market state, no
/// account snapshot) passes the proposal unchanged with `HEAT_UNKNOWN`, never a silent COLD.
///
/// Heat is a portfolio aggregate read from many keys; it is recomputed at most every
/// `refresh_ms` of wall time, so a burst of proposals (one per open position per bar) reads the
/// buckets once rather than once per proposal.
public final class HeatGatePlugin: Plugin {
    public static let name = "heat-gate"

    public static let registration = PluginRegistration(
        manifest: PluginManifest(
            name: name, version: "1.0.0",
            inputs: [InputSpec("proposals", subject: "qt.harvest.proposed.*", type: HarvestProposal.self)],
            outputs: [OutputSpec("calibrated", subject: "qt.harvest.calibrated.*", type: CalibratedProposal.self),
                      OutputSpec("decisions", subject: "qt.decision.heat-gate.*", type: Decision.self)],
            kvReads: ["qt_snapshot", "qt_marketstate"],
            config: [ConfigKey("calibration", .choice(["enforce", "shadow"]), default: .string("enforce"),
                               help: "enforce: downstream acts on calibrated_action; shadow: it is recorded, the proposed action flows on"),
                     ConfigKey("refresh_ms", .int, default: .int(1_000), range: 0...600_000, help: "how long a computed heat is reused")]),
        make: { setup in
            HeatGatePlugin(mode: try setup.settings.string("calibration") == "shadow" ? .shadow : .enforce,
                           refreshMs: Int64(try setup.settings.int("refresh_ms")))
        })

    private let mode: CalibrationMode
    private let refreshMs: Int64
    private let cache = HeatCache()

    init(mode: CalibrationMode, refreshMs: Int64) {
        self.mode = mode
        self.refreshMs = refreshMs
    }

    public func handle(_ input: Input, context: HandlerContext) async throws {
        guard let proposal = input.message(as: HarvestProposal.self) else { throw PluginError.permanent("expected a HarvestProposal") }
        guard proposal.action != .unspecified else {
            throw PluginError.permanent("proposal \(proposal.proposalID) on \(input.subject) has action HARVEST_ACTION_UNSPECIFIED")
        }
        let reading = try await heat(context)

        var calibrated = CalibratedProposal()
        calibrated.proposal = proposal
        calibrated.mode = mode
        let verdict: Verdict
        let reason: ReasonCode
        let detail: String
        switch reading {
        case .unknown(let missing):
            calibrated.bucket = .unknown
            calibrated.calibratedAction = proposal.action
            calibrated.reasons = [.heatUnknown]
            (verdict, reason, detail) = (.pass, .heatUnknown, "heat unknown: \(missing)")
        case .known(let heat):
            calibrated.heat = heat
            calibrated.bucket = HeatKernel.bucket(heat)
            calibrated.calibratedAction = HeatKernel.calibrate(proposal.action, bucket: calibrated.bucket, reasons: proposal.reasons)
            let changed = calibrated.calibratedAction != proposal.action
            calibrated.reasons = changed ? [.heatCalibrated] : []
            (verdict, reason) = changed ? (.modify, .heatCalibrated) : (.pass, .passed)
            detail = "heat \(heat) \(calibrated.bucket), mode \(mode)"
        }
        try context.emit("calibrated", calibrated, subject: Subjects.harvestCalibrated(proposal.symbol))
        try context.decide(verdict, reason: reason, about: proposal.proposalID, kind: .proposal, symbol: proposal.symbol,
                           detail: detail, before: ["action": "\(proposal.action)"],
                           after: ["calibrated_action": "\(calibrated.calibratedAction)", "bucket": "\(calibrated.bucket)"])
    }

    public enum Reading: Sendable { case known(Double), unknown(String) }

    private func heat(_ context: HandlerContext) async throws -> Reading {
        let nowMs = context.clock.nowMs()
        if let cached = cache.value(at: nowMs, maxAgeMs: refreshMs) { return cached }
        let reading = try await Self.read(context)
        cache.store(reading, at: nowMs)
        return reading
    }

    static func read(_ context: HandlerContext) async throws -> Reading {
        try await read(snapshots: context.kv("qt_snapshot"), states: context.kv("qt_marketstate"))
    }

    /// Portfolio heat from the position snapshots and market states; the status view of `qt up`
    /// reads it the same way the gate does.
    public static func read(snapshots: some KeyValueReading, states: some KeyValueReading) async throws -> Reading {
        do {
            return try await readKnown(snapshots: snapshots, states: states)
        } catch let unreadable as UnreadableValue {
            return .unknown("\(unreadable)")  // UNKNOWN, never silently COLD (§6.3); exits pass UNKNOWN
        }
    }

    private static func readKnown(snapshots: some KeyValueReading, states: some KeyValueReading) async throws -> Reading {
        guard let account = try await snapshots.get(AccountSnapshot.self, "_account")?.value else {
            return .unknown("no account snapshot (qt_snapshot/_account)")
        }
        guard let equity = Decimal.parse(account.totalMarginBalance) else {
            return .unknown("qt_snapshot/_account total_margin_balance is \"\(account.totalMarginBalance)\"")
        }
        var exposures: [HeatKernel.Exposure] = []
        for key in try await snapshots.keys() where key != "_account" {
            guard let snapshot = try await snapshots.get(PositionSnapshot.self, key)?.value,
                  let amount = Decimal.parse(snapshot.positionAmt), amount != 0 else { continue }
            guard let mark = Decimal.parse(snapshot.markPrice) else { return .unknown("\(key): mark price \"\(snapshot.markPrice)\"") }
            guard let state = try await states.get(MarketState.self, key)?.value else { return .unknown("\(key): no market state") }
            exposures.append(HeatKernel.Exposure(notional: (amount * mark).doubleValue, sigma: state.sigma))
        }
        return .known(HeatKernel.heat(exposures, equity: equity.doubleValue))
    }
}

final class HeatCache: Sendable {
    private let reading = Mutex<(HeatGatePlugin.Reading, Int64)?>(nil)

    func value(at nowMs: Int64, maxAgeMs: Int64) -> HeatGatePlugin.Reading? {
        reading.withLock { reading in
            guard let (value, at) = reading, nowMs - at < maxAgeMs else { return nil }
            return value
        }
    }

    func store(_ value: HeatGatePlugin.Reading, at nowMs: Int64) {
        reading.withLock { $0 = (value, nowMs) }
    }
}
