import Foundation
import Host
import TestPlugins

// A host process with the test plugins registered: `qt-test-host <node.yaml>`.
guard CommandLine.arguments.count == 2 else {
    FileHandle.standardError.write(Data("usage: qt-test-host <node.yaml>\n".utf8))
    exit(2)
}
do {
    try await HostRunner.run(configPath: CommandLine.arguments[1], registry: TestPlugins.registry)
} catch {
    FileHandle.standardError.write(Data("qt-test-host: \(error)\n".utf8))
    exit(1)
}
