#ifndef CSLUICE_ARCHIVE_SHIM_H
#define CSLUICE_ARCHIVE_SHIM_H
#include <archive.h>
#include <archive_entry.h>
#endif
