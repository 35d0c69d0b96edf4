/* Load and attach the BPF programs, after checking the kernel can take them. */
#ifndef LOADER_H
#define LOADER_H
#include <stdbool.h>
#include <stdint.h>
#include <sys/types.h>

struct tracer;

struct tracer_opts {
	const pid_t *tgids;		/* owners to report; none = every process */
	int ntgids;
	uint16_t port;			/* 0 = any */
	uint64_t cgroup_id;		/* cgroup v2 id, 0 = any */
	uint32_t max_conns;
	const char *btf_path;		/* NULL = /sys/kernel/btf/vmlinux */
	bool verbose;			/* libbpf's own messages */
	bool quiet;			/* keep errors for tracer_error() instead of printing */
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
/* Summed over CPUs. */
uint64_t tracer_counter(struct tracer *t, int slot);
/* Names of optional features the kernel lacked, for the start-up note. */
const char *tracer_fallbacks(struct tracer *t);
void tracer_close(struct tracer *t);

/* Names of the values of a kernel enum, read from BTF, with prefix stripped
 * (sk_rst_reason's values differ between kernel versions: never hard-code
 * them). Returns how many were found, 0 when the kernel lacks the enum. */
int kernel_enum_names(const char *btf_path, const char *enum_name, const char *prefix,
		      char (*names)[40], int max);

#endif
