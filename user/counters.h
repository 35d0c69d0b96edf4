/* What a run counts, one vocabulary from the BPF counter slots (enum
 * counter, katrace.h) to the summary, a capture's end record and the
 * metrics. Each part of katrace fills in what it counted. */
#ifndef COUNTERS_H
#define COUNTERS_H
#include <stdint.h>

struct run_counters {
	/* user space (the session) */
	uint64_t events;      /* records read */
	uint64_t bad_records; /* records that were not katrace events */
	uint64_t lost_requests;
	uint64_t user_evictions; /* the user-space table's LRU */
	/* the kernel (the tracer), a capture's end record when replayed */
	uint64_t dropped;	    /* CNT_DROPPED: the ring buffer was full */
	uint64_t table_full;	    /* CNT_TABLE_FULL: the kernel table refused a connection */
	uint64_t untracked_closes;  /* CNT_UNTRACKED_CLOSE */
	uint64_t unreadable_resets; /* CNT_UNREADABLE_RESET */
};

#endif
