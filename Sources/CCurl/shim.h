#ifndef QT_CCURL_SHIM_H
#define QT_CCURL_SHIM_H
#include <curl/curl.h>
#endif
