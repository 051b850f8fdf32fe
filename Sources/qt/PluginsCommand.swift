import ArgumentParser
import Host

/// `qt plugins list|describe`: what each built-in plugin consumes, produces, reads, writes,
/// schedules and accepts as settings, from the same manifests the host binds from.
struct PluginsCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "plugins",
        abstract: "The built-in plugins and their contracts; a new C plugin from a template.",
        subcommands: [List.self, Describe.self, New.self]
    )

    struct List: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Name and version of every built-in plugin.")

        func run() async throws {
            let registry = BuiltInPlugins.registry
            for name in registry.names { printLine("\(name) \(registry[name]!.manifest.version)") }
        }
    }

    struct Describe: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Inputs, outputs, buckets, timers and settings (type, default, help) of one plugin or all.")

        @Argument(help: "A plugin name; every plugin when left out.")
        var name: String?

        func run() async throws {
            try await reportingErrors {
                let registry = BuiltInPlugins.registry
                let names = try name.map { name in
                    guard registry[name] != nil else {
                        throw ValidationError("no plugin named \(name); choices: \(registry.names.joined(separator: ", "))")
                    }
                    return [name]
                } ?? registry.names
                printLine(names.map { registry[$0]!.manifest.contractDescription }.joined(separator: "\n\n"))
            }
        }
    }
}
