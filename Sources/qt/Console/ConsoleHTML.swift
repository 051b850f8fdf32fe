import Foundation

/// The console's page frame, its one script and HTML escaping. Pages are rendered on the server;
/// the script only swaps in the fragments that `/events` sends (Server-Sent Events), so a page
/// stays live without a reload and nothing is fetched from anywhere but the console.
enum ConsoleHTML {
    static func escape(_ text: String) -> String {
        var escaped = ""
        escaped.reserveCapacity(text.utf8.count)
        for character in text {
            switch character {
            case "&": escaped += "&amp;"
            case "<": escaped += "&lt;"
            case ">": escaped += "&gt;"
            case "\"": escaped += "&quot;"
            case "'": escaped += "&#39;"
            default: escaped.append(character)
            }
        }
        return escaped
    }

    static func urlComponent(_ text: String) -> String {
        text.addingPercentEncoding(withAllowedCharacters: .alphanumerics) ?? text
    }

    /// A whole page: `fragments` fill the elements whose ids they name, and `/events?page=…`
    /// keeps them current when `live` is set.
    static func page(title: String, page: String, symbol: String = "", live: Bool, body: String) -> String {
        let navigation = [("Overview", "/"), ("Pipeline", "/pipeline"), ("Symbol", "/symbol"), ("Trace", "/trace"), ("Control", "/control")]
            .map { "<a href=\"\($0.1)\"\($0.0.lowercased() == page ? " class=\"current\"" : "")>\($0.0)</a>" }.joined(separator: " ")
        return """
        <!DOCTYPE html>
        <html lang="en"><head><meta charset="utf-8"><title>\(escape(title)) · Quantum Trader</title>
        <style>\(style)</style></head>
        <body data-page="\(page)" data-symbol="\(escape(symbol))" data-live="\(live)" data-updates="0">
        <header><strong>Quantum Trader</strong> <nav>\(navigation)</nav> <span id="live-status">\(live ? "connecting…" : "")</span></header>
        <main>\(body)</main>
        <script src="/console.js"></script>
        </body></html>
        """
    }

    static func section(_ title: String, id: String, wide: Bool = false, _ content: String) -> String {
        "<section\(wide ? " class=\"wide\"" : "")><h2>\(escape(title))</h2><div id=\"\(id)\">\(content)</div></section>"
    }

    static func table(_ headers: [String], _ rows: [[String]], rowClass: String = "", empty: String) -> String {
        guard !rows.isEmpty else { return "<p class=\"empty\">\(escape(empty))</p>" }
        let head = "<tr>" + headers.map { "<th>\(escape($0))</th>" }.joined() + "</tr>"
        let body = rows.map { row in
            "<tr\(rowClass.isEmpty ? "" : " class=\"\(rowClass)\"")>" + row.map { "<td>\($0)</td>" }.joined() + "</tr>"
        }.joined()
        return "<table>\(head)\(body)</table>"
    }

    /// Applies each update's fragments by element id and counts updates on `body[data-updates]`.
    static let script = """
    (function () {
      var body = document.body;
      if (body.dataset.live !== "true") return;
      var status = document.getElementById("live-status");
      var source = new EventSource("/events?page=" + encodeURIComponent(body.dataset.page) + "&symbol=" + encodeURIComponent(body.dataset.symbol));
      source.addEventListener("update", function (event) {
        var fragments = JSON.parse(event.data);
        Object.keys(fragments).forEach(function (id) {
          var element = document.getElementById(id);
          if (element) element.innerHTML = fragments[id];
        });
        body.dataset.updates = String(Number(body.dataset.updates) + 1);
        status.textContent = "live · " + new Date().toLocaleTimeString();
      });
      source.onerror = function () { status.textContent = "disconnected, retrying…"; };
    })();
    """

    private static let style = """
    body{font-family:system-ui,sans-serif;margin:0;background:#f6f7f9;color:#1d2330}
    header{background:#1d2330;color:#fff;padding:.6em 1em;display:flex;gap:1.5em;align-items:center}
    header a{color:#b9c4dc;margin-right:1em;text-decoration:none}header a.current{color:#fff;font-weight:bold}
    #live-status{margin-left:auto;font-size:.85em;color:#9fd3a8}
    main{padding:1em;display:grid;grid-template-columns:repeat(auto-fit,minmax(32em,1fr));gap:1em}
    section{background:#fff;border-radius:6px;padding:.6em 1em;box-shadow:0 1px 2px #0002;overflow-x:auto}section.wide{grid-column:1/-1}
    h2{font-size:1em;margin:.2em 0 .6em}table{border-collapse:collapse;width:100%;font-size:.85em}
    th,td{text-align:left;padding:.2em .5em;border-bottom:1px solid #e3e6ec}td.num{text-align:right}
    .empty{color:#889}.pass{color:#1b7f3b}.block,.reject{color:#b3261e}.warning{color:#a15c00}.critical{color:#b3261e;font-weight:bold}
    .figures{display:flex;flex-wrap:wrap;gap:1.5em}.figure b{display:block;font-size:1.3em}
    pre{font-size:.8em;overflow-x:auto}form label{display:block;margin:.4em 0}
    button{padding:.4em 1em;margin-right:.5em}svg text{font-size:11px}
    """
}
