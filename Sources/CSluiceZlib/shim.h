#ifndef CSLUICE_ZLIB_SHIM_H
#define CSLUICE_ZLIB_SHIM_H
#include <zlib.h>

/// inflateInit2 is a macro; Swift sees only this function. windowBits 31: gzip framing only.
static inline int csluice_inflate_init_gzip(z_stream *stream) {
    return inflateInit2(stream, 15 + 16);
}
#endif
