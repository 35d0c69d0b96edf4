// SPDX-License-Identifier: GPL-2.0
#include <arpa/inet.h>
#include <ctype.h>
#include <stdbool.h>
#include <dirent.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>
#include "procfs.h"

#define MAX_LISTENING 1024
#define MAX_SOCKETS   65536 /* of every state, for their owners */

struct tcp_socket {
	unsigned long inode;
	struct tuple t;
};

/* The LISTEN (state 0A) sockets of /proc/net/tcp or tcp6, or (any_state)
 * every one. */
static int read_table(const char *path, int family, bool any_state, struct tcp_socket *out, int n,
		      int max)
{
	char line[512], addr[64];
	unsigned int port, state, i;
	unsigned long inode;
	FILE *f = fopen(path, "re");

	if (!f)
		return n;
	while (n < max && fgets(line, sizeof(line), f)) {
		if (sscanf(line,
			   " %*u: %63[0-9A-Fa-f]:%x %*[0-9A-Fa-f]:%*x %x %*s %*s %*s %*u %*u %lu",
			   addr, &port, &state, &inode) != 4 ||
		    (state != 0x0A && !any_state) || !inode)
			continue;
		memset(&out[n], 0, sizeof(out[n]));
		out[n].inode = inode;
		out[n].t.family = family;
		out[n].t.lport = port;
		/* the address is printed as 32-bit words in host order */
		for (i = 0; i < (family == AF_INET ? 1u : 4u); i++) {
			uint32_t w;

			sscanf(addr + 8 * i, "%8x", &w);
			memcpy(out[n].t.laddr + 4 * i, &w, 4);
		}
		n++;
	}
	fclose(f);
	return n;
}

/* Both tables, IPv4 then IPv6. */
static int read_tables(bool any_state, struct tcp_socket *out, int max)
{
	int n = read_table("/proc/net/tcp", AF_INET, any_state, out, 0, max);

	return read_table("/proc/net/tcp6", AF_INET6, any_state, out, n, max);
}

static void read_comm(pid_t pid, char *comm)
{
	char path[64];
	FILE *f;

	snprintf(path, sizeof(path), "/proc/%d/comm", pid);
	memset(comm, 0, TASK_COMM_LEN);
	f = fopen(path, "re");
	if (f && fgets(comm, TASK_COMM_LEN, f))
		comm[strcspn(comm, "\n")] = 0;
	if (f)
		fclose(f);
}

/* The socket descriptor name in directory fd_dir (/proc/PID/fd) is on. */
static bool socket_inode(const char *fd_dir, const char *name, unsigned long *inode)
{
	char fd_path[PROCFS_PATH_LEN], link[64];
	ssize_t len;

	snprintf(fd_path, sizeof(fd_path), "%s/%s", fd_dir, name);
	len = readlink(fd_path, link, sizeof(link) - 1);
	if (len <= 0)
		return false;
	link[len] = 0;
	return sscanf(link, "socket:[%lu]", inode) == 1;
}

/* Process pid's descriptors that are one of the listening sockets. */
static int match_fds(pid_t pid, const struct tcp_socket *l, int nl, struct listen_entry *out, int n,
		     int max)
{
	char path[64];
	struct dirent *d;
	unsigned long inode;
	DIR *dir;
	int i;

	snprintf(path, sizeof(path), "/proc/%d/fd", pid);
	dir = opendir(path);
	if (!dir)
		return n;
	while (n < max && (d = readdir(dir))) {
		if (!socket_inode(path, d->d_name, &inode))
			continue;
		for (i = 0; i < nl && n < max; i++) {
			if (l[i].inode != inode)
				continue;
			out[n].t = l[i].t;
			out[n].tgid = pid;
			read_comm(pid, out[n].comm);
			n++;
		}
	}
	closedir(dir);
	return n;
}

int procfs_listeners(pid_t pid, struct listen_entry *out, int max)
{
	static struct tcp_socket l[MAX_LISTENING];
	struct dirent *d;
	int nl, n = 0;
	DIR *proc;

	nl = read_tables(false, l, MAX_LISTENING);
	if (!nl)
		return 0;
	if (pid)
		return match_fds(pid, l, nl, out, 0, max);
	proc = opendir("/proc");
	if (!proc)
		return 0;
	while (n < max && (d = readdir(proc)))
		if (isdigit((unsigned char)d->d_name[0]))
			n = match_fds(atoi(d->d_name), l, nl, out, n, max);
	closedir(proc);
	return n;
}

/* A file once: its device and inode, against those already taken. */
struct seen_files {
	dev_t dev[256];
	ino_t ino[256];
	int n;
};

static int add_binary(const char *path, struct seen_files *seen, char (*out)[PROCFS_PATH_LEN],
		      int n, int max)
{
	struct stat st;
	int i;

	if (n >= max || stat(path, &st) || !S_ISREG(st.st_mode))
		return n;
	for (i = 0; i < seen->n; i++)
		if (seen->dev[i] == st.st_dev && seen->ino[i] == st.st_ino)
			return n;
	if (seen->n < 256) {
		seen->dev[seen->n] = st.st_dev;
		seen->ino[seen->n++] = st.st_ino;
	}
	snprintf(out[n], PROCFS_PATH_LEN, "%s", path);
	return n + 1;
}

int procfs_tls_binaries(pid_t pid, char (*out)[PROCFS_PATH_LEN], int max)
{
	char path[PROCFS_PATH_LEN], line[PROCFS_PATH_LEN + 128];
	struct seen_files seen = {};
	int n = 0;
	FILE *f;

	snprintf(path, sizeof(path), "/proc/%d/maps", pid);
	f = fopen(path, "re");
	if (!f)
		return n;
	while (fgets(line, sizeof(line), f)) {
		char *file = strchr(line, '/'), *base;

		if (!file)
			continue;
		file[strcspn(file, "\n")] = 0;
		base = strrchr(file, '/') + 1;
		if (strncmp(base, "libssl.so", 9))
			continue;
		snprintf(path, sizeof(path), "/proc/%d/root%s", pid, file);
		n = add_binary(path, &seen, out, n, max);
	}
	fclose(f);
	snprintf(path, sizeof(path), "/proc/%d/exe", pid);
	return add_binary(path, &seen, out, n, max);
}

static int cmp_inode(const void *a, const void *b)
{
	unsigned long x = ((const struct tcp_socket *)a)->inode;
	unsigned long y = ((const struct tcp_socket *)b)->inode;

	return (x > y) - (x < y);
}

/* Process pid has a descriptor on one of the sockets (sorted by inode). */
static bool owns_one(pid_t pid, const struct tcp_socket *l, int nl)
{
	char path[64];
	struct tcp_socket key;
	struct dirent *d;
	bool found = false;
	DIR *dir;

	snprintf(path, sizeof(path), "/proc/%d/fd", pid);
	dir = opendir(path);
	if (!dir)
		return false;
	while (!found && (d = readdir(dir)))
		found = socket_inode(path, d->d_name, &key.inode) &&
			bsearch(&key, l, nl, sizeof(*l), cmp_inode);
	closedir(dir);
	return found;
}

int procfs_socket_owners(pid_t *out, int max)
{
	static struct tcp_socket l[MAX_SOCKETS];
	struct dirent *d;
	int nl, n = 0;
	DIR *proc;

	nl = read_tables(true, l, MAX_SOCKETS);
	qsort(l, nl, sizeof(l[0]), cmp_inode);
	proc = opendir("/proc");
	if (!nl || !proc) {
		if (proc)
			closedir(proc);
		return 0;
	}
	while (n < max && (d = readdir(proc))) {
		pid_t pid = atoi(d->d_name);

		if (pid > 0 && pid != getpid() && owns_one(pid, l, nl))
			out[n++] = pid;
	}
	closedir(proc);
	return n;
}
