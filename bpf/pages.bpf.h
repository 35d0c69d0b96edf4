/* SPDX-License-Identifier: GPL-2.0 */
/*
 * Reading an skb's page fragments, any skb's (a socket's retransmit queue
 * too), from the kernel's direct map: a page's address is
 * page * (PAGE_SIZE / sizeof(struct page)) + an offset fixed at boot
 * (KASLR), page_va_offset. It is derived from slab pages, whose free-list
 * pointers are addresses inside them, and accepted only when two slabs
 * agree on it.
 *
 * Needs vmlinux.h, bpf_helpers.h, bpf_core_read.h and katrace.h first.
 */
#ifndef PAGES_BPF_H
#define PAGES_BPF_H

const volatile __u32 page_size = 4096; /* set by the loader */
__u64 page_va_offset = 0;	       /* 0: not derived yet; kept in both builds (same data) */

#define PAGE_VA_CACHES	 256 /* slab caches visited to derive it */
#define PAGE_VA_RETRY_NS 100000000ULL
#define MAX_SLAB_ORDER	 10

/* The direct-map offset a slab implies: a partial slab has free objects,
 * so a free-list pointer, an address inside it. Slabs are allocated 2^order
 * pages aligned, so that address rounded down to the slab's size is the
 * slab's first page. */
static __always_inline __u64 offset_from_slab(const struct kmem_cache *s,
					      const struct list_head *entry, __u64 *slab_id)
{
	const struct slab *slab = (void *)entry - bpf_core_field_offset(struct slab, slab_list);
	__u64 free, span;
	__u32 order;

	if (BPF_CORE_READ(slab, slab_cache) != s)
		return 0; /* moved off the list while read */
	free = (__u64)BPF_CORE_READ(slab, freelist);
	order = BPF_CORE_READ(s, oo.x) >> 16; /* OO_SHIFT */
	if (!free || order > MAX_SLAB_ORDER)
		return 0;
	span = (__u64)page_size << order;
	*slab_id = (__u64)slab;
	return (free & ~(span - 1)) - (__u64)slab * (page_size / bpf_core_type_size(struct page));
}

struct offset_walk {
	const struct kmem_cache *cache;
	__u64 offset, slab; /* the last slab's, awaiting a second */
	__u64 agreed;
};

/* Counts one slab's offset: agreed when another slab gave the same. */
static __always_inline void vote(struct offset_walk *w, __u64 offset, __u64 slab)
{
	if (!offset || slab == w->slab)
		return;
	if (w->offset == offset)
		w->agreed = offset;
	w->offset = offset; /* a disagreement starts over */
	w->slab = slab;
}

/* One cache of the walk (a bpf_loop callback: verified once): the first
 * and last partial slab on node 0. */
static long visit_cache(__u64 i, struct offset_walk *w)
{
	const struct kmem_cache *s = w->cache;
	const struct kmem_cache_node *n = BPF_CORE_READ(s, node[0]);
	const struct list_head *first = BPF_CORE_READ(n, partial.next);
	__u64 slab = 0;

	if (n && first && (void *)first != (void *)n + bpf_core_field_offset(n->partial)) {
		vote(w, offset_from_slab(s, first, &slab), slab);
		vote(w, offset_from_slab(s, BPF_CORE_READ(n, partial.prev), &slab), slab);
	}
	w->cache = (void *)BPF_CORE_READ(s, list.next) -
		   bpf_core_field_offset(struct kmem_cache, list);
	return w->agreed || !w->cache;
}

/* Walks the list of slab caches from the socket's own until two slabs
 * agree. */
static __always_inline __u64 derive_page_va_offset(const struct sock *sk)
{
	struct offset_walk w = { .cache = BPF_CORE_READ(sk, __sk_common.skc_prot, slab) };

	bpf_loop(PAGE_VA_CACHES, visit_cache, &w, 0);
	return w.agreed;
}

/* Derived once; a failed try (no partial slabs seen) is retried at most
 * every PAGE_VA_RETRY_NS, since it walks many caches. */
static __always_inline __u64 page_va(const struct sock *sk)
{
	static __u64 tried_ns;
	__u64 now;

	if (page_va_offset || !sk)
		return page_va_offset;
	now = bpf_ktime_get_ns();
	if (tried_ns && now - tried_ns < PAGE_VA_RETRY_NS)
		return 0;
	tried_ns = now;
	page_va_offset = derive_page_va_offset(sk);
	return page_va_offset;
}

/* The direct-map address of a struct page, its pointer taken as a number,
 * given page_va_offset. */
static __always_inline __u64 page_address(__u64 page, __u64 base)
{
	return page * (page_size / bpf_core_type_size(struct page)) + base;
}

/* skb_frag_t: struct bio_vec before Linux 6.8, struct skb_frag after, both
 * {page, len, offset}. */
struct frag_layout {
	__u64 page;
	__u32 len;
	__u32 offset;
};

#define MAX_FRAGS_READ 4

/* Copies want bytes (at most one fragment's) of any skb's fragments, from
 * off bytes into the skb (off is past the linear area), through the direct
 * map. */
static __always_inline __u32 read_pages(const struct sock *sk, const struct sk_buff *skb, __u32 off,
					__u8 *dst, __u64 want)
{
	unsigned char *head = BPF_CORE_READ(skb, head);
	const unsigned char *frags = head + BPF_CORE_READ(skb, end) +
				     bpf_core_field_offset(struct skb_shared_info, frags);
	__u32 linear = BPF_CORE_READ(skb, len) - BPF_CORE_READ(skb, data_len);
	__u64 base = page_va(sk), va;
	struct frag_layout f;

	if (!base || off < linear)
		return 0;
	off -= linear;
	for (int i = 0; i < MAX_FRAGS_READ; i++) {
		if (bpf_probe_read_kernel(&f, sizeof(f), frags + i * sizeof(f)) || !f.page)
			return 0;
		if (off < f.len) {
			__u64 n = f.len - off;

			if (n > MAX_PAYLOAD)
				n = MAX_PAYLOAD;
			barrier_var(n); /* kept apart, so that the verifier sees both bounds */
			if (n > want)
				n = want;
			va = page_address(f.page, base) + f.offset + off;
			return bpf_probe_read_kernel(dst, n, (void *)va) ? 0 : n;
		}
		off -= f.len;
	}
	return 0;
}

#endif /* PAGES_BPF_H */
