import Bus
import Foundation
import Messages
import SwiftProtobuf

/// Renders bus messages and KV entries as one-line JSON, decoded through the schema.
enum MessageJSON {
    struct Rendered {
        let json: String
        let decoded: Bool
    }

    static func render(_ message: InboundMessage, raw: Bool) -> Rendered {
        let headers = message.headers
        var fields: [(String, String)] = [
            ("stream", quote(message.stream)),
            ("seq", String(message.streamSequence)),
            ("subject", quote(message.subject)),
            ("time", quote(timestamp(ns: message.timestampNs))),
            ("headers", object(headers.sorted { $0.key < $1.key }.map { ($0.key, quote($0.value)) })),
        ]
        let typeName = headers[HeaderName.type] ?? Topology.route(for: message.subject)?.typeName
        fields.append(("type", typeName.map(quote) ?? "null"))
        let body = payloadField(message.payload, typeName: typeName, raw: raw)
        fields.append(body.field)
        return Rendered(json: object(fields), decoded: body.decoded)
    }

    static func render(_ entry: KeyValueEntry, typeName: String?, raw: Bool) -> Rendered {
        var fields: [(String, String)] = [
            ("bucket", quote(entry.bucket)),
            ("key", quote(entry.key)),
            ("revision", String(entry.revision)),
            ("operation", quote(entry.operation.rawValue)),
            ("created", quote(timestamp(ns: entry.createdNs))),
            ("type", typeName.map(quote) ?? "null"),
        ]
        if entry.operation != .put {
            return Rendered(json: object(fields), decoded: true)
        }
        let body = payloadField(entry.value, typeName: typeName, raw: raw)
        fields.append(body.field)
        return Rendered(json: object(fields), decoded: body.decoded)
    }

    private static func payloadField(_ payload: [UInt8], typeName: String?, raw: Bool) -> (field: (String, String), decoded: Bool) {
        if raw { return (("payload_base64", quote(Data(payload).base64EncodedString())), true) }
        guard let typeName else {
            return (("error", quote("no Qt-Type header and the subject is not in the topology")), false)
        }
        guard let type = MessageTypes.named(typeName) else {
            return (("error", quote("unknown type \(typeName)")), false)
        }
        do {
            let message = try type.init(serializedBytes: payload)
            var options = JSONEncodingOptions()
            options.preserveProtoFieldNames = true
            return (("message", try message.jsonString(options: options)), true)
        } catch {
            return (("error", quote("payload does not decode as \(typeName): \(error)")), false)
        }
    }

    static func quote(_ text: String) -> String {
        let data = try? JSONSerialization.data(withJSONObject: [text], options: [.withoutEscapingSlashes])
        let array = data.map { String(decoding: $0, as: UTF8.self) } ?? "[\"\"]"
        return String(array.dropFirst().dropLast())
    }

    static func object(_ fields: [(String, String)]) -> String {
        "{" + fields.map { "\(quote($0.0)):\($0.1)" }.joined(separator: ",") + "}"
    }

    private static func timestamp(ns: Int64) -> String {
        let date = Date(timeIntervalSince1970: Double(ns) / 1e9)
        let formatter = ISO8601DateFormatter()
        formatter.formatOptions = [.withInternetDateTime, .withFractionalSeconds]
        return formatter.string(from: date)
    }
}
