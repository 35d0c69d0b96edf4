// SPDX-License-Identifier: GPL-2.0
/* Loads the empty floor programs and holds them until SIGTERM/SIGINT. */
#include <signal.h>
#include <stdbool.h>
#include <stdio.h>
#include <unistd.h>
#include "floor.skel.h"

static volatile sig_atomic_t stop;

static void on_signal(int sig)
{
	stop = sig;
}

int main(void)
{
	struct floor_bpf *skel = floor_bpf__open();
	/* the data programs katrace would load on this kernel */
	bool sock_length = libbpf_find_vmlinux_btf_id("sock_send_length", BPF_TRACE_RAW_TP) > 0;

	if (skel) {
		bpf_program__set_autoload(skel->progs.floor_send_len, sock_length);
		bpf_program__set_autoload(skel->progs.floor_recv_len, sock_length);
		bpf_program__set_autoload(skel->progs.floor_sys_exit, !sock_length);
	}
	if (!skel || floor_bpf__load(skel) || floor_bpf__attach(skel)) {
		fprintf(stderr, "katrace-floor: cannot load or attach the empty programs\n");
		return 1;
	}
	signal(SIGINT, on_signal);
	signal(SIGTERM, on_signal);
	fprintf(stderr, "katrace-floor: attached\n");
	while (!stop)
		pause();
	floor_bpf__destroy(skel);
	return 0;
}
