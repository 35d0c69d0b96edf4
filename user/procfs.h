/* What /proc says of listening sockets, for the listeners that were up
 * before katrace started (the kernel gave no event for them), and of the
 * binaries that may hold a process's TLS library. */
#ifndef PROCFS_H
#define PROCFS_H
#include <sys/types.h>
#include "katrace.h"

/* The TCP listeners of process pid (0: of every process), up to max into
 * out; how many. */
int procfs_listeners(pid_t pid, struct listen_entry *out, int max);

#define PROCFS_PATH_LEN 512
/* The binaries of process pid (0: of every process, each file once) that
 * may hold OpenSSL's SSL_read/SSL_write: the libssl it maps, and its
 * executable (Node.js links OpenSSL in). Paths go through /proc/PID/root,
 * so that they resolve in the process's own mount namespace. How many. */
int procfs_tls_binaries(pid_t pid, char (*out)[PROCFS_PATH_LEN], int max);

#endif
