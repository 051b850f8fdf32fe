import BlockingIO
import CQtPlugin
import Foundation
import Messages
import Synchronization

/// A plugin in a shared library (`include/qt_plugin.h`): loaded once per path, its manifest
/// checked against the schema's topology like a built-in plugin's, and run on a thread of its own.
public enum LibraryPlugins {
    public struct Refused: Error, CustomStringConvertible {
        public let path: String
        public let reason: String
        public var description: String { "plugin library \(path): \(reason)" }
    }

    private struct Loaded: @unchecked Sendable {
        let handle: UnsafeMutableRawPointer
        let table: UnsafePointer<qt_plugin_api>
        let manifest: PluginManifest
    }

    /// Libraries stay loaded for the life of the process (a plugin's code must outlive every
    /// instance, and dlclose of a library with threads is not safe).
    private static let loaded = Mutex<[String: Loaded]>([:])

    /// The registration of the plugin `name` in the library at `path`; refused when the library
    /// does not load, speaks another ABI version, or declares a manifest the topology refuses.
    public static func registration(name: String, path: String) throws -> PluginRegistration {
        let library = try load(path)
        guard library.manifest.name == name else {
            throw Refused(path: path, reason: "its manifest names the plugin \"\(library.manifest.name)\", the node config \"\(name)\"")
        }
        return PluginRegistration(manifest: library.manifest) { setup in
            try LibraryPlugin(name: name, path: path, table: library.table, manifest: library.manifest, setup: setup)
        }
    }

    private static func load(_ path: String) throws -> Loaded {
        let resolved = URL(fileURLWithPath: path).standardizedFileURL.path
        if let known = loaded.withLock({ $0[resolved] }) { return known }
        guard FileManager.default.fileExists(atPath: resolved) else { throw Refused(path: path, reason: "no such file") }
        guard let handle = dlopen(resolved, RTLD_NOW | RTLD_LOCAL) else {
            throw Refused(path: path, reason: "cannot be loaded: \(dlerror().map { String(cString: $0) } ?? "unknown dlopen error")")
        }
        guard let symbol = dlsym(handle, QT_PLUGIN_ENTRY_SYMBOL) else {
            throw Refused(path: path, reason: "exports no \(QT_PLUGIN_ENTRY_SYMBOL) (include qt_plugin.h and define it)")
        }
        let entry = unsafeBitCast(symbol, to: qt_plugin_entry_fn.self)
        guard let table = entry() else { throw Refused(path: path, reason: "\(QT_PLUGIN_ENTRY_SYMBOL)() returned NULL") }
        let version = table.pointee.abi_version
        guard version == QT_PLUGIN_ABI_VERSION else {
            throw Refused(path: path, reason: "built for plugin ABI version \(version); this host speaks version \(QT_PLUGIN_ABI_VERSION) "
                          + "(rebuild it against this host's include/qt_plugin.h)")
        }
        guard table.pointee.create != nil, table.pointee.handle != nil, table.pointee.destroy != nil else {
            throw Refused(path: path, reason: "its qt_plugin_api table lacks create, handle or destroy")
        }
        guard let bytes = table.pointee.manifest, table.pointee.manifest_len > 0 else {
            throw Refused(path: path, reason: "its qt_plugin_api table has no manifest")
        }
        let info: Messages.PluginManifestInfo
        do {
            info = try Messages.PluginManifestInfo(serializedBytes: Array(UnsafeBufferPointer(start: bytes, count: table.pointee.manifest_len)))
        } catch {
            throw Refused(path: path, reason: "its manifest does not decode as qt.v1.PluginManifestInfo: \(error)")
        }
        let manifest = try self.manifest(info, path: path)
        if manifest.timers.isEmpty == false, table.pointee.tick == nil {
            throw Refused(path: path, reason: "declares timers but its table has no tick")
        }
        let library = Loaded(handle: handle, table: table, manifest: manifest)
        loaded.withLock { $0[resolved] = library }
        return library
    }

    /// The manifest as the host binds it: every subject pattern must be one the topology routes,
    /// carrying the type the library names; every bucket one the topology has.
    static func manifest(_ info: Messages.PluginManifestInfo, path: String) throws -> PluginManifest {
        guard !info.name.isEmpty, info.name.allSatisfy({ $0.isLetter || $0.isNumber || $0 == "-" || $0 == "_" }) else {
            throw Refused(path: path, reason: "plugin name \"\(info.name)\": expected letters, digits, '-' or '_'")
        }
        func type(of binding: SubjectBinding, as role: String) throws -> any BusMessage.Type {
            guard let route = Topology.route(forFilter: binding.subject) else {
                throw Refused(path: path, reason: "\(role) \(binding.name) on \(binding.subject): no stream of the topology carries that subject")
            }
            guard route.messageType.protoMessageName == binding.type else {
                throw Refused(path: path, reason: "\(role) \(binding.name) declares type \"\(binding.type)\" on \(binding.subject); "
                              + "the schema carries \(route.messageType.protoMessageName) there")
            }
            return route.messageType
        }
        let inputs = try info.inputs.map { InputSpec($0.name, subject: $0.subject, type: try type(of: $0, as: "input")) }
        let outputs = try info.outputs.map { OutputSpec($0.name, subject: $0.subject, type: try type(of: $0, as: "output")) }
        for bucket in info.kvReads + info.kvWrites where Topology.bucket(named: bucket) == nil {
            throw Refused(path: path, reason: "declares bucket \(bucket), which the topology does not have; buckets: "
                          + Topology.buckets.map(\.name).joined(separator: ", "))
        }
        let timers = try info.timers.map { timer -> TimerSpec in
            guard timer.intervalMs > 0 else { throw Refused(path: path, reason: "timer \(timer.name) has interval \(timer.intervalMs) ms") }
            return TimerSpec(timer.name, intervalMs: timer.intervalMs, singleton: timer.singleton)
        }
        return PluginManifest(name: info.name, version: info.version.isEmpty ? "0" : info.version, inputs: inputs, outputs: outputs,
                              kvReads: info.kvReads, kvWrites: info.kvWrites, timers: timers)
    }
}

/// One instance of a library plugin: calls go to its worker thread one at a time, and every
/// call's host callbacks work on that call's `HandlerContext`.
final class LibraryPlugin: Plugin, @unchecked Sendable {
    /// The library's table and this instance: C pointers, used on the worker thread only.
    private struct Native: @unchecked Sendable {
        let table: UnsafePointer<qt_plugin_api>
        let instance: UnsafeMutableRawPointer
    }

    private let name: String
    private let manifest: PluginManifest
    private let worker: BlockingWorker
    private let native: Native
    private let stopped = Mutex(false)

    init(name: String, path: String, table: UnsafePointer<qt_plugin_api>, manifest: PluginManifest, setup: PluginSetup) throws {
        self.name = name
        self.manifest = manifest
        worker = BlockingWorker(name: "qt-plugin-\(name)")
        let call = LibraryCall(plugin: name, manifest: manifest, context: nil)
        let settings = setup.settings.values.sorted { $0.key < $1.key }.map { ($0.key, $0.value.description) }
        let created: UnsafeMutableRawPointer? = try worker.runAndWait {
            Self.withSettings(settings) { pointer, count in
                table.pointee.create(LibraryCall.hostAPI, pointer, count, call.opaque)
            }
        }
        guard let created else {
            worker.shutdown()
            throw LibraryPlugins.Refused(path: path, reason: "create refused its settings: \(call.failure ?? "no reason given")")
        }
        native = Native(table: table, instance: created)
    }

    func handle(_ input: Input, context: HandlerContext) async throws {
        let bytes: [UInt8] = try input.message.serializedBytes()
        let type = Swift.type(of: input.message).protoMessageName
        let call = LibraryCall(plugin: name, manifest: manifest, context: context)
        let native = self.native
        let status = try await worker.run {
            bytes.withUnsafeBufferPointer { buffer in
                native.table.pointee.handle(native.instance, call.opaque, input.name, type, input.subject, buffer.baseAddress, buffer.count)
            }
        }
        try call.finish(status, what: "handle(\(input.name)) of \(input.subject)")
    }

    func tick(_ timer: String, context: HandlerContext) async throws {
        guard native.table.pointee.tick != nil else { throw PluginError.contract("\(name) declares timer \(timer) but has no tick") }
        let call = LibraryCall(plugin: name, manifest: manifest, context: context)
        let native = self.native
        let status = try await worker.run { native.table.pointee.tick(native.instance, call.opaque, timer) }
        try call.finish(status, what: "tick(\(timer))")
    }

    func stop() async {
        guard stopped.withLock({ stopped in defer { stopped = true }; return !stopped }) else { return }
        let native = self.native
        try? await worker.run { native.table.pointee.destroy(native.instance) }
        worker.shutdown()
    }

    private static func withSettings<T>(_ settings: [(String, String)], _ body: (UnsafePointer<qt_setting>?, Int) -> T) -> T {
        var strings: [UnsafeMutablePointer<CChar>] = []
        defer { strings.forEach { free($0) } }
        let pairs = settings.map { key, value -> qt_setting in
            let (k, v) = (strdup(key)!, strdup(value)!)
            strings += [k, v]
            return qt_setting(key: k, value: v)
        }
        return pairs.withUnsafeBufferPointer { body($0.baseAddress, $0.count) }
    }
}
