import Messages
@testable import Plugins
import XCTest

/// `qt_control/trading_state` as the gates read it: no key is ACTIVE (no operator action yet); a
/// value outside the enum fails closed (HALTED) and the sentinel raises one CRITICAL alert.
final class TradingControlTests: XCTestCase {
    func control(_ state: TradingState) -> Control {
        var control = Control()
        control.tradingState = state
        return control
    }

    func testNoKeyIsActiveAndAKnownStateIsItself() {
        XCTAssertEqual(TradingControl.effectiveState(nil), .active)
        for state in [TradingState.active, .reducing, .halted] {
            XCTAssertEqual(TradingControl.effectiveState(control(state)), state)
        }
    }

    func testAnUnspecifiedOrUnknownStateIsHaltedNeverActive() {
        XCTAssertEqual(TradingControl.effectiveState(control(.unspecified)), .halted)
        XCTAssertEqual(TradingControl.effectiveState(control(.UNRECOGNIZED(7))), .halted)
        let halted = TradingControl(state: TradingControl.effectiveState(control(.UNRECOGNIZED(7))), killSwitch: false)
        XCTAssertEqual(halted.refusal(entry: false)?.reason, .tradingHalted)
    }

    func testTheSentinelRaisesACriticalControlAlertOnlyForAStateNoGateCanRead() throws {
        XCTAssertNil(SentinelPlugin.controlFinding(nil))
        XCTAssertNil(SentinelPlugin.controlFinding(control(.reducing)))
        let finding = try XCTUnwrap(SentinelPlugin.controlFinding(control(.UNRECOGNIZED(7))))
        XCTAssertEqual(finding.alert.kind, .control)
        XCTAssertEqual(finding.alert.severity, .critical)
        XCTAssertEqual(finding.alert.subject, "qt_control/trading_state")
        XCTAssertFalse(finding.reduces, "the sentinel never loosens a state it cannot read into REDUCING")
    }
}
