#ifndef QT_CNATS_SHIM_H
#define QT_CNATS_SHIM_H
#include <nats/nats.h>
#endif
