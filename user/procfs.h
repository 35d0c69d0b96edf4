/* What /proc says of listening sockets, for the listeners that were up
 * before katrace started (the kernel gave no event for them), of the
 * binaries that may hold a process's TLS library, and of the processes
 * that own TCP sockets. */
#ifndef PROCFS_H
#define PROCFS_H
#include <sys/types.h>
#include "katrace.h"

/* The TCP listeners of process pid (0: of every process), up to max into
 * out; how many. */
int procfs_listeners(pid_t pid, struct listen_entry *out, int max);

#define PROCFS_PATH_LEN 512
/* The binaries of process pid that may hold OpenSSL's SSL_read/SSL_write,
 * each file once: the libssl it maps, and its executable (Node.js links
 * OpenSSL in). Paths go through /proc/PID/root, so that they resolve in the
 * process's own mount namespace. How many. */
int procfs_tls_binaries(pid_t pid, char (*out)[PROCFS_PATH_LEN], int max);
/* The processes (but this one) with a descriptor on a TCP socket, up to
 * max into out; how many. */
int procfs_socket_owners(pid_t *out, int max);

#endif
