/* The header is the whole of this target; SwiftPM needs a source file to build it. */
#include "qt_plugin.h"

const uint32_t qt_plugin_host_abi_version = QT_PLUGIN_ABI_VERSION;
