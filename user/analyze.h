/* From finished connections and lost requests, per service: how long each
 * side lets a keep-alive connection idle before closing it, and the verdict. */
#ifndef ANALYZE_H
#define ANALYZE_H
#include <stdbool.h>
#include <stdint.h>
#include "conn.h"
#include "timeline.h"

#define MAX_SERVICES  64
#define MAX_SAMPLES   16384 /* idle times kept per side and service (reservoir) */
#define LOST_EXAMPLES 5

/* Upper bounds of the idle-at-close histogram, seconds. */
/* clang-format off */
#define IDLE_BUCKETS { 0.01, 0.05, 0.1, 0.25, 0.5, 1, 2, 5, 10, 30, 60, 120, 300, 600, 3600 }
/* clang-format on */
#define N_IDLE_BUCKETS 15

#define LOG2_SLOTS 32

struct idle_stats {
	uint64_t hist[N_IDLE_BUCKETS + 1]; /* every close of an HTTP connection; last: +Inf */
	double hist_sum_s;
	uint64_t n; /* idle closes seen (past MIN_IDLE_MS) */
	double min_ms, max_ms;
	double *samples; /* up to MAX_SAMPLES, a uniform sample past that */
	uint32_t nsamples;
	uint64_t log2_ms[LOG2_SLOTS]; /* idle closes by power of two of ms, as bcc's tools */
};

/* The densest group of close times: a side's effective timeout. */
struct cluster {
	bool found;
	double value_ms; /* median of the group */
	double width_ms; /* max - min within it */
	uint32_t count;
};

struct service {
	char name[72]; /* ":8080" (a local port) or "10.0.0.5:8080" (a peer) */
	bool local;    /* katrace watched the backend itself */
	char backend_comm[16], peer_comm[16];
	struct idle_stats backend, peer; /* idle closes made by each side */
	double max_reuse_gap_ms; /* the longest idle after which the peer reused a connection */
	uint64_t conns, lost;	 /* lost: failed requests of every cause */
	char lost_examples[LOST_EXAMPLES][HTTP_MAX_PATH + 24];
	struct causes {
		uint64_t lost[N_CAUSES];
		char examples[N_CAUSES][LOST_EXAMPLES][HTTP_MAX_PATH + 24];
		double waited_min_ms, waited_max_ms;	 /* proxy_timeout: how long it waited */
		double answered_min_ms, answered_max_ms; /* and when the backend answered */
		uint64_t answered;			 /* how many it answered too late */
		uint64_t refused;			 /* connection attempts refused */
		uint32_t exits;				 /* backend exits with the port in use */
		int last_exit_code;			 /* as wait(2) reports it */
		char exit_comm[TASK_COMM_LEN];
		uint32_t exit_pid;
		uint32_t down_windows;		   /* times the listener went down */
		uint64_t down_from_ns, down_to_ns; /* the first window (to: 0 if still down) */
		char first_window[200];		   /* it in words: who went, who came back */
		double down_ms;			   /* all windows together */
	} causes;
	struct timeline timeline; /* with analyzer.keep_timeline only */
};

enum verdict_kind { VERDICT_INSUFFICIENT = 0, VERDICT_OK, VERDICT_MISMATCH };

/* Percentiles of a side's idle closes, NAN without any. */
struct idle_pct {
	double p50_ms, p99_ms;
};

/* One cause of failed requests, or refused connections, with its evidence
 * and its fix, in words. */
struct finding {
	const char *cause; /* cause_name(), or "refused" */
	uint64_t requests; /* failed requests (refused: connection attempts) */
	char evidence[720];
	char fix[400];
};

#define MAX_FINDINGS (N_CAUSES + 1)

struct verdict {
	enum verdict_kind kind;
	struct finding findings[MAX_FINDINGS]; /* every cause but the race, which is kind */
	int nfindings;
	struct cluster backend, peer;
	struct idle_pct backend_pct, peer_pct; /* from the same sort */
	double margin_ms;		       /* backend - peer, when both are known */
	char why[640];			       /* the evidence, one sentence or two */
	char fix[640];			       /* what to change, in the software's own words */
};

struct analyzer {
	struct service svc[MAX_SERVICES];
	int n;
	uint64_t untracked;	/* connections past MAX_SERVICES services */
	double margin_ms;	/* --margin: how much the backend must outlast the peer */
	int64_t wall_offset_ns; /* CLOCK_REALTIME - CLOCK_MONOTONIC, for times in words */
	uint64_t rng;
	bool keep_timeline; /* for the HTML report */
};

void analyzer_init(struct analyzer *a, double margin_ms);
void analyzer_free(struct analyzer *a);
/* A finished connection (with its HTTP state, may be NULL). */
/* genuine: its close can be an idle-timeout sample (not done by an exiting
 * process, nor while its service's listener was down). */
void analyze_conn(struct analyzer *a, const struct conn *c, const struct http_state *h,
		  bool genuine);
/* A lost request on connection c (NULL if it matched none). */
void analyze_lost(struct analyzer *a, const struct lost *l);
void analyze_refused(struct analyzer *a, const struct refused *r);
/* The listener of local port went down at from_ns, and next (a process
 * listening again) at to_ns, or is still down at to_ns (next NULL). */
void analyze_listener_down(struct analyzer *a, uint16_t port, uint64_t from_ns, uint64_t to_ns,
			   const struct listen_entry *next);
/* A process that listened on local port exited. */
void analyze_exit(struct analyzer *a, uint16_t port, uint64_t ts_ns, uint32_t pid, const char *comm,
		  int exit_code);
struct cluster infer_timeout(const double *ms, uint32_t n);
double percentile(const double *sorted, uint32_t n, double p);
void analyze_verdict(const struct analyzer *a, const struct service *s, struct verdict *v);
/* One verdict per service, v[0] to v[a->n - 1]. */
void analyze_verdicts(const struct analyzer *a, struct verdict *v);
extern const double idle_buckets[N_IDLE_BUCKETS];
const char *verdict_name(enum verdict_kind k);
/* A monotonic time as local wall-clock time: "05:44:51.2" (digits 1) or
 * "05:44:51.234" (3). */
void analyze_clock(const struct analyzer *a, int digits, uint64_t mono_ns, char *buf, size_t len);

#endif
