// SPDX-License-Identifier: GPL-2.0
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
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
	char fallbacks[256];
	char rst_reasons[MAX_RST_REASONS][RST_REASON_LEN];
};

static bool libbpf_verbose, quiet;
static char last_error[256];

/* One-line errors: printed, or kept for tracer_error() when quiet. */
__attribute__((format(printf, 1, 2)))
static void fail_msg(const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(last_error, sizeof(last_error), fmt, ap);
	va_end(ap);
	if (!quiet)
		fprintf(stderr, "katrace: %s\n", last_error);
}

const char *tracer_error(void)
{
	return last_error;
}

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
	fail_msg("need root or CAP_BPF and CAP_PERFMON to load BPF programs (try sudo)");
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

/* The names of enum sk_rst_reason, whose values differ between kernel
 * versions: never hard-coded. */
static void read_reset_reasons(const struct btf *btf, struct tracer *t)
{
	static const char prefix[] = "SK_RST_REASON_";
	int id = btf__find_by_name_kind(btf, "sk_rst_reason", BTF_KIND_ENUM);
	const struct btf_type *e = id > 0 ? btf__type_by_id(btf, id) : NULL;
	const struct btf_enum *v;
	int i;

	for (i = 0, v = e ? btf_enum(e) : NULL; e && i < btf_vlen(e); i++, v++) {
		const char *name = btf__name_by_offset(btf, v->name_off);

		if (v->val < 0 || v->val >= MAX_RST_REASONS || !name)
			continue;
		if (!strncmp(name, prefix, sizeof(prefix) - 1))
			name += sizeof(prefix) - 1;
		snprintf(t->rst_reasons[v->val], sizeof(t->rst_reasons[0]), "%s", name);
	}
}

void tracer_reset_reasons(const struct tracer *t, char (*names)[RST_REASON_LEN])
{
	memcpy(names, t->rst_reasons, sizeof(t->rst_reasons));
}

static void append_fallback(struct tracer *t, const char *what)
{
	size_t n = strlen(t->fallbacks);

	snprintf(t->fallbacks + n, sizeof(t->fallbacks) - n, "%s%s", n ? "; " : "", what);
}

/* A jiffy, in ns: the coarse clocks tick once per jiffy, and say so. */
static uint64_t ns_per_jiffy(void)
{
	struct timespec res;

	if (clock_getres(CLOCK_MONOTONIC_COARSE, &res) || res.tv_sec || !res.tv_nsec)
		return 4000000;	/* HZ=250, the common default */
	return res.tv_nsec;
}

static int load(struct tracer *t, const struct tracer_opts *o, int reset_args, bool have_data,
		bool dynptr)
{
	t->skel = katrace_bpf__open();
	if (!t->skel)
		return -errno;
	t->skel->rodata->filter_port = o->port;
	t->skel->rodata->filter_pid = o->ntgids > 0;
	t->skel->rodata->filter_cgroup = o->cgroup_id;
	t->skel->rodata->per_conn = o->per_conn;
	t->skel->rodata->ns_per_jiffy = ns_per_jiffy();
	bpf_map__set_max_entries(t->skel->maps.conns, o->max_conns);
	bpf_map__set_max_entries(t->skel->maps.arrivals, o->max_conns);

	/* tcp_send_reset gained its reason argument in Linux 6.10. */
	bpf_program__set_autoload(t->skel->progs.on_send_reset, reset_args >= 3 && dynptr);
	bpf_program__set_autoload(t->skel->progs.on_send_reset_linear, reset_args >= 3 && !dynptr);
	bpf_program__set_autoload(t->skel->progs.on_send_reset_noreason, reset_args < 3);
	/* sock_{send,recv}_length arrived in Linux 6.5; before, syscall exits */
	bpf_program__set_autoload(t->skel->progs.on_send_length, have_data && !o->per_conn);
	bpf_program__set_autoload(t->skel->progs.on_recv_length, have_data && !o->per_conn);
	bpf_program__set_autoload(t->skel->progs.on_sys_exit, !have_data && !o->per_conn);
	bpf_program__set_autoload(t->skel->progs.on_tcp_probe, dynptr);
	bpf_program__set_autoload(t->skel->progs.on_tcp_probe_linear, !dynptr);
	return katrace_bpf__load(t->skel);
}

struct tracer *tracer_open(const struct tracer_opts *o, event_fn fn, void *ctx)
{
	static const char *const required[] = {
		"inet_sock_set_state", "tcp_send_reset", "tcp_receive_reset", "tcp_destroy_sock",
		"tcp_probe",
	};
	const char *btf_path = o->btf_path ? o->btf_path : DEFAULT_BTF;
	struct tracer *t;
	struct btf *btf;
	bool have_data, have_sys_exit;
	int err, reset_args;
	size_t i;

	libbpf_verbose = o->verbose;
	quiet = o->quiet;
	libbpf_set_print(print_libbpf);

	if (check_privileges())
		return NULL;
	if (access(btf_path, R_OK)) {
		fail_msg("no kernel BTF at %s (the kernel needs CONFIG_DEBUG_INFO_BTF=y)",
			btf_path);
		return NULL;
	}
	btf = btf__parse(btf_path, NULL);
	if (!btf) {
		fail_msg("cannot read BTF from %s: %s", btf_path, strerror(errno));
		return NULL;
	}
	for (i = 0; i < sizeof(required) / sizeof(required[0]); i++) {
		if (tracepoint_args(btf, required[i]) < 0) {
			fail_msg("this kernel has no tracepoint %s (its BTF lacks btf_trace_%s)",
				required[i], required[i]);
			btf__free(btf);
			return NULL;
		}
	}
	reset_args = tracepoint_args(btf, "tcp_send_reset");
	have_data = tracepoint_args(btf, "sock_send_length") == 3 &&
		    tracepoint_args(btf, "sock_recv_length") == 3;
	have_sys_exit = tracepoint_args(btf, "sys_exit") == 2;

	t = calloc(1, sizeof(*t));
	if (!t) {
		btf__free(btf);
		return NULL;
	}
	read_reset_reasons(btf, t);
	btf__free(btf);
	/* per connection there are no data programs to fall back from */
	if (!have_data && !o->per_conn) {
		if (!have_sys_exit) {
			fail_msg("this kernel has neither sock_send_length/sock_recv_length nor "
				 "sys_exit: katrace cannot time data");
			free(t);
			return NULL;
		}
		append_fallback(t, "no sock_send_length/sock_recv_length (Linux < 6.5): data "
				"timing and HTTP from the send/recv syscall exits instead");
	}

	/* Try reading reset segments through skb dynptrs first; a kernel that
	 * refuses them in tracing programs gets the linear-only program. */
	err = load(t, o, reset_args, have_data, reset_args >= 3);
	if (err && reset_args >= 3) {
		katrace_bpf__destroy(t->skel);
		t->skel = NULL;
		err = load(t, o, reset_args, have_data, false);
		if (!err)
			append_fallback(t, "no skb dynptr in tracing programs: a lost request whose "
					"bytes sit in page fragments is reported without its line");
	}
	if (err) {
		if (err == -ENOENT || err == -ENOMEM)
			fail_msg("cannot open the BPF object: %s", strerror(-err));
		else
			fail_msg("the kernel refused the BPF programs: %s (run with -v for the verifier log)",
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
		fail_msg("cannot attach to the tracepoints: %s", strerror(-err));
		goto fail;
	}
	t->rb = ring_buffer__new(bpf_map__fd(t->skel->maps.events),
				 (ring_buffer_sample_fn)fn, ctx, NULL);
	if (!t->rb) {
		fail_msg("cannot map the ring buffer: %s", strerror(errno));
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

	if (n == -EINTR)
		n = 0;
	/* the BPF side wakes us only per batch: read what is there anyway */
	return n < 0 ? n : ring_buffer__consume(t->rb);
}

int tracer_fd(struct tracer *t)
{
	return ring_buffer__epoll_fd(t->rb);
}

int tracer_consume(struct tracer *t)
{
	return ring_buffer__consume(t->rb);
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
