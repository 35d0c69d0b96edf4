/* The processes seen owning connections, told to the layer above once each
 * (and once more when one is first seen with a sealed TLS connection): the
 * TLS library probes follow them. Bounded: a set that starts afresh when
 * full, so a process may be told again. */
#ifndef OWNERS_H
#define OWNERS_H
#include <stdbool.h>
#include <stdint.h>
#include "katrace.h"

#define OWNER_SLOTS  4096 /* a power of two */
#define OWNERS_FRESH 64

struct owner_seen {
	uint32_t tgid;
	bool sealed; /* a TLS connection of its carried requests whose plaintext
			katrace did not see */
	char comm[TASK_COMM_LEN];
};

struct owners {
	uint32_t tgid[OWNER_SLOTS]; /* open addressing, 0 empty */
	bool sealed[OWNER_SLOTS];
	int n;
	struct owner_seen fresh[OWNERS_FRESH]; /* not taken yet */
	int nfresh;
};

void owners_see(struct owners *o, uint32_t tgid, const char *comm, bool sealed);
/* What was seen since the last call, up to max into out; how many. */
int owners_take(struct owners *o, struct owner_seen *out, int max);

#endif
