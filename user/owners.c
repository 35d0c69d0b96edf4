// SPDX-License-Identifier: GPL-2.0
#include <string.h>
#include "owners.h"

static int slot_of(struct owners *o, uint32_t tgid)
{
	unsigned int i = (tgid * 2654435761u) & (OWNER_SLOTS - 1);

	while (o->tgid[i] && o->tgid[i] != tgid)
		i = (i + 1) & (OWNER_SLOTS - 1);
	return i;
}

void owners_see(struct owners *o, uint32_t tgid, const char *comm, bool sealed)
{
	struct owner_seen *f;
	int i;

	if (!tgid)
		return;
	i = slot_of(o, tgid);
	if (o->tgid[i] && (o->sealed[i] || !sealed))
		return;
	if (o->nfresh == OWNERS_FRESH)
		return; /* told later, when seen again */
	if (!o->tgid[i]) {
		if (o->n == OWNER_SLOTS * 3 / 4) {
			memset(o->tgid, 0, sizeof(o->tgid));
			memset(o->sealed, 0, sizeof(o->sealed));
			o->n = 0;
			i = slot_of(o, tgid);
		}
		o->tgid[i] = tgid;
		o->n++;
	}
	o->sealed[i] = sealed;
	f = &o->fresh[o->nfresh++];
	f->tgid = tgid;
	f->sealed = sealed;
	memcpy(f->comm, comm, sizeof(f->comm));
}

int owners_take(struct owners *o, struct owner_seen *out, int max)
{
	int n = o->nfresh < max ? o->nfresh : max;

	memcpy(out, o->fresh, n * sizeof(*out));
	memmove(o->fresh, o->fresh + n, (o->nfresh - n) * sizeof(*out));
	o->nfresh -= n;
	return n;
}
