/* Text and JSON-lines rendering of katrace's records. */
#ifndef OUTPUT_H
#define OUTPUT_H
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include "katrace.h"

struct output {
	FILE *f;
	bool json;
	bool unix_ts;		/* -T: unix seconds instead of HH:MM:SS.mmm */
	bool header_done;
	int64_t wall_offset_ns;	/* CLOCK_REALTIME - CLOCK_MONOTONIC */
};

const char *tcp_state_name(int state);
const char *closed_by_name(int closed_by);
const char *role_name(int role);
/* "ip:port", "[ip6]:port"; IPv4-mapped IPv6 prints as IPv4. */
void format_endpoint(const struct tuple *t, bool local, char *buf, size_t len);
/* Writes s as a JSON string, quotes included. */
void json_string(FILE *f, const char *s);

/* ms between two monotonic stamps, or a negative value when unknown. */
double span_ms(uint64_t from_ns, uint64_t to_ns);
/* When the connection last moved data (or was established). */
uint64_t conn_last_activity(const struct conn *c);

void output_close(struct output *o, const struct conn *c, uint64_t end_ns);

#endif
