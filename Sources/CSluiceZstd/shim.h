#ifndef CSLUICE_ZSTD_SHIM_H
#define CSLUICE_ZSTD_SHIM_H
#include <zstd.h>
#endif
