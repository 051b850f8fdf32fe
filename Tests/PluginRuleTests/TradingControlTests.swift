import Host
import Messages
@testable import Plugins
import XCTest

/// `qt_control/trading_state` as the gates read it: no key is ACTIVE (no operator action yet); a
/// value outside the enum fails closed (HALTED) and the sentinel raises one CRITICAL alert.
final class TradingControlTests: XCTestCase {
    func control(_ state: TradingState) -> KeyReading<Control> {
        var control = Control()
        control.tradingState = state
        return .value(control, revision: 1)
    }

    let unreadable = KeyReading<Control>.unreadable(UnreadableValue(bucket: "qt_control", key: "trading_state", problem: "12 bytes do not decode"))

    func testNoKeyIsActiveAndAKnownStateIsItself() {
        XCTAssertEqual(TradingControl.effectiveState(.missing), .active)
        for state in [TradingState.active, .reducing, .halted] {
            XCTAssertEqual(TradingControl.effectiveState(control(state)), state)
        }
    }

    func testAnUnspecifiedOrUnknownStateIsHaltedNeverActive() {
        XCTAssertEqual(TradingControl.effectiveState(control(.unspecified)), .halted)
        XCTAssertEqual(TradingControl.effectiveState(control(.UNRECOGNIZED(7))), .halted)
        XCTAssertEqual(TradingControl.effectiveState(unreadable), .halted, "a value that does not decode is not a missing key")
        let halted = TradingControl(state: TradingControl.effectiveState(control(.UNRECOGNIZED(7))), killSwitch: false)
        XCTAssertEqual(halted.refusal(entry: false)?.reason, .tradingHalted)
    }

    func testTheSentinelRaisesACriticalControlAlertOnlyForAStateNoGateCanRead() throws {
        XCTAssertNil(SentinelPlugin.controlFinding(.missing))
        XCTAssertNil(SentinelPlugin.controlFinding(control(.reducing)))
        let finding = try XCTUnwrap(SentinelPlugin.controlFinding(control(.UNRECOGNIZED(7))))
        XCTAssertEqual(finding.alert.kind, .control)
        XCTAssertEqual(finding.alert.severity, .critical)
        XCTAssertEqual(finding.alert.subject, "qt_control/trading_state")
        let broken = try XCTUnwrap(SentinelPlugin.controlFinding(unreadable))
        XCTAssertEqual(broken.alert.severity, .critical)
        XCTAssertTrue(broken.alert.message.contains("do not decode"), broken.alert.message)
        XCTAssertFalse(finding.reduces, "the sentinel never loosens a state it cannot read into REDUCING")
    }
}
