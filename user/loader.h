/* Load and attach the BPF programs, after checking the kernel can take them. */
#ifndef LOADER_H
#define LOADER_H
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <sys/types.h>
#include "katrace.h"

struct tracer;

/* What this kernel gives, probed once when the tracer opens: each field is
 * one difference between kernel versions (bpf/core_fixes.bpf.h). */
struct kernel_features {
	bool send_reset_reason; /* tcp_send_reset(sk, skb, reason): 6.10 */
	bool data_tracepoints;	/* sock_send_length/sock_recv_length: 6.5 */
	bool sys_exit;		/* tp_btf/sys_exit: the fallback before 6.5 */
	bool skb_dynptr;	/* bpf_dynptr_from_skb in tp_btf: 6.12 */
	bool drop_reason;	/* kfree_skb has the drop reason: 5.17 */
};

struct tracer_opts {
	const pid_t *tgids; /* owners to report; none = every process */
	int ntgids;
	uint16_t port;	    /* 0 = any */
	uint64_t cgroup_id; /* cgroup v2 id, 0 = any */
	uint32_t max_conns;
	enum level level;     /* LEVEL_CONN: no program per data call (README, "Levels") */
	const char *btf_path; /* the tracepoints to assume, from this BTF instead
					   of /sys/kernel/btf/vmlinux: a test hook that
					   shows katrace an older kernel (NULL: none) */
	bool verbose;	      /* libbpf's own messages */
	bool quiet;	      /* keep errors for tracer_error() instead of printing */
};

typedef int (*event_fn)(void *ctx, const void *data, size_t len);

/* Returns NULL after printing one line that says why. */
struct tracer *tracer_open(const struct tracer_opts *o, event_fn fn, void *ctx);
/* Why the last tracer_open() failed, one line. */
const char *tracer_error(void);
int tracer_poll(struct tracer *t, int timeout_ms);
/* For a poll() loop of one's own: the ring buffer's epoll fd, and reading
 * what is there without waiting. */
int tracer_fd(struct tracer *t);
int tracer_consume(struct tracer *t);
/* Trace process tgid from now on too (-p: a service's next process). */
int tracer_add_target(struct tracer *t, uint32_t tgid);
/* -p: the next process to listen on port (a restart) is traced from its
 * listen() on. */
int tracer_follow_port(struct tracer *t, uint16_t port);
/* Summed over CPUs. */
uint64_t tracer_counter(struct tracer *t, int slot);
/* Names of optional features the kernel lacked, for the start-up note. */
const char *tracer_fallbacks(struct tracer *t);
const struct kernel_features *tracer_features(const struct tracer *t);
/* --level request: the request lines inside TLS. Probes OpenSSL's
 * SSL_read/SSL_write calls in the binary at path (a libssl, or an
 * executable that links it in) for process pid (-1: every process that
 * runs it). 1: attached; 0: no OpenSSL there (no SSL_write), or another
 * level; -1: MAX_TLS_ATTACHMENTS are attached. */
#define MAX_TLS_ATTACHMENTS 64
int tracer_attach_tls(struct tracer *t, const char *path, pid_t pid);
/* Detaches those of process pid (it exited). */
void tracer_detach_tls(struct tracer *t, pid_t pid);
void kernel_features_print(FILE *out, const struct kernel_features *f);
void tracer_close(struct tracer *t);

/* The kernel's enum sk_rst_reason names, by value, prefix dropped ("" for
 * values it lacks), read from BTF when the tracer opened. */
void tracer_reset_reasons(const struct tracer *t, char (*names)[RST_REASON_LEN]);

#endif
