import Bus
import Exchange
import Foundation
import HTTPTypes
import Hummingbird
import Messages
import NIOCore

extension ConsoleServer.Routes {
    private static let html = "text/html; charset=utf-8"

    func respond(_ request: Request) async throws -> Response {
        let path = request.uri.path
        let query = Dictionary(QueryString.decode(request.uri.query ?? "")) { first, _ in first }
        switch (request.method, path) {
        case (.get, "/"):
            let fragments = OverviewPage.fragments(sampler.sample, sampler.activity.counts)
            return page(ConsoleHTML.page(title: "Overview", page: "overview", live: true, body: OverviewPage.body(fragments)))
        case (.get, "/pipeline"):
            let fragments = PipelinePage.fragments(sampler.sample)
            return page(ConsoleHTML.page(title: "Pipeline", page: "pipeline", live: true, body: PipelinePage.body(fragments)))
        case (.get, "/symbol"):
            return page(ConsoleHTML.page(title: "Symbols", page: "symbol", live: false, body: try await symbolIndex()))
        case (.get, _) where path.hasPrefix("/symbol/"):
            let symbol = String(path.dropFirst("/symbol/".count)).uppercased()
            guard Symbols.isValid(symbol) else {
                return ConsoleServer.response(404, Self.html, ConsoleHTML.page(title: "Symbol", page: "symbol", live: false,
                    body: "<section><p id=\"error\">\(ConsoleHTML.escape(symbol)) is not a symbol (expected e.g. BTCUSDT)</p></section>"))
            }
            let fragments = try await SymbolPage.fragments(bus, symbol: symbol, withChains: true)
            return page(ConsoleHTML.page(title: symbol, page: "symbol", symbol: symbol, live: true, body: SymbolPage.body(symbol: symbol, fragments)))
        case (.get, "/trace"):
            return page(try await tracePage(query["id"]?.trimmingCharacters(in: .whitespaces) ?? ""))
        case (.get, "/control"):
            return page(try await control.page())
        case (.post, "/control"):
            var request = request
            let body = try await request.collectBody(upTo: 1 << 14)
            let (status, html) = try await control.submit(String(buffer: body))
            return ConsoleServer.response(status, Self.html, html)
        case (.get, "/console.js"):
            return ConsoleServer.response(200, "text/javascript; charset=utf-8", ConsoleHTML.script)
        case (.get, "/events"):
            return events(page: query["page"] ?? "", symbol: (query["symbol"] ?? "").uppercased())
        default:
            return ConsoleServer.response(404, Self.html, ConsoleHTML.page(title: "Not found", page: "", live: false,
                                                                           body: "<section><p id=\"error\">no page at \(ConsoleHTML.escape(path))</p></section>"))
        }
    }

    private func page(_ html: String) -> Response {
        ConsoleServer.response(200, Self.html, html, headers: [(.cacheControl, "no-store")])
    }

    /// One `update` event a second (the symbol page every two: it reads streams per update) until
    /// the page closes or the console stops.
    private func events(page: String, symbol: String) -> Response {
        var headers = HTTPFields()
        headers[.contentType] = "text/event-stream"
        headers[.cacheControl] = "no-store"
        let routes = self
        return Response(status: .ok, headers: headers, body: ResponseBody { writer in
            var tick = 0
            while !routes.stopping.isSet {
                let fragments: [String: String]
                switch page {
                case "overview": fragments = OverviewPage.fragments(routes.sampler.sample, routes.sampler.activity.counts)
                case "pipeline": fragments = PipelinePage.fragments(routes.sampler.sample)
                case "symbol" where Symbols.isValid(symbol):
                    fragments = (try? await SymbolPage.fragments(routes.bus, symbol: symbol, withChains: tick % 5 == 4)) ?? [:]
                default: fragments = [:]
                }
                let json = try JSONSerialization.data(withJSONObject: fragments)
                try await writer.write(ByteBuffer(string: "event: update\ndata: " + String(decoding: json, as: UTF8.self) + "\n\n"))
                tick += 1
                try await routes.stopping.pause(seconds: page == "symbol" ? 2 : 1)
            }
            try await writer.finish(nil)
        })
    }

    private func symbolIndex() async throws -> String {
        let positions = sampler.sample.state?.positions.map(\.symbol) ?? []
        let ledger = try await bus.keyValue("qt_ledger").keys().sorted()
        let universe = try await bus.keyValue("qt_universe").keys().sorted()
        let symbols = positions + (ledger + universe).filter { !positions.contains($0) && Symbols.isValid($0) }
        var seen = Set<String>()
        let links = symbols.filter { seen.insert($0).inserted }.map { symbol in
            "<li class=\"symbol\"><a href=\"/symbol/\(ConsoleHTML.urlComponent(symbol))\">\(ConsoleHTML.escape(symbol))</a>"
                + (positions.contains(symbol) ? " (open position)" : "") + "</li>"
        }
        return ConsoleHTML.section("Symbols (open positions first, then the ledger and the universe)", id: "symbols",
                                   links.isEmpty ? "<p class=\"empty\">no symbol yet</p>" : "<ul>\(links.joined())</ul>")
    }

    /// The same chain `qt trace ID` prints: every record as a row, then the text with KV records.
    private func tracePage(_ id: String) async throws -> String {
        let form = "<form method=\"get\" action=\"/trace\"><label>Intent, proposal, plan, message, trace or client order id "
            + "<input name=\"id\" value=\"\(ConsoleHTML.escape(id))\" size=\"48\"></label> <button type=\"submit\">Trace</button></form>"
        guard !id.isEmpty else {
            return ConsoleHTML.page(title: "Trace", page: "trace", live: false, body: ConsoleHTML.section("Trace", id: "trace-form", form))
        }
        let key = id.hasPrefix("qt-") ? String(id.dropFirst(3)) : id
        guard let chain = CausalChain.find(key, in: try await CausalChain.load(bus, symbol: nil)) else {
            return ConsoleHTML.page(title: "Trace", page: "trace", live: false, body: ConsoleHTML.section("Trace", id: "trace-form", form)
                + "<section><p id=\"error\">no message names \(ConsoleHTML.escape(id)) on the signal, exit, plan, exec or decision subjects</p></section>")
        }
        let first = chain.records.first?.wallMs ?? 0
        let rows = chain.records.map { record in
            ["+\(record.wallMs - first) ms", ConsoleHTML.escape(record.kind), "<code>\(ConsoleHTML.escape(record.subject))</code>",
             ConsoleHTML.escape(record.summary), "<code>\(ConsoleHTML.escape(String(record.meta.id.prefix(8))))</code> "
                + ConsoleHTML.escape(record.meta.producer)]
        }
        let text = try await chain.render(bus).map(ConsoleHTML.escape).joined(separator: "\n")
        return ConsoleHTML.page(title: "Trace \(id.prefix(12))", page: "trace", live: false, body:
            ConsoleHTML.section("Trace", id: "trace-form", form)
            + ConsoleHTML.section("Chain of \(id.prefix(16)) on \(chain.symbol)", id: "chain",
                                  ConsoleHTML.table(["at", "kind", "subject", "what", "id · producer"], rows, rowClass: "trace-record", empty: "empty chain"))
            + ConsoleHTML.section("As qt trace prints it", id: "trace-text", "<pre>\(text)</pre>"))
    }
}
