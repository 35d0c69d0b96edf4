// SPDX-License-Identifier: GPL-2.0
/*
 * Feature probe: whether this kernel lets a tracing program read an skb
 * through a dynptr. The loader loads this one small program and throws it
 * away; the dynptr build of katrace.bpf.c is loaded only when it loaded.
 */
#include "vmlinux.h"
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_tracing.h>
#define KATRACE_SKB_DYNPTR
#include "core_fixes.bpf.h"

SEC("tp_btf/tcp_probe")
int BPF_PROG(probe_skb_dynptr, const struct sock *sk, const struct sk_buff *skb)
{
	struct bpf_dynptr dp;
	__u8 byte;

	if (!bpf_dynptr_from_skb((struct __sk_buff *)skb, 0, &dp))
		bpf_dynptr_read(&byte, 1, &dp, 0, 0);
	return 0;
}

char LICENSE[] SEC("license") = "GPL";
