#ifndef CSLUICE_PROCESS_SHIM_H
#define CSLUICE_PROCESS_SHIM_H
// pidfd_open(2) (glibc 2.36, Linux 5.3): a file descriptor that becomes readable when the
// process exits, so the local executor learns of each worker's exit from an fd read source
// instead of a SIGCHLD signal source (libdispatch's crashed under fast process churn).
#include <sys/pidfd.h>
#include <sys/vfs.h>
#endif
