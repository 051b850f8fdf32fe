import ArgumentParser
import Foundation

extension PluginsCommand {
    /// `qt plugins new --lang c NAME`: a directory that builds a plugin library with `make`: the
    /// ABI header, the protobuf-c code of the schema this `qt` was built from, a template that
    /// counts bars per symbol in `qt_state`, and a node config that loads it.
    struct New: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Scaffold a plugin in C: header, Makefile, protobuf-c sources, template, test config.")

        @Option(help: "The plugin's language (c).") var lang = "c"
        @Argument(help: "The plugin's name: letters, digits, '-' (also its directory and library name).") var name: String
        @Option(help: "Where to create the plugin's directory.") var dir = "."
        @Option(help: "A Quantum Trader checkout (include/qt_plugin.h, sdk/c); default: found from qt's own path or the current directory.")
        var sdk: String?

        func validate() throws {
            guard lang == "c" else { throw ValidationError("--lang \(lang): only c is supported (C++, Rust and Zig use the same header)") }
            guard !name.isEmpty, name.first!.isLetter, name.allSatisfy({ $0.isLetter || $0.isNumber || $0 == "-" }) else {
                throw ValidationError("name \"\(name)\": expected a letter, then letters, digits or '-'")
            }
        }

        func run() async throws {
            try await reportingErrors {
                let root = try sdkRoot()
                let target = URL(fileURLWithPath: dir).appendingPathComponent(name)
                guard !FileManager.default.fileExists(atPath: target.path) else {
                    throw ValidationError("\(target.path) exists already; choose another name or --dir")
                }
                let files = FileManager.default
                try files.createDirectory(at: target.appendingPathComponent("include"), withIntermediateDirectories: true)
                try files.createDirectory(at: target.appendingPathComponent("proto"), withIntermediateDirectories: true)
                try files.copyItem(at: root.appendingPathComponent("include/qt_plugin.h").resolvingSymlinksInPath(),
                                   to: target.appendingPathComponent("include/qt_plugin.h"))
                try files.copyItem(at: root.appendingPathComponent("sdk/c/qt"), to: target.appendingPathComponent("proto/qt"))
                let symbol = name.replacingOccurrences(of: "-", with: "_")
                try Data(PluginTemplate.source(name: name).utf8).write(to: target.appendingPathComponent("\(symbol).c"))
                try Data(PluginTemplate.makefile(symbol: symbol).utf8).write(to: target.appendingPathComponent("Makefile"))
                try Data(PluginTemplate.nodeConfig(name: name, library: target.appendingPathComponent("lib\(symbol).so").standardizedFileURL.path).utf8)
                    .write(to: target.appendingPathComponent("test-node.yaml"))
                printLine("created \(target.path): make -C \(target.path), then qt host --config \(target.path)/test-node.yaml")
                printLine("the protobuf-c sources in proto/ are those of this qt's schema; after a schema change, run qt plugins new again "
                          + "(or scripts/gen-proto-c in the checkout) and copy proto/ over")
            }
        }

        /// A checkout holding include/qt_plugin.h and sdk/c: --sdk, else upward from qt's binary, else from the current directory.
        private func sdkRoot() throws -> URL {
            func holdsSDK(_ url: URL) -> Bool {
                FileManager.default.fileExists(atPath: url.appendingPathComponent("include/qt_plugin.h").path)
                    && FileManager.default.fileExists(atPath: url.appendingPathComponent("sdk/c/qt/v1").path)
            }
            if let sdk {
                let url = URL(fileURLWithPath: sdk)
                guard holdsSDK(url) else { throw ValidationError("--sdk \(sdk): no include/qt_plugin.h and sdk/c/qt/v1 there") }
                return url
            }
            let starts = [URL(fileURLWithPath: CommandLine.arguments[0]).resolvingSymlinksInPath().deletingLastPathComponent(),
                          URL(fileURLWithPath: FileManager.default.currentDirectoryPath)]
            for start in starts {
                var url = start.standardizedFileURL
                while url.path != "/" {
                    if holdsSDK(url) { return url }
                    url.deleteLastPathComponent()
                }
            }
            throw ValidationError("no Quantum Trader checkout (include/qt_plugin.h, sdk/c) above qt or the current directory; give --sdk DIR")
        }
    }
}

/// The files `qt plugins new --lang c` writes.
enum PluginTemplate {
    static func makefile(symbol: String) -> String {
        """
        # Builds lib\(symbol).so: the ABI header in include/, the schema's protobuf-c code in proto/
        # (Debian: apt-get install -y libprotobuf-c-dev).
        CC ?= cc
        CFLAGS ?= -O2 -Wall -Wextra -Werror
        SOURCES := \(symbol).c $(wildcard proto/qt/v1/*.pb-c.c)

        lib\(symbol).so: $(SOURCES) include/qt_plugin.h
        \t$(CC) $(CFLAGS) -shared -fPIC -Iinclude -Iproto -o $@ $(SOURCES) -lprotobuf-c

        clean:
        \trm -f lib\(symbol).so

        .PHONY: clean

        """
    }

    static func nodeConfig(name: String, library: String) -> String {
        """
        # qt host --config test-node.yaml (a NATS server at the URL below, streams provisioned:
        # qt streams provision --node-config test-node.yaml).
        host_id: \(name)-test
        nats: { servers: [nats://127.0.0.1:4222] }
        http_port: 0
        plugins:
          \(name): { library: \(library), settings: {} }

        """
    }

    static func source(name: String) -> String {
        """
        /*
         * \(name): a Quantum Trader plugin in C. The rules of the ABI (ownership, threading,
         * errors) are in include/qt_plugin.h. This template counts the closed bars of each symbol in
         * qt_state/\(name).bars-<SYMBOL>; replace `handle` with your rule, and declare what you
         * emit in the manifest (build_manifest), or the host refuses it.
         */
        #include <stdio.h>
        #include <stdlib.h>
        #include <string.h>

        #include "qt_plugin.h"
        #include "qt/v1/control.pb-c.h"
        #include "qt/v1/market.pb-c.h"

        #define PLUGIN_NAME "\(name)"

        typedef struct plugin {
            const qt_host_api *host;
        } plugin;

        static void *create(const qt_host_api *host, const qt_setting *settings, size_t count, qt_call *call) {
            if (count > 0) {
                char reason[160];
                snprintf(reason, sizeof reason, "unknown setting %s: this plugin takes none yet", settings[0].key);
                host->fail(call, reason);
                return NULL;
            }
            plugin *instance = calloc(1, sizeof *instance);
            if (instance) instance->host = host;
            return instance;
        }

        static void destroy(void *instance) { free(instance); }

        static qt_status handle(void *instance, qt_call *call, const char *input, const char *type, const char *subject,
                                const uint8_t *bytes, size_t len) {
            plugin *self = instance;
            (void)input;
            (void)type;
            (void)subject;
            Qt__V1__Kline *kline = qt__v1__kline__unpack(NULL, len, bytes);
            if (!kline) {
                self->host->fail(call, "the input does not decode as qt.v1.Kline");
                return QT_PERMANENT;
            }
            char key[96], count_text[32] = "0";
            snprintf(key, sizeof key, PLUGIN_NAME ".bars-%s", kline->symbol);
            qt__v1__kline__free_unpacked(kline, NULL);

            const uint8_t *stored = NULL;
            size_t stored_len = 0;
            uint64_t revision = 0;
            qt_status status = self->host->kv_get(call, "qt_state", key, &stored, &stored_len, &revision);
            if (status == QT_OK) {
                Qt__V1__PluginState *state = qt__v1__plugin_state__unpack(NULL, stored_len, stored);
                for (size_t i = 0; state && i < state->n_values; i++) {
                    if (strcmp(state->values[i]->key, "count") == 0) snprintf(count_text, sizeof count_text, "%s", state->values[i]->value);
                }
                if (state) qt__v1__plugin_state__free_unpacked(state, NULL);
            } else if (status != QT_NOT_FOUND) {
                return status;
            }
            snprintf(count_text, sizeof count_text, "%lld", atoll(count_text) + 1);

            Qt__V1__PluginState state = QT__V1__PLUGIN_STATE__INIT;
            Qt__V1__PluginState__ValuesEntry entry = QT__V1__PLUGIN_STATE__VALUES_ENTRY__INIT;
            Qt__V1__PluginState__ValuesEntry *entries[1] = {&entry};
            entry.key = "count";
            entry.value = count_text;
            state.n_values = 1;
            state.values = entries;
            uint8_t buffer[256];
            size_t packed = qt__v1__plugin_state__get_packed_size(&state);
            if (packed > sizeof buffer) return QT_PERMANENT;
            qt__v1__plugin_state__pack(&state, buffer);
            uint64_t written = 0;
            status = self->host->kv_compare_and_set(call, "qt_state", key, buffer, packed, revision, &written);
            return status == QT_CONFLICT ? QT_TRANSIENT : status;
        }

        static uint8_t *manifest_bytes;
        static size_t manifest_len;

        static void build_manifest(void) {
            Qt__V1__SubjectBinding klines = QT__V1__SUBJECT_BINDING__INIT;
            klines.name = "klines";
            klines.subject = "qt.market.kline.*";
            klines.type = "qt.v1.Kline";
            Qt__V1__SubjectBinding *inputs[] = {&klines};
            char *buckets[] = {"qt_state"};
            Qt__V1__PluginManifestInfo manifest = QT__V1__PLUGIN_MANIFEST_INFO__INIT;
            manifest.name = PLUGIN_NAME;
            manifest.version = "0.1";
            manifest.n_inputs = 1;
            manifest.inputs = inputs;
            manifest.n_kv_reads = 1;
            manifest.kv_reads = buckets;
            manifest.n_kv_writes = 1;
            manifest.kv_writes = buckets;
            manifest_len = qt__v1__plugin_manifest_info__get_packed_size(&manifest);
            manifest_bytes = malloc(manifest_len);
            if (manifest_bytes) qt__v1__plugin_manifest_info__pack(&manifest, manifest_bytes);
        }

        const qt_plugin_api *qt_plugin_entry(void) {
            static qt_plugin_api api;
            if (!manifest_bytes) {
                build_manifest();
                if (!manifest_bytes) return NULL;
                api.abi_version = QT_PLUGIN_ABI_VERSION;
                api.manifest = manifest_bytes;
                api.manifest_len = manifest_len;
                api.create = create;
                api.handle = handle;
                api.destroy = destroy;
            }
            return &api;
        }

        """
    }
}
