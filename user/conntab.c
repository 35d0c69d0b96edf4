// SPDX-License-Identifier: GPL-2.0
#include <stdlib.h>
#include <string.h>
#include "conntab.h"

static uint32_t bucket_of(const struct conntab *t, uint64_t sk)
{
	/* sk addresses are 64-byte aligned slab objects: mix the high bits in */
	sk ^= sk >> 29;
	sk *= 0xbf58476d1ce4e5b9ULL;
	sk ^= sk >> 32;
	return sk & (t->nbuckets - 1);
}

int conntab_init(struct conntab *t, uint32_t max)
{
	memset(t, 0, sizeof(*t));
	t->max = max ? max : 1;
	t->nbuckets = 16;
	while (t->nbuckets < t->max)
		t->nbuckets <<= 1;
	t->buckets = calloc(t->nbuckets, sizeof(*t->buckets));
	return t->buckets ? 0 : -1;
}

static void lru_unlink(struct conntab *t, struct conn_rec *r)
{
	if (r->lru_prev)
		r->lru_prev->lru_next = r->lru_next;
	else
		t->lru_head = r->lru_next;
	if (r->lru_next)
		r->lru_next->lru_prev = r->lru_prev;
	else
		t->lru_tail = r->lru_prev;
	r->lru_prev = r->lru_next = NULL;
}

static void lru_push(struct conntab *t, struct conn_rec *r)
{
	r->lru_next = t->lru_head;
	if (t->lru_head)
		t->lru_head->lru_prev = r;
	t->lru_head = r;
	if (!t->lru_tail)
		t->lru_tail = r;
}

struct conn_rec *conntab_find(struct conntab *t, uint64_t sk)
{
	struct conn_rec *r;

	for (r = t->buckets[bucket_of(t, sk)]; r; r = r->hnext)
		if (r->c.sk == sk)
			return r;
	return NULL;
}

void conntab_remove(struct conntab *t, struct conn_rec *r)
{
	struct conn_rec **pp = &t->buckets[bucket_of(t, r->c.sk)];

	while (*pp && *pp != r)
		pp = &(*pp)->hnext;
	if (*pp)
		*pp = r->hnext;
	lru_unlink(t, r);
	t->count--;
	free(r);
}

struct conn_rec *conntab_get(struct conntab *t, uint64_t sk)
{
	struct conn_rec *r = conntab_find(t, sk);
	uint32_t b;

	if (r) {
		lru_unlink(t, r);
		lru_push(t, r);
		return r;
	}
	if (t->count >= t->max) {
		conntab_remove(t, t->lru_tail);
		t->evictions++;
	}
	r = calloc(1, sizeof(*r));
	if (!r)
		return NULL;
	r->c.sk = sk;
	b = bucket_of(t, sk);
	r->hnext = t->buckets[b];
	t->buckets[b] = r;
	lru_push(t, r);
	t->count++;
	return r;
}

void conntab_each(struct conntab *t, void (*fn)(struct conn_rec *, void *), void *arg)
{
	struct conn_rec *r = t->lru_tail, *prev;

	for (; r; r = prev) {
		prev = r->lru_prev;
		fn(r, arg);
	}
}

void conntab_free(struct conntab *t)
{
	while (t->lru_head)
		conntab_remove(t, t->lru_head);
	free(t->buckets);
	t->buckets = NULL;
}
