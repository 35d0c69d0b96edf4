// SPDX-License-Identifier: GPL-2.0
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/stat.h>
#include "procfs.h"
#include "tlsprobe.h"

#define MAX_FILES     256  /* binaries looked at, OpenSSL's or not */
#define MAX_PROCESSES 1024 /* processes looked at: a ring, the oldest forgotten */
#define MAX_BINARIES  8	   /* per process: its libssl(s), its executable */

/* A binary looked at, for one process (per_process) or for all (-1). */
struct probed_file {
	dev_t dev;
	ino_t ino;
	pid_t pid;
	bool openssl; /* probed: it has SSL_write */
};

struct examined {
	pid_t pid;
	bool covered; /* one of its binaries is probed for it */
};

struct tls_probes {
	struct tracer *t;
	bool per_process, verbose;
	struct probed_file files[MAX_FILES];
	int nfiles;
	struct examined procs[MAX_PROCESSES];
	int nprocs, next_proc;
};

struct tls_probes *tls_probes_new(struct tracer *t, bool per_process, bool verbose)
{
	struct tls_probes *p = calloc(1, sizeof(*p));

	if (p) {
		p->t = t;
		p->per_process = per_process;
		p->verbose = verbose;
	}
	return p;
}

static bool alive(pid_t pid)
{
	return kill(pid, 0) == 0 || errno != ESRCH;
}

/* Room for more: the probes of processes that have exited go first, then
 * what was learnt of binaries without OpenSSL (looked at again if needed). */
static void make_room(struct tls_probes *p)
{
	for (int i = 0; i < p->nfiles;) {
		struct probed_file *f = &p->files[i];

		if (f->pid > 0 && !alive(f->pid)) {
			tracer_detach_tls(p->t, f->pid);
			*f = p->files[--p->nfiles];
		} else {
			i++;
		}
	}
	for (int i = 0; p->nfiles == MAX_FILES && i < p->nfiles;) {
		if (!p->files[i].openssl)
			p->files[i] = p->files[--p->nfiles];
		else
			i++;
	}
}

/* The binary at path, probed for pid unless it was looked at before. */
static bool probe_file(struct tls_probes *p, const char *path, pid_t pid)
{
	pid_t filter = p->per_process ? pid : -1;
	struct probed_file *f;
	struct stat st;
	int r;

	if (stat(path, &st))
		return false;
	for (int i = 0; i < p->nfiles; i++) {
		f = &p->files[i];
		if (f->dev == st.st_dev && f->ino == st.st_ino && f->pid == filter)
			return f->openssl;
	}
	if (p->nfiles == MAX_FILES)
		make_room(p);
	r = tracer_attach_tls(p->t, path, filter);
	if (r < 0) {
		make_room(p);
		r = tracer_attach_tls(p->t, path, filter);
	}
	if (r < 0 || p->nfiles == MAX_FILES)
		return r > 0;
	p->files[p->nfiles++] = (struct probed_file){ st.st_dev, st.st_ino, filter, r > 0 };
	if (p->verbose && r > 0)
		fprintf(stderr, "katrace: TLS library probes on %s (%s)\n", path,
			p->per_process ? "for its process" : "for every process");
	return r > 0;
}

static struct examined *examined(struct tls_probes *p, pid_t pid)
{
	for (int i = 0; i < p->nprocs; i++)
		if (p->procs[i].pid == pid)
			return &p->procs[i];
	return NULL;
}

bool tls_probe_process(struct tls_probes *p, pid_t pid, bool again)
{
	char paths[MAX_BINARIES][PROCFS_PATH_LEN];
	struct examined *e = examined(p, pid);
	bool covered = false;
	int n;

	if (e && !again)
		return e->covered;
	n = procfs_tls_binaries(pid, paths, MAX_BINARIES);
	for (int i = 0; i < n; i++)
		covered |= probe_file(p, paths[i], pid);
	if (!e) {
		e = &p->procs[p->next_proc];
		p->next_proc = (p->next_proc + 1) % MAX_PROCESSES;
		if (p->nprocs < MAX_PROCESSES)
			p->nprocs++;
	}
	*e = (struct examined){ pid, covered };
	return covered;
}

void tls_probes_free(struct tls_probes *p)
{
	free(p);
}
