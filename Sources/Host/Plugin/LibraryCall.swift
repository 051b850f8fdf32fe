import CQtPlugin
import Foundation
import Logging
import Messages
import SwiftProtobuf
import Synchronization

/// One `create`, `handle` or `tick` call into a library plugin, as the host callbacks see it
/// (`qt_call *`): the handler context, what the plugin or a refused callback said went wrong,
/// and the buffers handed to C that live until the call ends.
///
/// Callbacks run on the plugin's worker thread (never the cooperative pool), so one that needs
/// the bus blocks that thread until a task has done the work.
final class LibraryCall: @unchecked Sendable {
    let plugin: String
    let manifest: PluginManifest
    let context: HandlerContext?
    /// The reason the plugin gave (`fail`), or the host's for a refused callback.
    private(set) var failure: String?
    /// The first callback the host refused: it decides the call's outcome even when the plugin
    /// goes on and returns QT_OK.
    private var refusal: (status: qt_status, reason: String)?
    private var buffers: [UnsafeMutableRawPointer] = []

    init(plugin: String, manifest: PluginManifest, context: HandlerContext?) {
        self.plugin = plugin
        self.manifest = manifest
        self.context = context
    }

    deinit { buffers.forEach { free($0) } }

    /// `qt_call *` for C: this object, not retained (it outlives the call it is passed to).
    var opaque: OpaquePointer { OpaquePointer(Unmanaged.passUnretained(self).toOpaque()) }

    static func from(_ call: OpaquePointer?) -> LibraryCall? {
        call.map { Unmanaged<LibraryCall>.fromOpaque(UnsafeRawPointer($0)).takeUnretainedValue() }
    }

    /// Maps the plugin's status to the host's outcome (the errors a Swift plugin throws).
    func finish(_ status: qt_status, what: String) throws {
        if let refusal { throw Self.error(refusal.status, "\(plugin) \(what): \(refusal.reason)") }
        switch status {
        case QT_OK: return
        case QT_TRANSIENT, QT_CONFLICT: throw PluginError.transient("\(plugin) \(what): \(failure ?? "transient, no reason given")")
        case QT_PERMANENT: throw PluginError.permanent("\(plugin) \(what): \(failure ?? "no reason given")")
        case QT_CONTRACT: throw PluginError.contract("\(plugin) \(what): \(failure ?? "no reason given")")
        default: throw PluginError.contract("\(plugin) \(what) returned status \(status.rawValue), which qt_plugin.h does not define")
        }
    }

    private static func error(_ status: qt_status, _ text: String) -> PluginError {
        switch status {
        case QT_TRANSIENT, QT_CONFLICT: return .transient(text)
        case QT_PERMANENT: return .permanent(text)
        default: return .contract(text)
        }
    }

    private func refuse(_ status: qt_status, _ reason: String) -> qt_status {
        if refusal == nil { refusal = (status, reason) }
        failure = reason
        return status
    }

    private func refuse(_ error: Error) -> qt_status {
        switch error {
        case PluginError.transient(let text): return refuse(QT_TRANSIENT, text)
        case PluginError.permanent(let text): return refuse(QT_PERMANENT, text)
        case PluginError.contract(let text): return refuse(QT_CONTRACT, text)
        case is KVConflict: return QT_CONFLICT
        default: return refuse(QT_TRANSIENT, "\(error)")
        }
    }

    /// Runs async host work from the worker thread and waits for it there.
    private func wait<T: Sendable>(_ operation: @escaping @Sendable () async throws -> T) -> Result<T, Error> {
        let done = DispatchSemaphore(value: 0)
        let outcome = Mutex<Result<T, Error>?>(nil)
        Task {
            let result: Result<T, Error>
            do { result = .success(try await operation()) } catch { result = .failure(error) }
            outcome.withLock { $0 = result }
            done.signal()
        }
        done.wait()
        return outcome.withLock { $0! }
    }

    // MARK: - the callbacks

    func emit(output: String, subject: String, type: String, bytes: [UInt8], id: String?) -> qt_status {
        guard let context else { return refuse(QT_CONTRACT, "emit outside handle or tick") }
        guard let spec = manifest.outputs.first(where: { $0.name == output }) else {
            return refuse(QT_CONTRACT, "\(plugin) has no output named \(output); declared: " + manifest.outputs.map(\.name).joined(separator: ", "))
        }
        guard spec.type.protoMessageName == type else {
            return refuse(QT_CONTRACT, "\(plugin) output \(output) carries \(spec.type.protoMessageName), not \(type)")
        }
        do {
            try Self.emitDecoded(spec.type, bytes: bytes, output: output, subject: subject, id: id, context: context)
            return QT_OK
        } catch let error as PluginError {
            return refuse(error)
        } catch {
            return refuse(QT_PERMANENT, "\(plugin) output \(output): the bytes do not decode as \(type): \(error)")
        }
    }

    private static func emitDecoded<M: BusMessage>(_ type: M.Type, bytes: [UInt8], output: String, subject: String, id: String?,
                                                   context: HandlerContext) throws {
        try context.emit(output, try M(serializedBytes: bytes), subject: subject, id: id)
    }

    func decide(_ bytes: [UInt8], id: String?) -> qt_status {
        guard let context else { return refuse(QT_CONTRACT, "decide outside handle or tick") }
        do {
            var decision = try Decision(serializedBytes: bytes)
            decision.plugin = plugin
            try context.emit("decisions", decision, subject: Subjects.decision(plugin: plugin, symbol: decision.symbol), id: id)
            return QT_OK
        } catch let error as PluginError {
            return refuse(error)
        } catch {
            return refuse(QT_PERMANENT, "\(plugin) decision: the bytes do not decode as qt.v1.Decision: \(error)")
        }
    }

    func alert(_ bytes: [UInt8], id: String?) -> qt_status {
        guard let context else { return refuse(QT_CONTRACT, "alert outside handle or tick") }
        do {
            var alert = try Alert(serializedBytes: bytes)
            alert.plugin = plugin
            try context.emit("alerts", alert, subject: Subjects.alert(alert.kind), id: id)
            return QT_OK
        } catch let error as PluginError {
            return refuse(error)
        } catch {
            return refuse(QT_PERMANENT, "\(plugin) alert: the bytes do not decode as qt.v1.Alert: \(error)")
        }
    }

    func kvGet(bucket: String, key: String, bytes: UnsafeMutablePointer<UnsafePointer<UInt8>?>?, length: UnsafeMutablePointer<Int>?,
               revision: UnsafeMutablePointer<UInt64>?) -> qt_status {
        guard let context else { return refuse(QT_CONTRACT, "kv_get outside handle or tick") }
        guard let spec = Topology.bucket(named: bucket) else { return refuse(QT_CONTRACT, "\(plugin) reads \(bucket): no such bucket") }
        let valueType = spec.valueType
        switch wait({ try await Self.read(valueType, bucket: bucket, key: key, context: context) }) {
        case .success(nil):
            return QT_NOT_FOUND
        case .success(let found?):
            let buffer = malloc(max(1, found.bytes.count))!
            buffers.append(buffer)
            found.bytes.withUnsafeBytes { buffer.copyMemory(from: $0.baseAddress!, byteCount: found.bytes.count) }
            bytes?.pointee = UnsafePointer(buffer.assumingMemoryBound(to: UInt8.self))
            length?.pointee = found.bytes.count
            revision?.pointee = found.revision
            return QT_OK
        case .failure(let error):
            return refuse(error)
        }
    }

    private static func read<M: BusMessage>(_ type: M.Type, bucket: String, key: String,
                                            context: HandlerContext) async throws -> (bytes: [UInt8], revision: UInt64)? {
        guard let found = try await context.kv(bucket).get(type, key) else { return nil }
        return (try found.value.serializedBytes(), found.revision)
    }

    func kvCompareAndSet(bucket: String, key: String, bytes: [UInt8], expected: UInt64, revision: UnsafeMutablePointer<UInt64>?) -> qt_status {
        guard let context else { return refuse(QT_CONTRACT, "kv_compare_and_set outside handle or tick") }
        guard let spec = Topology.bucket(named: bucket) else { return refuse(QT_CONTRACT, "\(plugin) writes \(bucket): no such bucket") }
        let valueType = spec.valueType
        switch wait({ try await Self.write(valueType, bytes: bytes, bucket: bucket, key: key, expected: expected, context: context) }) {
        case .success(let written):
            revision?.pointee = written
            return QT_OK
        case .failure(let error as BinaryDecodingError):
            return refuse(QT_PERMANENT, "\(plugin) writes \(bucket)/\(key): the bytes do not decode as \(valueType.protoMessageName): \(error)")
        case .failure(let error):
            return refuse(error)
        }
    }

    private static func write<M: BusMessage>(_ type: M.Type, bytes: [UInt8], bucket: String, key: String, expected: UInt64,
                                             context: HandlerContext) async throws -> UInt64 {
        let value = try M(serializedBytes: bytes)
        return try await context.kv(bucket).write(key, value, over: expected == 0 ? nil : expected)
    }

    func log(_ level: qt_log_level, _ message: String) {
        let mapped: Logger.Level = switch level {
        case QT_LOG_DEBUG: .debug
        case QT_LOG_INFO: .info
        case QT_LOG_WARNING: .warning
        default: .error
        }
        context?.logger.log(level: mapped, "\(plugin): \(message)")
    }

    func fail(_ reason: String) { failure = reason }

    // MARK: - the table C sees

    nonisolated(unsafe) static let hostAPI: UnsafePointer<qt_host_api> = {
        let api = UnsafeMutablePointer<qt_host_api>.allocate(capacity: 1)
        api.initialize(to: qt_host_api(
            abi_version: QT_PLUGIN_ABI_VERSION,
            emit: { call, output, subject, type, bytes, length, id in
                guard let call = LibraryCall.from(call), let output, let subject, let type else { return QT_CONTRACT }
                return call.emit(output: String(cString: output), subject: String(cString: subject), type: String(cString: type),
                                 bytes: LibraryCall.copy(bytes, length), id: id.map { String(cString: $0) })
            },
            decide: { call, bytes, length, id in
                LibraryCall.from(call)?.decide(LibraryCall.copy(bytes, length), id: id.map { String(cString: $0) }) ?? QT_CONTRACT
            },
            alert: { call, bytes, length, id in
                LibraryCall.from(call)?.alert(LibraryCall.copy(bytes, length), id: id.map { String(cString: $0) }) ?? QT_CONTRACT
            },
            kv_get: { call, bucket, key, bytes, length, revision in
                guard let call = LibraryCall.from(call), let bucket, let key else { return QT_CONTRACT }
                return call.kvGet(bucket: String(cString: bucket), key: String(cString: key), bytes: bytes, length: length, revision: revision)
            },
            kv_compare_and_set: { call, bucket, key, bytes, length, expected, revision in
                guard let call = LibraryCall.from(call), let bucket, let key else { return QT_CONTRACT }
                return call.kvCompareAndSet(bucket: String(cString: bucket), key: String(cString: key), bytes: LibraryCall.copy(bytes, length),
                                            expected: expected, revision: revision)
            },
            now_ms: { call in LibraryCall.from(call)?.context?.clock.nowMs() ?? Int64(Date().timeIntervalSince1970 * 1000) },
            event_time_ms: { call in LibraryCall.from(call)?.context?.eventTimeMs ?? 0 },
            log: { call, level, message in
                guard let message else { return }
                LibraryCall.from(call)?.log(level, String(cString: message))
            },
            fail: { call, reason in
                LibraryCall.from(call)?.fail(reason.map { String(cString: $0) } ?? "no reason given")
            }))
        return UnsafePointer(api)
    }()

    private static func copy(_ bytes: UnsafePointer<UInt8>?, _ length: Int) -> [UInt8] {
        guard let bytes, length > 0 else { return [] }
        return Array(UnsafeBufferPointer(start: bytes, count: length))
    }
}
