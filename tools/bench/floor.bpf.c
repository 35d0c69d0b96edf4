// SPDX-License-Identifier: GPL-2.0
/* The floor any tracepoint tracer pays: empty programs on the tracepoints
 * katrace uses. tools/bench/run compares katrace's programs with these. */
#include "vmlinux.h"
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_tracing.h>

SEC("tp_btf/inet_sock_set_state")
int BPF_PROG(floor_set_state)
{
	return 0;
}
SEC("tp_btf/tcp_destroy_sock")
int BPF_PROG(floor_destroy)
{
	return 0;
}
SEC("tp_btf/tcp_send_reset")
int BPF_PROG(floor_send_reset)
{
	return 0;
}
SEC("tp_btf/tcp_receive_reset")
int BPF_PROG(floor_recv_reset)
{
	return 0;
}
SEC("tp_btf/tcp_probe")
int BPF_PROG(floor_tcp_probe)
{
	return 0;
}
SEC("tp_btf/sock_send_length")
int BPF_PROG(floor_send_len)
{
	return 0;
}
SEC("tp_btf/sock_recv_length")
int BPF_PROG(floor_recv_len)
{
	return 0;
}
/* before Linux 6.5 katrace times data from the syscall exits instead */
SEC("tp_btf/sys_exit")
int BPF_PROG(floor_sys_exit)
{
	return 0;
}

char LICENSE[] SEC("license") = "GPL";
