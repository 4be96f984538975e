#ifndef CSLUICE_BUILD_INFO_SHIM_H
#define CSLUICE_BUILD_INFO_SHIM_H
// The source commit `sluice --version` prints. `scripts/dev install` defines it on the command
// line (-Xcc -DSLUICE_SOURCE_COMMIT='"<git describe>"'); a plain `swift build` leaves it unset.
#ifndef SLUICE_SOURCE_COMMIT
#define SLUICE_SOURCE_COMMIT ""
#endif
static inline const char *sluice_source_commit(void) { return SLUICE_SOURCE_COMMIT; }
#endif
