/* Text and JSON-lines rendering of katrace's records: a connection's close,
 * a lost request, the summary with the verdicts the analysis reached. */
#ifndef OUTPUT_H
#define OUTPUT_H
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include "analyze.h"
#include "conn.h"
#include "counters.h"

/* Where records go and how they look. */
struct output {
	FILE *f;
	bool json;
	bool unix_ts; /* -T: unix seconds instead of HH:MM:SS.mmm */
	bool header_done;
	int64_t wall_offset_ns; /* CLOCK_REALTIME - CLOCK_MONOTONIC */
};

/* Writes s as a JSON string, quotes included. */
void json_string(FILE *f, const char *s);
/* The same, or null when s is NULL or empty. */
void json_string_or_null(FILE *f, const char *s);

void output_close_record(struct output *o, const struct conn *c, const struct http_state *h,
			 uint64_t end_ns);
void output_lost_record(struct output *o, const struct lost *l);
void output_refused_record(struct output *o, const struct refused *r);
void output_listener_record(struct output *o, const struct listener_change *l);
void output_exit_record(struct output *o, const struct owner_exit *x);
/* "exit code 1", "SIGKILL" */
void exit_status_text(int exit_code, char *buf, size_t len);
/* Per service of a, with its verdict v[i]; n: the run's counters. */
void output_summary(struct output *o, const struct analyzer *a, const struct verdict *v,
		    const struct run_counters *n, uint64_t now_ns);

#endif
