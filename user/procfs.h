/* What /proc says of listening sockets, for the listeners that were up
 * before katrace started (the kernel gave no event for them). */
#ifndef PROCFS_H
#define PROCFS_H
#include <sys/types.h>
#include "katrace.h"

/* The TCP listeners of process pid (0: of every process), up to max into
 * out; how many. */
int procfs_listeners(pid_t pid, struct listen_entry *out, int max);

#endif
