/*
 * c-passthrough: the C side of `qt bench host --c-library`: each kline on qt.market.kline.CBENCHIN
 * is emitted unchanged on qt.market.kline.CBENCHOUT, as the Swift no-op plugin of the benchmark
 * does. It measures what the ABI costs: the copy of the bytes across it, the worker thread hop,
 * and the host decoding what the plugin emits.
 */
#include <stdlib.h>

#include "qt_plugin.h"
#include "qt/v1/control.pb-c.h"

static const qt_host_api *host_api;

static void *create(const qt_host_api *host, const qt_setting *settings, size_t count, qt_call *call) {
    (void)settings;
    if (count > 0) {
        host->fail(call, "c-passthrough takes no settings");
        return NULL;
    }
    host_api = host;
    return (void *)&host_api;
}

static qt_status handle(void *instance, qt_call *call, const char *input, const char *type, const char *subject,
                        const uint8_t *bytes, size_t len) {
    (void)instance;
    (void)input;
    (void)subject;
    return host_api->emit(call, "out", "qt.market.kline.CBENCHOUT", type, bytes, len, NULL);
}

static void destroy(void *instance) { (void)instance; }

static uint8_t *manifest_bytes;
static size_t manifest_len;

const qt_plugin_api *qt_plugin_entry(void) {
    static qt_plugin_api api;
    if (!manifest_bytes) {
        Qt__V1__SubjectBinding in = QT__V1__SUBJECT_BINDING__INIT, out = QT__V1__SUBJECT_BINDING__INIT;
        in.name = "in";
        in.subject = "qt.market.kline.CBENCHIN";
        in.type = "qt.v1.Kline";
        out.name = "out";
        out.subject = "qt.market.kline.CBENCHOUT";
        out.type = "qt.v1.Kline";
        Qt__V1__SubjectBinding *inputs[] = {&in}, *outputs[] = {&out};
        Qt__V1__PluginManifestInfo manifest = QT__V1__PLUGIN_MANIFEST_INFO__INIT;
        manifest.name = "c-passthrough";
        manifest.version = "bench";
        manifest.n_inputs = 1;
        manifest.inputs = inputs;
        manifest.n_outputs = 1;
        manifest.outputs = outputs;
        manifest_len = qt__v1__plugin_manifest_info__get_packed_size(&manifest);
        manifest_bytes = malloc(manifest_len);
        if (!manifest_bytes) return NULL;
        qt__v1__plugin_manifest_info__pack(&manifest, manifest_bytes);
        api.abi_version = QT_PLUGIN_ABI_VERSION;
        api.manifest = manifest_bytes;
        api.manifest_len = manifest_len;
        api.create = create;
        api.handle = handle;
        api.destroy = destroy;
    }
    return &api;
}
