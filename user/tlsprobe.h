/* Which processes' TLS library is probed: at --level request, OpenSSL's
 * SSL_read/SSL_write are probed in the binaries of each process that owns
 * traced sockets (its libssl, or its executable), found as the processes
 * are (at start, as they are followed, as their connections appear). */
#ifndef TLSPROBE_H
#define TLSPROBE_H
#include <stdbool.h>
#include <sys/types.h>
#include "loader.h"

struct tls_probes;

/* per_process (-p): each process's probes are its own (uprobes filtered to
 * it); else a binary's probes serve every process that runs it. NULL when
 * out of memory. */
struct tls_probes *tls_probes_new(struct tracer *t, bool per_process, bool verbose);
/* Probes pid's binaries that hold OpenSSL, once each; whether one is
 * probed for it now. A process is looked at once, unless again (it may
 * have loaded its libssl since). */
bool tls_probe_process(struct tls_probes *p, pid_t pid, bool again);
void tls_probes_free(struct tls_probes *p);

#endif
