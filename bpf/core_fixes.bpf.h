/* SPDX-License-Identifier: GPL-2.0 */
/*
 * Kernel differences the BPF side is written against, each named with the
 * change that made it necessary. The loader probes them once (struct
 * kernel_features, user/loader.c) and loads the programs that fit.
 */
#ifndef CORE_FIXES_BPF_H
#define CORE_FIXES_BPF_H

/*
 * Reads an skb's bytes wherever they are, page fragments included: on
 * loopback, and with many drivers, a segment's payload is not in the linear
 * area. Tracing programs (tp_btf) may call it from Linux 6.12 (the kfunc set
 * registered for BPF_PROG_TYPE_TRACING); before, only the *_linear programs
 * load, which read the linear area alone.
 */
extern int bpf_dynptr_from_skb(struct __sk_buff *skb, __u64 flags,
			       struct bpf_dynptr *ptr__uninit) __ksym __weak;

/*
 * tcp_send_reset(sk, skb, reason) from Linux 6.10 (enum sk_rst_reason),
 * (sk, skb) before; 6.10 also made it fire for resets sent with no socket or from a
 * time-wait socket. From 6.12 its skb may be NULL (skb__nullable).
 */

#endif /* CORE_FIXES_BPF_H */
