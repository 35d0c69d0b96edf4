/* SPDX-License-Identifier: GPL-2.0 */
/*
 * Kernel differences the BPF side is written against, each named with the
 * change that made it necessary. The loader probes them once (struct
 * kernel_features, user/loader.c) and loads the programs that fit.
 *
 * Needs vmlinux.h, bpf_helpers.h, bpf_core_read.h, katrace.h and pages.bpf.h
 * first.
 */
#ifndef CORE_FIXES_BPF_H
#define CORE_FIXES_BPF_H

/*
 * tcp_send_reset(sk, skb, reason) from Linux 6.10 (enum sk_rst_reason),
 * (sk, skb) before; 6.10 also made it fire for resets sent with no socket or from a
 * time-wait socket. From 6.12 its skb may be NULL (skb__nullable).
 */

/*
 * A segment's payload past the linear area is in page fragments: on
 * loopback always, with many drivers too.
 *
 * From Linux 6.12 a tracing program (tp_btf) may read them through an skb
 * dynptr. katrace.bpf.c is then built a second time with KATRACE_SKB_DYNPTR,
 * and the loader loads that build only where the kernel's BTF has the kfunc
 * and the verifier takes it: with Debian 12's libbpf, a weak kfunc that
 * vmlinux lacks makes the whole object look for it in module BTFs, which
 * needs CAP_SYS_ADMIN.
 *
 * Before, fragments are read from the kernel's direct map (pages.bpf.h).
 */
#ifdef KATRACE_SKB_DYNPTR
extern int bpf_dynptr_from_skb(struct __sk_buff *skb, __u64 flags,
			       struct bpf_dynptr *ptr__uninit) __ksym __weak;
#endif

/* Copies want bytes of a tracepoint's own skb, from off bytes into it (off
 * is past the linear area): through a dynptr where the kernel allows it,
 * else through the direct map. */
static __always_inline __u32 read_fragments(const struct sock *sk, const struct sk_buff *skb,
					    __u32 off, __u8 *dst, __u64 want)
{
#ifdef KATRACE_SKB_DYNPTR
	struct bpf_dynptr dp;

	if (bpf_dynptr_from_skb((struct __sk_buff *)skb, 0, &dp) ||
	    bpf_dynptr_read(dst, want, &dp, off, 0))
		return 0;
	return want;
#else
	return read_pages(sk, skb, off, dst, want);
#endif
}

#endif /* CORE_FIXES_BPF_H */
