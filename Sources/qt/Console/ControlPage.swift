import Bus
import Exchange
import Foundation
import Messages

/// The Control page: halt, reduce and resume behind the operator token, each in two steps (ask,
/// then confirm). A change goes to `qt_control/trading_state` with who and when, the way
/// `qt control` writes it; the key's history is the record of every action.
struct ControlPage: Sendable {
    /// The token an operator must give; nil when the console was started without one (no control).
    let operatorToken: String?
    /// The connection with the operator's identity, used for nothing but these writes.
    let operatorBus: BusConnection
    let readBus: BusConnection

    struct Form {
        var action = ""
        var token = ""
        var who = ""
        var reason = ""
        var confirmed = false

        init(_ body: String) {
            for (key, value) in QueryString.decode(body.replacingOccurrences(of: "+", with: " ")) {
                switch key {
                case "action": action = value
                case "token": token = value
                case "who": who = value
                case "reason": reason = value
                case "confirm": confirmed = value == "yes"
                default: break
                }
            }
        }
    }

    static let actions: [(action: String, state: TradingState, label: String)] = [
        ("halt", .halted, "Halt: no orders at all"), ("reduce", .reducing, "Reduce only: exits pass"), ("resume", .active, "Resume: ACTIVE"),
    ]

    func page(message: String = "") async throws -> String {
        var body = ConsoleHTML.section("Trading state", id: "control-state", try await stateAndHistory())
        if let message = message.isEmpty ? nil : message { body = "<section id=\"outcome\">\(message)</section>" + body }
        let form: String
        if operatorToken == nil {
            form = "<p id=\"control-off\">The console was started without an operator token (--operator-token-file): control is off.</p>"
        } else {
            form = """
            <form method="post" action="/control" id="control-form">
            <label>Operator token <input type="password" name="token" id="token" autocomplete="off"></label>
            <label>Who <input type="text" name="who" id="who" placeholder="your name"></label>
            <label>Reason <input type="text" name="reason" id="reason"></label>
            \(Self.actions.map { "<button type=\"submit\" name=\"action\" value=\"\($0.action)\" id=\"action-\($0.action)\">\(ConsoleHTML.escape($0.label))</button>" }.joined())
            </form>
            """
        }
        body += ConsoleHTML.section("Change it", id: "control-actions", form)
        return ConsoleHTML.page(title: "Control", page: "control", live: false, body: body)
    }

    /// A POST from the form: refused without the right token; otherwise a confirmation step,
    /// then the write. Returns the HTTP status and the page.
    func submit(_ body: String) async throws -> (status: Int, html: String) {
        let form = Form(body)
        guard let expected = operatorToken else {
            return (403, try await page(message: "<p id=\"refused\" class=\"block\">refused: control is off (no operator token configured)</p>"))
        }
        guard !form.token.isEmpty, Self.sameToken(form.token, expected) else {
            return (403, try await page(message: "<p id=\"refused\" class=\"block\">refused: "
                                       + (form.token.isEmpty ? "the operator token is required" : "wrong operator token") + "; nothing changed</p>"))
        }
        guard let choice = Self.actions.first(where: { $0.action == form.action }) else {
            return (400, try await page(message: "<p id=\"refused\" class=\"block\">unknown action \"\(ConsoleHTML.escape(form.action))\": "
                                       + "expected halt, reduce or resume</p>"))
        }
        let who = form.who.trimmingCharacters(in: .whitespaces).isEmpty ? "operator" : form.who
        guard form.confirmed else {
            let hidden = [("token", form.token), ("action", form.action), ("who", who), ("reason", form.reason), ("confirm", "yes")]
                .map { "<input type=\"hidden\" name=\"\($0.0)\" value=\"\(ConsoleHTML.escape($0.1))\">" }.joined()
            let confirm = """
            <p id="confirm-question">Set the trading state to <b>\(ControlCommand.name(choice.state))</b> as \(ConsoleHTML.escape(who))?</p>
            <form method="post" action="/control" id="confirm-form">\(hidden)<button type="submit" id="confirm">Confirm</button> <a href="/control">Cancel</a></form>
            """
            return (200, try await page(message: confirm))
        }
        let revision = try await ControlCommand.write(choice.state, reason: form.reason, by: "\(who) (console)", bus: operatorBus)
        return (200, try await page(message: "<p id=\"result\" class=\"pass\">trading_state: \(ControlCommand.name(choice.state)) (revision \(revision))</p>"))
    }

    private func stateAndHistory() async throws -> String {
        let bucket = try await readBus.keyValue("qt_control")
        let history = try await bucket.history("trading_state")
        let kill = try await bucket.get(Control.self, "kill_switch")?.value
        let current = try history.last.flatMap { try $0.decoded(as: Control.self) }
        let rows = try history.suffix(10).reversed().map { entry -> [String] in
            guard let control = try entry.decoded(as: Control.self) else { return [String(entry.revision), "deleted", "", "", ""] }
            return [String(entry.revision), ControlCommand.name(control.tradingState), ConsoleHTML.escape(control.setBy),
                    ConsoleHTML.escape(CausalChain.timestamp(control.setAtMs)), ConsoleHTML.escape(control.reason)]
        }
        return "<p>trading state <b id=\"trading-state\">\(current.map { ControlCommand.name($0.tradingState) } ?? "ACTIVE")</b>"
            + " · kill switch <b>\(kill?.killSwitch == true ? "ON" : "off")</b></p>"
            + ConsoleHTML.table(["revision", "state", "by", "at", "reason"], rows, rowClass: "control-history", empty: "never set (ACTIVE)")
    }

    /// Compares in time independent of where the first difference is.
    static func sameToken(_ given: String, _ expected: String) -> Bool {
        let (a, b) = (Array(given.utf8), Array(expected.utf8))
        var difference = UInt8(a.count == b.count ? 0 : 1)
        for index in 0..<max(a.count, b.count) { difference |= (index < a.count ? a[index] : 0) ^ (index < b.count ? b[index] : 0) }
        return difference == 0
    }
}
