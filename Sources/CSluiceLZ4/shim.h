#ifndef CSLUICE_LZ4_SHIM_H
#define CSLUICE_LZ4_SHIM_H
#include <lz4.h>
#include <lz4frame.h>
#endif
