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
#include "katrace_dynptr.skel.h"
#include "features.skel.h"
#include "loader.h"

#define DEFAULT_BTF "/sys/kernel/btf/vmlinux"
#ifndef CAP_PERFMON
#define CAP_PERFMON 38
#endif
#ifndef CAP_BPF
#define CAP_BPF 39
#endif

#define TLS_PROBES 6 /* four calls' entries, two returns */

/* The TLS library probes on one binary, for one process or every one. */
struct tls_attachment {
	pid_t pid;
	struct bpf_link *links[TLS_PROBES];
};

struct tracer {
	struct katrace_bpf *skel;
	struct tls_attachment tls[MAX_TLS_ATTACHMENTS];
	int ntls;
	struct ring_buffer *rb;
	struct kernel_features features;
	char fallbacks[512];
	char rst_reasons[MAX_RST_REASONS][RST_REASON_LEN];
};

static bool libbpf_verbose, quiet;
static char last_error[256];

/* One-line errors: printed, or kept for tracer_error() when quiet. */
__attribute__((format(printf, 1, 2))) static void fail_msg(const char *fmt, ...)
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
	t = btf__type_by_id(btf, id);		      /* typedef */
	t = t ? btf__type_by_id(btf, t->type) : NULL; /* pointer */
	t = t ? btf__type_by_id(btf, t->type) : NULL; /* func proto */
	if (!t || !btf_is_func_proto(t))
		return -1;
	return btf_vlen(t) - 1; /* the first is the tracepoint's void *data */
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
		return 4000000; /* HZ=250, the common default */
	return res.tv_nsec;
}

/* Whether the verifier lets a tracing program read an skb through a
 * dynptr: the kfunc must be in vmlinux's BTF (else libbpf would search the
 * module BTFs, which needs CAP_SYS_ADMIN), and the one small program of
 * features.bpf.c must load. */
static bool probe_skb_dynptr(const struct btf *btf)
{
	struct features_bpf *probe;

	if (btf__find_by_name_kind(btf, "bpf_dynptr_from_skb", BTF_KIND_FUNC) < 0)
		return false;
	probe = features_bpf__open_and_load();

	features_bpf__destroy(probe);
	return probe != NULL;
}

static int probe_features(const char *btf_path, struct kernel_features *f, struct tracer *t)
{
	static const char *const required[] = {
		"inet_sock_set_state", "tcp_send_reset", "tcp_receive_reset",
		"tcp_destroy_sock",    "tcp_probe",
	};
	struct btf *btf;
	size_t i;

	if (access(btf_path, R_OK)) {
		fail_msg("no kernel BTF at %s (the kernel needs CONFIG_DEBUG_INFO_BTF=y)",
			 btf_path);
		return -1;
	}
	btf = btf__parse(btf_path, NULL);
	if (!btf) {
		fail_msg("cannot read BTF from %s: %s", btf_path, strerror(errno));
		return -1;
	}
	for (i = 0; i < sizeof(required) / sizeof(required[0]); i++) {
		if (tracepoint_args(btf, required[i]) < 0) {
			fail_msg("this kernel has no tracepoint %s (its BTF lacks btf_trace_%s)",
				 required[i], required[i]);
			btf__free(btf);
			return -1;
		}
	}
	f->send_reset_reason = tracepoint_args(btf, "tcp_send_reset") >= 3;
	f->data_tracepoints = tracepoint_args(btf, "sock_send_length") == 3 &&
			      tracepoint_args(btf, "sock_recv_length") == 3;
	f->sys_exit = tracepoint_args(btf, "sys_exit") == 2;
	f->drop_reason = tracepoint_args(btf, "kfree_skb") >= 3;
	/* tp_btf got skb dynptrs in 6.12, after tcp_send_reset's reason (6.10):
	 * a kernel (or a --btf) without the reason is not probed */
	f->skb_dynptr = f->send_reset_reason && probe_skb_dynptr(btf);
	read_reset_reasons(btf, t);
	btf__free(btf);
	return 0;
}

void kernel_features_print(FILE *out, const struct kernel_features *f)
{
	fprintf(out,
		"katrace: kernel features: tcp_send_reset reason %s, sock_send/recv_length %s, "
		"sys_exit %s, kfree_skb reason %s, skb dynptr in tp_btf %s (page fragments read "
		"through %s)\n",
		f->send_reset_reason ? "yes" : "no", f->data_tracepoints ? "yes" : "no",
		f->sys_exit ? "yes" : "no", f->drop_reason ? "yes" : "no",
		f->skb_dynptr ? "yes" : "no", f->skb_dynptr ? "skb dynptrs" : "the direct map");
}

/* The programs that fit the kernel and the level: each variant is one
 * named feature (bpf/core_fixes.bpf.h says which kernel brought it). */
static void choose_programs(struct katrace_bpf *skel, const struct kernel_features *f,
			    enum level level)
{
	bool per_call = level == LEVEL_REQUEST;

	bpf_program__set_autoload(skel->progs.on_send_reset, f->send_reset_reason);
	bpf_program__set_autoload(skel->progs.on_send_reset_noreason, !f->send_reset_reason);
	/* before 6.10 a RST sent for want of a socket is seen as the drop */
	bpf_program__set_autoload(skel->progs.on_drop_no_socket,
				  !f->send_reset_reason && f->drop_reason);
	bpf_program__set_autoload(skel->progs.on_send_length, per_call && f->data_tracepoints);
	bpf_program__set_autoload(skel->progs.on_recv_length, per_call && f->data_tracepoints);
	bpf_program__set_autoload(skel->progs.on_sys_exit, per_call && !f->data_tracepoints);
}

/* The uprobes on the TLS library load at --level request, to be attached
 * as the processes holding one are found. */
static void choose_tls_programs(struct katrace_bpf *skel, bool tls)
{
	struct bpf_program *progs[] = {
		skel->progs.on_ssl_write,    skel->progs.on_ssl_write_ex,
		skel->progs.on_ssl_read,     skel->progs.on_ssl_read_ex,
		skel->progs.on_ssl_read_ret, skel->progs.on_ssl_read_ex_ret
	};

	for (size_t i = 0; i < sizeof(progs) / sizeof(progs[0]); i++)
		bpf_program__set_autoload(progs[i], tls);
	skel->rodata->tls_probes = tls;
}

static void detach_links(struct tls_attachment *a)
{
	for (int i = 0; i < TLS_PROBES; i++)
		bpf_link__destroy(a->links[i]);
}

/* SSL_write must be there (OpenSSL's); the _ex calls are from 1.1.1 on. */
int tracer_attach_tls(struct tracer *t, const char *path, pid_t pid)
{
	const struct {
		const char *func;
		struct bpf_program *prog;
		bool ret;
	} probes[TLS_PROBES] = {
		{ "SSL_write", t->skel->progs.on_ssl_write, false },
		{ "SSL_write_ex", t->skel->progs.on_ssl_write_ex, false },
		{ "SSL_read", t->skel->progs.on_ssl_read, false },
		{ "SSL_read", t->skel->progs.on_ssl_read_ret, true },
		{ "SSL_read_ex", t->skel->progs.on_ssl_read_ex, false },
		{ "SSL_read_ex", t->skel->progs.on_ssl_read_ex_ret, true },
	};
	struct tls_attachment *a = &t->tls[t->ntls];

	if (!t->skel->rodata->tls_probes)
		return 0;
	if (t->ntls == MAX_TLS_ATTACHMENTS)
		return -1;
	memset(a, 0, sizeof(*a));
	for (int i = 0; i < TLS_PROBES; i++) {
		LIBBPF_OPTS(bpf_uprobe_opts, uo, .func_name = probes[i].func,
			    .retprobe = probes[i].ret);

		a->links[i] = bpf_program__attach_uprobe_opts(probes[i].prog, pid, path, 0, &uo);
		if (!a->links[i] && i == 0)
			return 0;
	}
	a->pid = pid;
	t->ntls++;
	return 1;
}

void tracer_detach_tls(struct tracer *t, pid_t pid)
{
	for (int i = 0; i < t->ntls;) {
		if (t->tls[i].pid != pid) {
			i++;
			continue;
		}
		detach_links(&t->tls[i]);
		t->tls[i] = t->tls[--t->ntls];
	}
}

/* What the kernel lacks that the user should know of; -1 when katrace
 * cannot run at this level. */
static int note_fallbacks(struct tracer *t, const struct tracer_opts *o)
{
	const struct kernel_features *f = &t->features;

	/* at the conn level there are no data programs to fall back from */
	if (!f->data_tracepoints && o->level == LEVEL_REQUEST) {
		if (!f->sys_exit) {
			fail_msg("this kernel has neither sock_send_length/sock_recv_length nor "
				 "sys_exit: katrace cannot time data");
			return -1;
		}
		append_fallback(t, "no sock_send_length/sock_recv_length (Linux < 6.5): data "
				   "timing and HTTP from the send/recv syscall exits instead");
	}
	if (!f->send_reset_reason)
		append_fallback(t, "no tcp_send_reset reason (Linux < 6.10): reset_reason is null, "
				   "and a RST from a time-wait socket is seen only through the "
				   "peer's end on this host");
	return 0;
}

/* katrace_bpf's skeleton, on the dynptr build of the same programs where
 * the kernel takes it (both builds have the same programs, maps and data). */
static struct katrace_bpf *open_object(const struct kernel_features *f)
{
	struct katrace_bpf *skel = calloc(1, sizeof(*skel));
	int err;

	if (!skel)
		return NULL;
	err = katrace_bpf__create_skeleton(skel);
	if (!err && f->skb_dynptr)
		skel->skeleton->data = katrace_dynptr_bpf__elf_bytes(&skel->skeleton->data_sz);
	if (!err)
		err = bpf_object__open_skeleton(skel->skeleton, NULL);
	if (err) {
		katrace_bpf__destroy(skel);
		errno = -err;
		return NULL;
	}
	return skel;
}

static int load(struct tracer *t, const struct tracer_opts *o)
{
	int err;

	t->skel = open_object(&t->features);
	if (!t->skel) {
		fail_msg("cannot open the BPF object: %s", strerror(errno));
		return -1;
	}
	t->skel->rodata->filter_port = o->port;
	t->skel->rodata->filter_pid = o->ntgids > 0;
	t->skel->rodata->filter_cgroup = o->cgroup_id;
	t->skel->rodata->trace_level = o->level;
	t->skel->rodata->ns_per_jiffy = ns_per_jiffy();
	t->skel->rodata->page_size = sysconf(_SC_PAGESIZE);
	bpf_map__set_max_entries(t->skel->maps.conns, o->max_conns);
	bpf_map__set_max_entries(t->skel->maps.arrivals, o->max_conns);
	choose_programs(t->skel, &t->features, o->level);
	choose_tls_programs(t->skel, o->level == LEVEL_REQUEST);
	err = katrace_bpf__load(t->skel);
	if (err == -ENOENT || err == -ENOMEM)
		fail_msg("cannot open the BPF object: %s", strerror(-err));
	else if (err)
		fail_msg(
			"the kernel refused the BPF programs: %s (run with -v for the verifier log)",
			strerror(-err));
	return err;
}

static int attach(struct tracer *t, const struct tracer_opts *o, event_fn fn, void *ctx)
{
	int i, err;

	for (i = 0; i < o->ntgids; i++) {
		__u32 tgid = o->tgids[i];
		__u8 one = 1;

		bpf_map__update_elem(t->skel->maps.target_tgids, &tgid, sizeof(tgid), &one,
				     sizeof(one), BPF_ANY);
	}
	err = katrace_bpf__attach(t->skel);
	if (err) {
		fail_msg("cannot attach to the tracepoints: %s", strerror(-err));
		return err;
	}
	t->rb = ring_buffer__new(bpf_map__fd(t->skel->maps.events), (ring_buffer_sample_fn)fn, ctx,
				 NULL);
	if (!t->rb) {
		fail_msg("cannot map the ring buffer: %s", strerror(errno));
		return -1;
	}
	return 0;
}

struct tracer *tracer_open(const struct tracer_opts *o, event_fn fn, void *ctx)
{
	struct tracer *t;

	libbpf_verbose = o->verbose;
	quiet = o->quiet;
	libbpf_set_print(print_libbpf);
	if (check_privileges())
		return NULL;
	t = calloc(1, sizeof(*t));
	if (!t) {
		fail_msg("out of memory");
		return NULL;
	}
	if (probe_features(o->btf_path ? o->btf_path : DEFAULT_BTF, &t->features, t) ||
	    note_fallbacks(t, o) || load(t, o) || attach(t, o, fn, ctx)) {
		tracer_close(t);
		return NULL;
	}
	return t;
}

const struct kernel_features *tracer_features(const struct tracer *t)
{
	return &t->features;
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

int tracer_add_target(struct tracer *t, uint32_t tgid)
{
	__u8 one = 1;

	return bpf_map__update_elem(t->skel->maps.target_tgids, &tgid, sizeof(tgid), &one,
				    sizeof(one), BPF_ANY);
}

int tracer_follow_port(struct tracer *t, uint16_t port)
{
	__u8 one = 1;

	return bpf_map__update_elem(t->skel->maps.followed_ports, &port, sizeof(port), &one,
				    sizeof(one), BPF_ANY);
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

		if (bpf_map__lookup_elem(t->skel->maps.counters, &key, sizeof(key), vals,
					 sizeof(vals), 0))
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
	for (int i = 0; i < t->ntls; i++)
		detach_links(&t->tls[i]);
	katrace_bpf__destroy(t->skel);
	free(t);
}
