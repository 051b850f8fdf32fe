/*
 * qt_plugin.h: the C ABI of Quantum Trader plugins.
 *
 * A plugin is a shared library that exports one function, `qt_plugin_entry`, returning a
 * `qt_plugin_api` table. The host loads it (dlopen) from a node config entry
 *
 *     plugins:
 *       c-breakout: { library: /opt/qt/plugins/libc_breakout.so, settings: { channel_bars: "20" } }
 *
 * checks `abi_version` against QT_PLUGIN_ABI_VERSION, decodes the manifest and checks it against
 * the schema's topology exactly as it checks a built-in plugin's, then binds inputs, outputs, KV
 * and timers the same way: the same durables, partitions, dead letters, metrics, shadow mode.
 *
 * Messages cross this ABI as protobuf bytes of the proto/qt/v1 types, named by their full
 * protobuf names ("qt.v1.Kline"). Generate C for them with protoc-c from the same files the
 * host was built from (scripts/gen-proto-c does it for examples/).
 *
 * Errors. Every call that can fail returns a qt_status. `handle` and `tick` return:
 *   QT_OK         done: the host publishes what was emitted, then acknowledges the input;
 *   QT_TRANSIENT  try again: nothing emitted is published, the input comes back with back-off
 *                 (1 s doubling to 30 s); a KV conflict is transient;
 *   QT_PERMANENT  the input can never be handled: it goes to qt.dlq.<consumer> with the reason;
 *   QT_CONTRACT   the plugin broke its manifest: handled like QT_PERMANENT, and named so.
 * Before returning an error, call host->fail(call, reason): the reason is what the dead letter,
 * the log and the alert say. A host callback that refuses something (an undeclared output, a
 * type that is not the output's, bytes that do not decode, a field rule) returns its status and
 * has already recorded the reason; a plugin should return that status unchanged.
 *
 * Ownership. Every pointer the host passes (settings, input bytes, names, kv_get results) is
 * valid only until the call it was passed to (or made in) returns; copy what you keep. Every
 * pointer the plugin passes to the host is read during the callback only. The manifest bytes
 * in the table must stay valid until `destroy`.
 *
 * Threading and reentrancy. The host calls one instance from one thread at a time: `create`,
 * then `handle` and `tick` calls that never overlap, then `destroy`. It is the host's own
 * thread, not a Swift task: blocking in C (a KV callback, your own I/O) blocks only this plugin.
 * Host callbacks may be made only from inside `create`, `handle` or `tick`, on the thread that
 * called them, with the `call` they received. They do not call back into the plugin.
 *
 * Crashes. The library runs in the host's process: a segfault, abort or exit in C takes the
 * host down, and with it every plugin on that host (systemd restarts it; the other hosts take
 * its partitions). There is no isolate mode: run an untrusted library on a host of its own.
 */
#ifndef QT_PLUGIN_H
#define QT_PLUGIN_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

/* Bumped on any change to the tables below; the host refuses a library built against another. */
#define QT_PLUGIN_ABI_VERSION 1u

/* The one symbol a plugin library exports. */
#define QT_PLUGIN_ENTRY_SYMBOL "qt_plugin_entry"

typedef enum qt_status {
    QT_OK = 0,
    QT_TRANSIENT = 1,
    QT_PERMANENT = 2,
    QT_CONTRACT = 3,
    /* kv_get: the key has no value. */
    QT_NOT_FOUND = 4,
    /* kv_compare_and_set: the key is no longer at the expected revision (return QT_TRANSIENT). */
    QT_CONFLICT = 5
} qt_status;

typedef enum qt_log_level {
    QT_LOG_DEBUG = 0,
    QT_LOG_INFO = 1,
    QT_LOG_WARNING = 2,
    QT_LOG_ERROR = 3
} qt_log_level;

/* One create, handle or tick call, as the host sees it. Opaque. */
typedef struct qt_call qt_call;

typedef struct qt_setting {
    const char *key;
    const char *value;
} qt_setting;

/* What the host offers a plugin. */
typedef struct qt_host_api {
    uint32_t abi_version;

    /* Publishes `bytes` (a serialized message of full protobuf name `type`) on `subject`, which
     * must match the declared output named `output`; the type must be that output's. `id` is the
     * message id: NULL in `handle` (the host derives one from the input, so a redelivery makes the
     * same id), required in `tick` (a content id). Published when the call returns QT_OK. */
    qt_status (*emit)(qt_call *call, const char *output, const char *subject, const char *type,
                      const uint8_t *bytes, size_t len, const char *id);

    /* A gate's verdict: a serialized qt.v1.Decision on the declared output "decisions"
     * (qt.decision.<plugin>.*); the host sets its plugin and subject. */
    qt_status (*decide)(qt_call *call, const uint8_t *decision, size_t len, const char *id);

    /* A serialized qt.v1.Alert on the declared output "alerts" (qt.alert.*). */
    qt_status (*alert)(qt_call *call, const uint8_t *alert, size_t len, const char *id);

    /* The value of `key` in a bucket the manifest reads: *bytes and *len (host-owned, valid until
     * the call returns) and *revision; QT_NOT_FOUND when it has none. In qt_state a plugin reads
     * any key and writes only its own, "<plugin>.<name>". */
    qt_status (*kv_get)(qt_call *call, const char *bucket, const char *key,
                        const uint8_t **bytes, size_t *len, uint64_t *revision);

    /* Writes `bytes` (the bucket's value type) to `key` if it is still at `expected_revision`
     * (0: the key must not exist yet); the new revision in *revision. QT_CONFLICT when another
     * writer came first. Only in a bucket the manifest writes. */
    qt_status (*kv_compare_and_set)(qt_call *call, const char *bucket, const char *key,
                                    const uint8_t *bytes, size_t len, uint64_t expected_revision,
                                    uint64_t *revision);

    /* Wall clock, ms since the epoch. Trading logic should use event time instead. */
    int64_t (*now_ms)(qt_call *call);

    /* The input's event time (meta.event_time_ms), or the tick's time. */
    int64_t (*event_time_ms)(qt_call *call);

    void (*log)(qt_call *call, qt_log_level level, const char *message);

    /* The reason for the error status the call is about to return. */
    void (*fail)(qt_call *call, const char *reason);
} qt_host_api;

/* What a plugin library offers the host. */
typedef struct qt_plugin_api {
    /* QT_PLUGIN_ABI_VERSION as the library was built. */
    uint32_t abi_version;

    /* A serialized qt.v1.PluginManifestInfo: name (the node config's key), version, inputs and
     * outputs (name, subject pattern, full type name), kv_reads, kv_writes, timers. */
    const uint8_t *manifest;
    size_t manifest_len;

    /* A new instance with the node config's settings (every value a string). NULL refuses the
     * settings: call host->fail(call, reason) first; the host does not start. `host` stays valid
     * until destroy. */
    void *(*create)(const qt_host_api *host, const qt_setting *settings, size_t count, qt_call *call);

    /* One input message: the input's declared name, its full type name, its subject, its bytes. */
    qt_status (*handle)(void *instance, qt_call *call, const char *input, const char *type,
                        const char *subject, const uint8_t *bytes, size_t len);

    /* A declared timer fired. May be NULL when the manifest declares no timer. */
    qt_status (*tick)(void *instance, qt_call *call, const char *timer);

    void (*destroy)(void *instance);
} qt_plugin_api;

typedef const qt_plugin_api *(*qt_plugin_entry_fn)(void);

#ifdef __cplusplus
}
#endif

#endif /* QT_PLUGIN_H */
