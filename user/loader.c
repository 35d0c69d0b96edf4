// SPDX-License-Identifier: GPL-2.0
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <linux/capability.h>
#include <sys/syscall.h>
#include <bpf/libbpf.h>
#include <bpf/bpf.h>
#include <bpf/btf.h>
#include "katrace.h"
#include "katrace.skel.h"
#include "loader.h"

#define DEFAULT_BTF "/sys/kernel/btf/vmlinux"
#ifndef CAP_PERFMON
#define CAP_PERFMON 38
#endif
#ifndef CAP_BPF
#define CAP_BPF 39
#endif

struct tracer {
	struct katrace_bpf *skel;
	struct ring_buffer *rb;
	char fallbacks[128];
};

static bool libbpf_verbose;

static int print_libbpf(enum libbpf_print_level level, const char *fmt, va_list ap)
{
	if (level == LIBBPF_DEBUG && !libbpf_verbose)
		return 0;
	if (!libbpf_verbose)
		return 0;
	return vfprintf(stderr, fmt, ap);
}

static bool has_cap(const struct __user_cap_data_struct d[2], int cap)
{
	return d[cap / 32].effective & (1u << (cap % 32));
}

static int check_privileges(void)
{
	struct __user_cap_header_struct h = { .version = _LINUX_CAPABILITY_VERSION_3 };
	struct __user_cap_data_struct d[2] = {};

	if (syscall(SYS_capget, &h, d) == 0 &&
	    (has_cap(d, CAP_SYS_ADMIN) || (has_cap(d, CAP_BPF) && has_cap(d, CAP_PERFMON))))
		return 0;
	fprintf(stderr, "katrace: need root or CAP_BPF and CAP_PERFMON to load BPF programs (try sudo)\n");
	return -1;
}

/* A tp_btf tracepoint exists when the kernel's BTF has its btf_trace_ typedef;
 * returns the number of tracepoint arguments, or -1. */
static int tracepoint_args(const struct btf *btf, const char *name)
{
	char tname[128];
	const struct btf_type *t;
	int id;

	snprintf(tname, sizeof(tname), "btf_trace_%s", name);
	id = btf__find_by_name_kind(btf, tname, BTF_KIND_TYPEDEF);
	if (id < 0)
		return -1;
	t = btf__type_by_id(btf, id);			/* typedef */
	t = t ? btf__type_by_id(btf, t->type) : NULL;	/* pointer */
	t = t ? btf__type_by_id(btf, t->type) : NULL;	/* func proto */
	if (!t || !btf_is_func_proto(t))
		return -1;
	return btf_vlen(t) - 1;	/* the first is the tracepoint's void *data */
}

struct tracer *tracer_open(const struct tracer_opts *o, event_fn fn, void *ctx)
{
	static const char *const required[] = {
		"inet_sock_set_state", "tcp_send_reset", "tcp_receive_reset", "tcp_destroy_sock",
	};
	const char *btf_path = o->btf_path ? o->btf_path : DEFAULT_BTF;
	struct tracer *t;
	struct btf *btf;
	bool have_data;
	int err, reset_args;
	size_t i;

	libbpf_verbose = o->verbose;
	libbpf_set_print(print_libbpf);

	if (check_privileges())
		return NULL;
	if (access(btf_path, R_OK)) {
		fprintf(stderr, "katrace: no kernel BTF at %s (the kernel needs CONFIG_DEBUG_INFO_BTF=y)\n",
			btf_path);
		return NULL;
	}
	btf = btf__parse(btf_path, NULL);
	if (!btf) {
		fprintf(stderr, "katrace: cannot read BTF from %s: %s\n", btf_path, strerror(errno));
		return NULL;
	}
	for (i = 0; i < sizeof(required) / sizeof(required[0]); i++) {
		if (tracepoint_args(btf, required[i]) < 0) {
			fprintf(stderr, "katrace: this kernel has no tracepoint %s (its BTF lacks btf_trace_%s)\n",
				required[i], required[i]);
			btf__free(btf);
			return NULL;
		}
	}
	reset_args = tracepoint_args(btf, "tcp_send_reset");
	have_data = tracepoint_args(btf, "sock_send_length") == 3 &&
		    tracepoint_args(btf, "sock_recv_length") == 3;
	btf__free(btf);

	t = calloc(1, sizeof(*t));
	if (!t)
		return NULL;
	t->skel = katrace_bpf__open();
	if (!t->skel) {
		fprintf(stderr, "katrace: cannot open the BPF object: %s\n", strerror(errno));
		goto fail;
	}
	t->skel->rodata->filter_port = o->port;
	t->skel->rodata->filter_pid = o->ntgids > 0;
	t->skel->rodata->self_tgid = getpid();
	bpf_map__set_max_entries(t->skel->maps.conns, o->max_conns);

	/* tcp_send_reset gained its reason argument in Linux 6.10. */
	bpf_program__set_autoload(t->skel->progs.on_send_reset, reset_args >= 3);
	bpf_program__set_autoload(t->skel->progs.on_send_reset_noreason, reset_args < 3);
	if (!have_data) {
		/* sock_{send,recv}_length arrived in Linux 6.5 */
		bpf_program__set_autoload(t->skel->progs.on_send_length, false);
		bpf_program__set_autoload(t->skel->progs.on_recv_length, false);
		snprintf(t->fallbacks, sizeof(t->fallbacks),
			 "no sock_send_length/sock_recv_length: idle times and owners come from state changes only");
	}

	err = katrace_bpf__load(t->skel);
	if (err) {
		fprintf(stderr, "katrace: the kernel refused the BPF programs: %s (run with -v for the verifier log)\n",
			strerror(-err));
		goto fail;
	}
	for (i = 0; i < (size_t)o->ntgids; i++) {
		__u32 tgid = o->tgids[i];
		__u8 one = 1;

		bpf_map__update_elem(t->skel->maps.target_tgids, &tgid, sizeof(tgid),
				     &one, sizeof(one), BPF_ANY);
	}
	err = katrace_bpf__attach(t->skel);
	if (err) {
		fprintf(stderr, "katrace: cannot attach to the tracepoints: %s\n", strerror(-err));
		goto fail;
	}
	t->rb = ring_buffer__new(bpf_map__fd(t->skel->maps.events),
				 (ring_buffer_sample_fn)fn, ctx, NULL);
	if (!t->rb) {
		fprintf(stderr, "katrace: cannot map the ring buffer: %s\n", strerror(errno));
		goto fail;
	}
	return t;
fail:
	tracer_close(t);
	return NULL;
}

int tracer_poll(struct tracer *t, int timeout_ms)
{
	int n = ring_buffer__poll(t->rb, timeout_ms);

	return n == -EINTR ? 0 : n;
}

uint64_t tracer_counter(struct tracer *t, int slot)
{
	int ncpu = libbpf_num_possible_cpus();
	__u32 key = slot;
	uint64_t sum = 0;

	if (ncpu <= 0)
		return 0;
	{
		__u64 vals[ncpu];

		if (bpf_map__lookup_elem(t->skel->maps.counters, &key, sizeof(key),
					 vals, sizeof(vals), 0))
			return 0;
		for (int i = 0; i < ncpu; i++)
			sum += vals[i];
	}
	return sum;
}

const char *tracer_fallbacks(struct tracer *t)
{
	return t->fallbacks[0] ? t->fallbacks : NULL;
}

void tracer_close(struct tracer *t)
{
	if (!t)
		return;
	ring_buffer__free(t->rb);
	katrace_bpf__destroy(t->skel);
	free(t);
}
