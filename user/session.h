/* One run's state: takes raw event records (live or replayed), joins them
 * into connections with their HTTP requests, names the requests lost to a
 * close race, feeds the analysis and hands finished records to the output.
 * Opaque: what the commands above it need is in the functions below. */
#ifndef SESSION_H
#define SESSION_H
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include "analyze.h"
#include "capture.h"
#include "conn.h"
#include "counters.h"
#include "output.h"
#include "owners.h"

struct session_opts {
	struct output out;  /* where records go, and how */
	uint32_t max_conns; /* connections joined at once */
	double margin_ms;   /* --margin */
	bool full_path;	    /* keep query strings */
	bool pid_filter;    /* resets that match no traced connection are dropped */
	bool verbose;	    /* every reset, on stderr */
	bool timeline;	    /* keep what happened when, for the HTML report */
};

struct session;

/* Allocates; NULL when out of memory. */
struct session *session_new(const struct session_opts *o);
/* The kernel's enum sk_rst_reason names, by value. */
void session_set_reset_reasons(struct session *s, const char (*names)[RST_REASON_LEN]);
/* What a capture's header says of the live run (its clock, filter and
 * reset-reason names): applied before a replay's first record. */
void session_use_header(struct session *s, const struct capture_header *h);
/* -w: record every event into cap from now on (NULL: stop). */
void session_record_to(struct session *s, struct capture *cap);
/* Records go to f from now on (the log reopened). */
void session_set_log(struct session *s, FILE *f);
FILE *session_log(const struct session *s);

/* ring_buffer sample callback shape; always returns 0 so polling goes on
 * (bad records are counted). */
int session_event(void *ctx, const void *data, size_t len);
/* Follow process tgid (a traced one, or the next to listen on a followed
 * port): its listeners and the ports they serve. Recorded in a capture. */
void session_follow(struct session *s, uint32_t tgid);
/* The processes followed so far (up to max into out); how many. */
int session_followed(const struct session *s, uint32_t *out, int max);
/* The owners of connections seen since the last call (each once, and once
 * more when first seen sealed: owners.h), up to max into out; how many. */
int session_take_owners(struct session *s, struct owner_seen *out, int max);
/* tgid listened on a port katrace follows. */
bool session_held_listener(const struct session *s, uint32_t tgid);
/* The live run's clock went on with no event: what was held for the other
 * end of a connection is due. Recorded in a capture when it emits. */
void session_tick(struct session *s, uint64_t now_ns);
/* End of run: report connections whose close began but whose socket the
 * kernel has not freed yet (a CLOSE_WAIT the application never closed). */
void session_finish(struct session *s);

/* Fills the session's part of c: events, bad records, lost requests,
 * user-space evictions. */
void session_counters(const struct session *s, struct run_counters *c);
/* Connections open (or closing) in the join's table now. */
uint32_t session_open_conns(const struct session *s);
/* The newest kernel stamp seen. */
uint64_t session_last_ts(const struct session *s);
const struct analyzer *session_analysis(const struct session *s);
/* One verdict per service of session_analysis(), v[0..n-1]. */
void session_verdicts(const struct session *s, struct verdict *v);
/* Connections that ended, by enum conn_role and enum closed_by. */
uint64_t session_closes(const struct session *s, int role, int closed_by);
/* Each connection the session knows, finished (the most recent ones) or
 * still open. */
typedef void (*conn_fn)(const struct conn *c, const struct http_state *h, void *arg);
void session_each_conn(struct session *s, conn_fn fn, void *arg);

/* Per service: idle closes of each side, lost requests, verdict and fix;
 * n: the run's counters, from session_counters() and the tracer (or a
 * capture's end record). */
void session_summary(struct session *s, const struct run_counters *n);
void session_free(struct session *s);

#endif
