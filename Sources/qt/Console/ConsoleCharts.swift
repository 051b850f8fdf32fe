import Foundation
import Messages

/// SVG drawn on the server: a line chart with one circle per point and optional trade markers,
/// and the stage graph of the running plugins. No chart library, nothing to download.
enum ConsoleCharts {
    struct Marker {
        let x: Double
        let y: Double
        /// "entry" or "exit": the marker's class and shape.
        let kind: String
        let label: String
    }

    /// `points` (x, y) scaled into `width`×`height`; markers on the same scales.
    static func line(id: String, points: [(x: Double, y: Double)], markers: [Marker] = [], width: Int = 560, height: Int = 180,
                     yLabel: String) -> String {
        guard !points.isEmpty else { return "<p class=\"empty\">no \(ConsoleHTML.escape(yLabel)) yet</p>" }
        let xs = points.map(\.x) + markers.map(\.x), ys = points.map(\.y) + markers.map(\.y)
        let (minX, maxX, minY, maxY) = (xs.min()!, xs.max()!, ys.min()!, ys.max()!)
        let margin = 36.0
        let plotWidth = Double(width) - margin - 8, plotHeight = Double(height) - 24
        func scaledX(_ x: Double) -> Double { margin + (maxX > minX ? (x - minX) / (maxX - minX) * plotWidth : plotWidth / 2) }
        func scaledY(_ y: Double) -> Double { 8 + (maxY > minY ? (maxY - y) / (maxY - minY) * plotHeight : plotHeight / 2) }
        let polyline = points.map { String(format: "%.1f,%.1f", scaledX($0.x), scaledY($0.y)) }.joined(separator: " ")
        let circles = points.map { String(format: "<circle class=\"point\" cx=\"%.1f\" cy=\"%.1f\" r=\"1.8\" fill=\"#2f6fd6\"/>", scaledX($0.x), scaledY($0.y)) }
        let marks = markers.map { marker -> String in
            let (x, y) = (scaledX(marker.x), scaledY(marker.y))
            let shape = marker.kind == "entry"
                ? String(format: "<path d=\"M%.1f %.1f l5 9 h-10 z\" fill=\"#1b7f3b\"/>", x, y)
                : String(format: "<path d=\"M%.1f %.1f l5 -9 h-10 z\" fill=\"#b3261e\"/>", x, y)
            return "<g class=\"marker \(marker.kind)\"><title>\(ConsoleHTML.escape(marker.label))</title>\(shape)</g>"
        }
        return """
        <svg id="\(id)-svg" class="chart" data-points="\(points.count)" data-markers="\(markers.count)" width="\(width)" height="\(height)" \
        viewBox="0 0 \(width) \(height)" xmlns="http://www.w3.org/2000/svg">\
        <text x="2" y="12">\(format(maxY))</text><text x="2" y="\(height - 14)">\(format(minY))</text>\
        <text x="\(width - 4)" y="\(height - 2)" text-anchor="end">\(ConsoleHTML.escape(yLabel))</text>\
        <polyline fill="none" stroke="#2f6fd6" stroke-width="1.5" points="\(polyline)"/>\(circles.joined())\(marks.joined())</svg>
        """
    }

    private static func format(_ value: Double) -> String {
        abs(value) >= 100 ? String(format: "%.1f", value) : String(format: "%.4g", value)
    }

    struct StageNode {
        let plugin: String
        let hosts: [String]
    }

    /// One box per plugin, in columns by stage (how many plugins feed it, transitively), and an
    /// edge wherever one plugin's output subject overlaps another's input.
    static func stageGraph(_ manifests: [PluginManifestInfo], hostsByPlugin: [String: [String]]) -> String {
        let plugins = Dictionary(manifests.map { ($0.name, $0) }) { first, _ in first }
        let names = plugins.keys.sorted()
        guard !names.isEmpty else { return "<p class=\"empty\">no host has registered in qt_hosts</p>" }
        var edges: [(from: String, to: String)] = []
        for from in names {
            for to in names where from != to {
                let feeds = plugins[from]!.outputs.contains { output in
                    plugins[to]!.inputs.contains { SubjectPattern(output.subject).overlaps(SubjectPattern($0.subject)) }
                }
                if feeds { edges.append((from, to)) }
            }
        }
        var stage = Dictionary(names.map { ($0, 0) }) { first, _ in first }
        // Longest path from a source; bounded so that a cycle (exec results feeding back) cannot spin.
        for _ in 0..<names.count {
            for edge in edges where stage[edge.to]! < stage[edge.from]! + 1 && stage[edge.from]! + 1 < names.count {
                stage[edge.to] = stage[edge.from]! + 1
            }
        }
        let columns = Dictionary(grouping: names) { stage[$0]! }
        let boxWidth = 120, boxHeight = 34, columnGap = 36, rowGap = 14
        let columnCount = (columns.keys.max() ?? 0) + 1
        let rows = columns.values.map(\.count).max() ?? 1
        var position: [String: (x: Int, y: Int)] = [:]
        for (column, members) in columns {
            for (row, name) in members.sorted().enumerated() {
                position[name] = (8 + column * (boxWidth + columnGap), 8 + row * (boxHeight + rowGap))
            }
        }
        let width = 16 + columnCount * (boxWidth + columnGap), height = 16 + rows * (boxHeight + rowGap)
        let lines = edges.map { edge -> String in
            let (from, to) = (position[edge.from]!, position[edge.to]!)
            return "<line class=\"edge\" data-from=\"\(edge.from)\" data-to=\"\(edge.to)\" x1=\"\(from.x + boxWidth)\" y1=\"\(from.y + boxHeight / 2)\" "
                + "x2=\"\(to.x)\" y2=\"\(to.y + boxHeight / 2)\" stroke=\"#9aa5b8\" marker-end=\"url(#arrow)\"/>"
        }
        let boxes = names.map { name -> String in
            let at = position[name]!
            let hosts = hostsByPlugin[name] ?? []
            return "<g class=\"plugin-node\" data-plugin=\"\(ConsoleHTML.escape(name))\" transform=\"translate(\(at.x),\(at.y))\">"
                + "<rect width=\"\(boxWidth)\" height=\"\(boxHeight)\" rx=\"4\" fill=\"#eef2fb\" stroke=\"#2f6fd6\"/>"
                + "<text x=\"6\" y=\"14\">\(ConsoleHTML.escape(name))</text>"
                + "<text x=\"6\" y=\"28\" fill=\"#667\">\(hosts.count) host\(hosts.count == 1 ? "" : "s")</text></g>"
        }
        return """
        <svg id="stage-graph" width="\(width)" height="\(height)" viewBox="0 0 \(width) \(height)" xmlns="http://www.w3.org/2000/svg">\
        <defs><marker id="arrow" viewBox="0 0 10 10" refX="10" refY="5" markerWidth="6" markerHeight="6" orient="auto">\
        <path d="M0 0 L10 5 L0 10 z" fill="#9aa5b8"/></marker></defs>\(lines.joined())\(boxes.joined())</svg>
        """
    }
}
