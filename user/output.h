/* Text and JSON-lines rendering of katrace's records. */
#ifndef OUTPUT_H
#define OUTPUT_H
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include "katrace.h"
#include "conntab.h"

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
/* The same, or null when s is NULL or empty. */
void json_string_or_null(FILE *f, const char *s);

/* ms between two monotonic stamps, or a negative value when unknown. */
double span_ms(uint64_t from_ns, uint64_t to_ns);
/* When the connection last moved data (or was established). */
uint64_t conn_last_activity(const struct conn *c);
/* Start of the idle period before a close: the end of the last response on
 * an HTTP connection, else the last data in either direction. */
uint64_t conn_idle_since(const struct conn *c, const struct http_state *h);
/* When data last went the way responses go (by the connection's role). */
uint64_t response_way_ns(const struct conn *c, const struct http_state *h);
/* An HTTP connection that served at least one request. */
bool conn_served(const struct conn *c, const struct http_state *h);
/* Its last request has no response. */
bool conn_outstanding(const struct conn *c, const struct http_state *h);

enum lost_side {
	LOST_AT_SERVER,	/* traced on the backend: its kernel answered the request with RST */
	LOST_AT_CLIENT,	/* traced on the proxy: it wrote the request, got RST back */
};

struct lost {
	uint64_t ts_ns;			/* arrival (server side) or write (client side) */
	enum lost_side side;
	const struct conn *c;		/* NULL when no traced connection matched */
	struct tuple t;
	char request[HTTP_MAX_PATH + 24];
	double close_to_request_ms;	/* may be < 0 (see README); NAN: unknown */
	double idle_ms;			/* < 0: unknown */
	const char *reason;		/* sk_rst_reason name, NULL if unknown */
};

void output_close(struct output *o, const struct conn *c, const struct http_state *h,
		  uint64_t end_ns);
void output_lost(struct output *o, const struct lost *l);

struct analyzer;
struct run_counts {
	uint64_t events, lost_requests, dropped, not_tracked;
};
void output_summary(struct output *o, const struct analyzer *a, const struct run_counts *n,
		    uint64_t now_ns);

#endif
