#ifndef QT_CCURL_SHIM_H
#define QT_CCURL_SHIM_H
#include <curl/curl.h>

// curl_easy_setopt and curl_easy_getinfo are variadic, which Swift cannot call: one typed
// wrapper per argument kind.
typedef size_t (*qt_curl_data_callback)(char *data, size_t size, size_t count, void *userdata);

static inline CURLcode qt_curl_set_long(CURL *handle, CURLoption option, long value) {
    return curl_easy_setopt(handle, option, value);
}
static inline CURLcode qt_curl_set_pointer(CURL *handle, CURLoption option, const void *value) {
    return curl_easy_setopt(handle, option, value);
}
static inline CURLcode qt_curl_set_callback(CURL *handle, CURLoption option, qt_curl_data_callback callback) {
    return curl_easy_setopt(handle, option, callback);
}
static inline CURLcode qt_curl_get_long(CURL *handle, CURLINFO info, long *value) {
    return curl_easy_getinfo(handle, info, value);
}
#endif
