import Foundation
import Host
import Plugins
import TestPlugins

// A host process for tests: `qt-test-host <node.yaml>` runs the test plugins;
// `qt-test-host --catalog <node.yaml>` runs the built-in plugins as `qt host` does, with the
// executor's crash hook installed: `QT_CRASH_AT=<point>` SIGKILLs the process at that step.
let arguments = Array(CommandLine.arguments.dropFirst())
guard arguments.count == 1 || (arguments.count == 2 && arguments[0] == "--catalog") else {
    FileHandle.standardError.write(Data("usage: qt-test-host [--catalog] <node.yaml>\n".utf8))
    exit(2)
}

let crashVariable = "QT_CRASH_AT"
let armed = ProcessInfo.processInfo.environment[crashVariable].flatMap(CrashPoint.init(rawValue:))
let crashHook: CrashHook = { point in
    guard point == armed else { return }
    // SIGKILL, so nothing is flushed or acknowledged: what a power cut leaves behind.
    FileHandle.standardError.write(Data("executor: \(crashVariable)=\(point.rawValue): killing the process\n".utf8))
    kill(getpid(), SIGKILL)
}
let registry = arguments.count == 2
    ? PluginCatalog.registry(exchanges: ExchangeClients(connect: ExchangeClients.binance), crashHook: crashHook)
    : TestPlugins.registry
do {
    try await HostRunner.run(configPath: arguments.last!, registry: registry)
} catch {
    FileHandle.standardError.write(Data("qt-test-host: \(error)\n".utf8))
    exit(1)
}
