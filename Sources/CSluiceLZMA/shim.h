#ifndef CSLUICE_LZMA_SHIM_H
#define CSLUICE_LZMA_SHIM_H
#include <lzma.h>
#endif
