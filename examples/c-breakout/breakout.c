/*
 * c-breakout: a strategy plugin in C (include/qt_plugin.h, protobuf-c from sdk/c).
 *
 * On each closed 1m bar of a symbol it compares the close with the channel of the previous
 * `channel_bars` bars: above their highest high it proposes OPEN_LONG, below their lowest low
 * OPEN_SHORT, as a qt.v1.TradeIntent with its own model name. The intents go through the same
 * gates as the ai-agent's (intent-bridge, governor, portfolio-gate).
 *
 * The channel lives in qt_state/c-breakout.channel-<SYMBOL> (a qt.v1.PluginState whose value
 * "bars" is "open_ms:high:low;..."), written by compare-and-set. The input is keyed by symbol,
 * so the host's partitions apply: one host owns a symbol's bars at a time. It keeps the newest
 * bar too, so a redelivered bar finds the channel it was judged against and makes the same
 * intent (the host gives it the same message id, which JetStream drops as a duplicate).
 */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "qt_plugin.h"
#include "qt/v1/audit.pb-c.h"
#include "qt/v1/control.pb-c.h"
#include "qt/v1/market.pb-c.h"
#include "qt/v1/signal.pb-c.h"

#ifndef BREAKOUT_ABI_VERSION
#define BREAKOUT_ABI_VERSION QT_PLUGIN_ABI_VERSION
#endif

#define PLUGIN_NAME "c-breakout"
#define MAX_BARS 200

typedef struct bar {
    int64_t open_ms;
    double high;
    double low;
} bar;

typedef struct breakout {
    const qt_host_api *host;
    int channel_bars;
    int leverage;
    double confidence;
    char model[64];
} breakout;

/* ---- settings ------------------------------------------------------------------------- */

static int setting_int(qt_call *call, const qt_host_api *host, const char *key, const char *text, int low, int high, int *out) {
    char *end = NULL;
    long value = strtol(text, &end, 10);
    if (end == text || *end != '\0' || value < low || value > high) {
        char reason[200];
        snprintf(reason, sizeof reason, "setting %s: \"%s\" is not an integer in %d...%d", key, text, low, high);
        host->fail(call, reason);
        return 0;
    }
    *out = (int)value;
    return 1;
}

static void *create(const qt_host_api *host, const qt_setting *settings, size_t count, qt_call *call) {
    breakout *plugin = calloc(1, sizeof *plugin);
    if (!plugin) return NULL;
    plugin->host = host;
    plugin->channel_bars = 20;
    plugin->leverage = 3;
    plugin->confidence = 0.8;
    snprintf(plugin->model, sizeof plugin->model, "c-breakout/1");
    for (size_t i = 0; i < count; i++) {
        const char *key = settings[i].key, *value = settings[i].value;
        int ok = 1;
        if (strcmp(key, "channel_bars") == 0) {
            ok = setting_int(call, host, key, value, 2, MAX_BARS - 1, &plugin->channel_bars);
        } else if (strcmp(key, "leverage") == 0) {
            ok = setting_int(call, host, key, value, 1, 125, &plugin->leverage);
        } else if (strcmp(key, "confidence") == 0) {
            char *end = NULL;
            plugin->confidence = strtod(value, &end);
            if (end == value || *end != '\0' || plugin->confidence < 0 || plugin->confidence > 1) {
                host->fail(call, "setting confidence: expected a number in [0, 1]");
                ok = 0;
            }
        } else if (strcmp(key, "model") == 0) {
            snprintf(plugin->model, sizeof plugin->model, "%s", value);
        } else {
            char reason[200];
            snprintf(reason, sizeof reason, "unknown setting %s; settings: channel_bars, leverage, confidence, model", key);
            host->fail(call, reason);
            ok = 0;
        }
        if (!ok) {
            free(plugin);
            return NULL;
        }
    }
    return plugin;
}

static void destroy(void *instance) { free(instance); }

/* ---- the channel in qt_state ------------------------------------------------------------ */

/* Reads "open_ms:high:low;..." into bars; returns how many. */
static size_t parse_bars(const char *text, bar *bars, size_t capacity) {
    size_t count = 0;
    const char *cursor = text;
    while (cursor && *cursor && count < capacity) {
        bar parsed;
        if (sscanf(cursor, "%" SCNd64 ":%lf:%lf", &parsed.open_ms, &parsed.high, &parsed.low) != 3) break;
        bars[count++] = parsed;
        cursor = strchr(cursor, ';');
        if (cursor) cursor++;
    }
    return count;
}

static char *format_bars(const bar *bars, size_t count) {
    size_t size = count * 64 + 1;
    char *text = malloc(size);
    if (!text) return NULL;
    size_t used = 0;
    text[0] = '\0';
    for (size_t i = 0; i < count; i++) {
        used += (size_t)snprintf(text + used, size - used, "%s%" PRId64 ":%.10g:%.10g", i ? ";" : "", bars[i].open_ms, bars[i].high, bars[i].low);
    }
    return text;
}

/* The stored bars of `key` and the revision they are at (0: none yet). */
static qt_status load_channel(breakout *plugin, qt_call *call, const char *key, bar *bars, size_t *count, uint64_t *revision) {
    const uint8_t *bytes = NULL;
    size_t len = 0;
    *count = 0;
    *revision = 0;
    qt_status status = plugin->host->kv_get(call, "qt_state", key, &bytes, &len, revision);
    if (status == QT_NOT_FOUND) return QT_OK;
    if (status != QT_OK) return status;
    Qt__V1__PluginState *state = qt__v1__plugin_state__unpack(NULL, len, bytes);
    if (!state) {
        plugin->host->fail(call, "the channel in qt_state does not decode as qt.v1.PluginState");
        return QT_PERMANENT;
    }
    for (size_t i = 0; i < state->n_values; i++) {
        if (strcmp(state->values[i]->key, "bars") == 0) *count = parse_bars(state->values[i]->value, bars, MAX_BARS);
    }
    qt__v1__plugin_state__free_unpacked(state, NULL);
    return QT_OK;
}

static qt_status save_channel(breakout *plugin, qt_call *call, const char *key, const bar *bars, size_t count, uint64_t revision) {
    char *text = format_bars(bars, count);
    if (!text) return QT_TRANSIENT;
    Qt__V1__PluginState state = QT__V1__PLUGIN_STATE__INIT;
    Qt__V1__PluginState__ValuesEntry entry = QT__V1__PLUGIN_STATE__VALUES_ENTRY__INIT;
    Qt__V1__PluginState__ValuesEntry *entries[1] = {&entry};
    entry.key = "bars";
    entry.value = text;
    state.plugin = PLUGIN_NAME;
    state.name = (char *)key + strlen(PLUGIN_NAME ".");
    state.n_values = 1;
    state.values = entries;
    size_t len = qt__v1__plugin_state__get_packed_size(&state);
    uint8_t *bytes = malloc(len ? len : 1);
    if (!bytes) {
        free(text);
        return QT_TRANSIENT;
    }
    qt__v1__plugin_state__pack(&state, bytes);
    uint64_t written = 0;
    qt_status status = plugin->host->kv_compare_and_set(call, "qt_state", key, bytes, len, revision, &written);
    free(bytes);
    free(text);
    if (status == QT_CONFLICT) {
        plugin->host->fail(call, "another writer moved the channel; the bar comes back");
        return QT_TRANSIENT;
    }
    return status;
}

/* ---- the rule --------------------------------------------------------------------------- */

/* A 128-bit FNV-1a of the intent's content, as 32 hex digits: the same bar makes the same id. */
static void intent_id(const char *symbol, int64_t close_ms, const char *model, char out[33]) {
    char text[256];
    snprintf(text, sizeof text, "%s|%s|%" PRId64 "|%s", PLUGIN_NAME, symbol, close_ms, model);
    uint64_t a = 1469598103934665603ULL, b = 1099511628211ULL ^ 0x9e3779b97f4a7c15ULL;
    for (const char *c = text; *c; c++) {
        a = (a ^ (uint8_t)*c) * 1099511628211ULL;
        b = (b ^ (uint8_t)*c) * 0x100000001b3ULL + 0x9e37ULL;
    }
    snprintf(out, 33, "%016" PRIx64 "%016" PRIx64, a, b);
}

#ifdef BREAKOUT_AUDIT
static qt_status audit(breakout *plugin, qt_call *call, const Qt__V1__Kline *kline, const char *id, const char *reason) {
    Qt__V1__Decision decision = QT__V1__DECISION__INIT;
    decision.subject_kind = QT__V1__DECISION_SUBJECT__DECISION_SUBJECT_INTENT;
    decision.subject_id = (char *)id;
    decision.symbol = kline->symbol;
    decision.verdict = QT__V1__VERDICT__VERDICT_PASS;
    decision.reason = QT__V1__REASON_CODE__REASON_CODE_PASSED;
    decision.detail = (char *)reason;
    uint8_t buffer[1024];
    size_t len = qt__v1__decision__get_packed_size(&decision);
    if (len > sizeof buffer) return QT_PERMANENT;
    qt__v1__decision__pack(&decision, buffer);
    qt_status status = plugin->host->decide(call, buffer, len, NULL);
    if (status != QT_OK) return status;

    Qt__V1__Alert alert = QT__V1__ALERT__INIT;
    alert.kind = QT__V1__ALERT_KIND__ALERT_KIND_LIMIT;
    alert.severity = QT__V1__ALERT_SEVERITY__ALERT_SEVERITY_INFO;
    alert.symbol = kline->symbol;
    alert.subject = "qt.signal.intent";
    alert.message = (char *)reason;
    len = qt__v1__alert__get_packed_size(&alert);
    if (len > sizeof buffer) return QT_PERMANENT;
    qt__v1__alert__pack(&alert, buffer);
    return plugin->host->alert(call, buffer, len, NULL);
}
#endif

static qt_status emit_intent(breakout *plugin, qt_call *call, const Qt__V1__Kline *kline, Qt__V1__IntentAction action,
                             double level) {
    char id[33], subject[96], reason[160];
    intent_id(kline->symbol, kline->close_time_ms, plugin->model, id);
    snprintf(subject, sizeof subject, "qt.signal.intent.%s", kline->symbol);
    snprintf(reason, sizeof reason, "close %s beyond the %d-bar channel (%.10g)", kline->close, plugin->channel_bars, level);
    Qt__V1__TradeIntent intent = QT__V1__TRADE_INTENT__INIT;
    intent.intent_id = id;
    intent.symbol = kline->symbol;
    intent.action = action;
    intent.confidence = plugin->confidence;
    intent.leverage = plugin->leverage;
    intent.model = plugin->model;
    intent.reason_text = reason;
    size_t len = qt__v1__trade_intent__get_packed_size(&intent);
    uint8_t *bytes = malloc(len ? len : 1);
    if (!bytes) return QT_TRANSIENT;
    qt__v1__trade_intent__pack(&intent, bytes);
#ifdef BREAKOUT_WRONG_OUTPUT_TYPE
    /* The test variant: the intents output carries TradeIntent; this claims a Plan. */
    qt_status status = plugin->host->emit(call, "intents", subject, "qt.v1.Plan", bytes, len, NULL);
#else
    qt_status status = plugin->host->emit(call, "intents", subject, "qt.v1.TradeIntent", bytes, len, NULL);
#endif
    free(bytes);
#ifdef BREAKOUT_AUDIT
    /* The audit variant: each proposal is also recorded as a decision and announced as an alert
     * (the decide and alert callbacks; outputs "decisions" and "alerts" in the manifest). */
    if (status == QT_OK) status = audit(plugin, call, kline, id, reason);
#endif
    return status;
}

static qt_status handle(void *instance, qt_call *call, const char *input, const char *type, const char *subject,
                        const uint8_t *bytes, size_t len) {
    breakout *plugin = instance;
    (void)subject;
    if (strcmp(input, "klines") != 0 || strcmp(type, "qt.v1.Kline") != 0) {
        plugin->host->fail(call, "c-breakout consumes qt.v1.Kline on its klines input only");
        return QT_CONTRACT;
    }
    Qt__V1__Kline *kline = qt__v1__kline__unpack(NULL, len, bytes);
    if (!kline) {
        plugin->host->fail(call, "the input does not decode as qt.v1.Kline");
        return QT_PERMANENT;
    }
    char *end_high = NULL, *end_low = NULL, *end_close = NULL;
    double high = strtod(kline->high, &end_high), low = strtod(kline->low, &end_low), close = strtod(kline->close, &end_close);
    if (end_high == kline->high || end_low == kline->low || end_close == kline->close || low > high) {
        char reason[200];
        snprintf(reason, sizeof reason, "bar %" PRId64 " of %s: high \"%s\", low \"%s\", close \"%s\" are not prices", kline->open_time_ms,
                 kline->symbol, kline->high, kline->low, kline->close);
        plugin->host->fail(call, reason);
        qt__v1__kline__free_unpacked(kline, NULL);
        return QT_PERMANENT;
    }

    char key[96];
    snprintf(key, sizeof key, PLUGIN_NAME ".channel-%s", kline->symbol);
    bar bars[MAX_BARS + 1];
    size_t count = 0;
    uint64_t revision = 0;
    qt_status status = load_channel(plugin, call, key, bars, &count, &revision);
    if (status != QT_OK) {
        qt__v1__kline__free_unpacked(kline, NULL);
        return status;
    }
    int redelivered = count > 0 && bars[count - 1].open_ms == kline->open_time_ms;
    if (count > 0 && bars[count - 1].open_ms > kline->open_time_ms) {
        /* An older bar than the channel's newest: judged already. */
        qt__v1__kline__free_unpacked(kline, NULL);
        return QT_OK;
    }
    /* The channel is the bars before this one. */
    size_t channel = redelivered ? count - 1 : count;
    if (channel >= (size_t)plugin->channel_bars) {
        double top = -1e300, bottom = 1e300;
        for (size_t i = channel - (size_t)plugin->channel_bars; i < channel; i++) {
            if (bars[i].high > top) top = bars[i].high;
            if (bars[i].low < bottom) bottom = bars[i].low;
        }
        if (close > top) status = emit_intent(plugin, call, kline, QT__V1__INTENT_ACTION__INTENT_ACTION_OPEN_LONG, top);
        else if (close < bottom) status = emit_intent(plugin, call, kline, QT__V1__INTENT_ACTION__INTENT_ACTION_OPEN_SHORT, bottom);
    }
    if (status == QT_OK && !redelivered) {
        bars[count++] = (bar){kline->open_time_ms, high, low};
        size_t keep = (size_t)plugin->channel_bars + 1;
        size_t first = count > keep ? count - keep : 0;
        status = save_channel(plugin, call, key, bars + first, count - first, revision);
    }
    qt__v1__kline__free_unpacked(kline, NULL);
    return status;
}

/* ---- the table ---------------------------------------------------------------------------- */

static uint8_t *manifest_bytes;
static size_t manifest_len;

static void build_manifest(void) {
    Qt__V1__SubjectBinding klines = QT__V1__SUBJECT_BINDING__INIT, intents = QT__V1__SUBJECT_BINDING__INIT;
    klines.name = "klines";
    klines.subject = "qt.market.kline.*";
    klines.type = "qt.v1.Kline";
    intents.name = "intents";
    intents.subject = "qt.signal.intent.*";
    intents.type = "qt.v1.TradeIntent";
#ifdef BREAKOUT_AUDIT
    Qt__V1__SubjectBinding decisions = QT__V1__SUBJECT_BINDING__INIT, alerts = QT__V1__SUBJECT_BINDING__INIT;
    decisions.name = "decisions";
    decisions.subject = "qt.decision." PLUGIN_NAME ".*";
    decisions.type = "qt.v1.Decision";
    alerts.name = "alerts";
    alerts.subject = "qt.alert.*";
    alerts.type = "qt.v1.Alert";
    Qt__V1__SubjectBinding *inputs[] = {&klines}, *outputs[] = {&intents, &decisions, &alerts};
#else
    Qt__V1__SubjectBinding *inputs[] = {&klines}, *outputs[] = {&intents};
#endif
    char *buckets[] = {"qt_state"};
    Qt__V1__PluginManifestInfo manifest = QT__V1__PLUGIN_MANIFEST_INFO__INIT;
    manifest.name = PLUGIN_NAME;
    manifest.version = "1";
    manifest.n_inputs = 1;
    manifest.inputs = inputs;
    manifest.n_outputs = sizeof outputs / sizeof outputs[0];
    manifest.outputs = outputs;
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
        api.abi_version = BREAKOUT_ABI_VERSION;
        api.manifest = manifest_bytes;
        api.manifest_len = manifest_len;
        api.create = create;
        api.handle = handle;
        api.tick = NULL;
        api.destroy = destroy;
    }
    return &api;
}
