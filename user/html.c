// SPDX-License-Identifier: GPL-2.0
/* The incident as one self-contained HTML page: inline SVG and CSS, no
 * script, nothing fetched (its Content-Security-Policy forbids it). */
#include <math.h>
#include <stdio.h>
#include <string.h>
#include <time.h>
#include "advice.h"
#include "html.h"

#define W		960 /* every picture's width, px */
#define LEFT		64  /* room for the y axis' labels */
#define RIGHT		24
#define PLOT_W		(W - LEFT - RIGHT)
#define BINS_PER_DECADE 20
#define MAX_BINS	200

static const char style[] =
	"body{font:14px/1.45 system-ui,sans-serif;margin:24px auto;max-width:1000px;color:#222}"
	"h1{font-size:22px}h2{font-size:18px;border-top:1px solid #ccc;padding-top:16px}"
	"h3{font-size:15px;margin:18px 0 4px}.meta,.note{color:#666}"
	".verdict{padding:10px 14px;border-left:6px solid #999;background:#f6f6f6}"
	".verdict.MISMATCH{border-color:#c62828;background:#fdecea}"
	".verdict.OK{border-color:#2e7d32;background:#edf7ed}"
	".kind{font-weight:700}table{border-collapse:collapse;margin-top:6px}"
	"td,th{border-bottom:1px solid #ddd;padding:3px 10px 3px 0;text-align:left;"
	"vertical-align:top}td.request{font-family:ui-monospace,monospace}"
	"svg{display:block;margin-top:4px}svg text{font:11px system-ui,sans-serif}";

void markup_text(FILE *f, const char *s)
{
	for (; *s; s++) {
		switch (*s) {
		case '&':
			fputs("&amp;", f);
			break;
		case '<':
			fputs("&lt;", f);
			break;
		case '>':
			fputs("&gt;", f);
			break;
		case '"':
			fputs("&quot;", f);
			break;
		case '\'':
			fputs("&#39;", f);
			break;
		default:
			fputc((unsigned char)*s < 0x20 ? '?' : *s, f);
		}
	}
}

/* "1.2 s", "350 ms" */
static void duration(double ms, char *buf, size_t len)
{
	if (ms >= 1000)
		snprintf(buf, len, "%.*f s", ms >= 10000 ? 0 : ms >= 2000 ? 1 : 2, ms / 1000);
	else
		snprintf(buf, len, "%.0f ms", ms);
}

static bool worth_a_section(const struct service *s)
{
	return s->backend.n || s->peer.n || s->lost || s->causes.refused || s->causes.exits ||
	       s->causes.down_windows;
}

/* ---- the timeline: time across, idle at close up ---- */

struct axes {
	uint64_t t0, t1; /* monotonic ns */
	double ymax_ms;
	int top, h; /* the plot's band, px */
};

static double x_of(const struct axes *ax, uint64_t ts)
{
	return LEFT + PLOT_W * ((double)(ts - ax->t0) / (double)(ax->t1 - ax->t0));
}

static double y_of(const struct axes *ax, double ms)
{
	return ax->top + ax->h - ax->h * fmin(ms, ax->ymax_ms) / ax->ymax_ms;
}

static struct axes timeline_axes(const struct timeline *t)
{
	struct axes ax = { .t0 = UINT64_MAX, .ymax_ms = 0, .top = 34, .h = 220 };
	uint32_t i;

	for (i = 0; i < t->ncloses; i++) {
		ax.t0 = t->closes[i].ts_ns < ax.t0 ? t->closes[i].ts_ns : ax.t0;
		ax.t1 = t->closes[i].ts_ns > ax.t1 ? t->closes[i].ts_ns : ax.t1;
		ax.ymax_ms = fmax(ax.ymax_ms, t->closes[i].idle_ms);
	}
	for (i = 0; i < t->nevents; i++) {
		const struct event_mark *m = &t->events[i];

		ax.t0 = m->ts_ns < ax.t0 ? m->ts_ns : ax.t0;
		ax.t1 = m->ts_ns > ax.t1 ? m->ts_ns : ax.t1;
		ax.t1 = m->end_ns > ax.t1 ? m->end_ns : ax.t1;
	}
	if (ax.t0 == UINT64_MAX)
		ax.t0 = ax.t1 = 0;
	/* a little room either side, and at least a second */
	ax.t0 = ax.t0 > 500000000ULL ? ax.t0 - 500000000ULL : 0;
	ax.t1 += 500000000ULL;
	ax.ymax_ms = ax.ymax_ms > 0 ? ax.ymax_ms * 1.15 : 1000;
	return ax;
}

static void time_ticks(FILE *f, const struct analyzer *a, const struct axes *ax)
{
	int bottom = ax->top + ax->h, k;
	char label[24], d[24];

	fprintf(f, "<line x1='%d' y1='%d' x2='%d' y2='%d' stroke='#444'/>", LEFT, bottom, W - RIGHT,
		bottom);
	fprintf(f, "<line x1='%d' y1='%d' x2='%d' y2='%d' stroke='#444'/>", LEFT, ax->top, LEFT,
		bottom);
	for (k = 0; k <= 5; k++) {
		uint64_t ts = ax->t0 + (ax->t1 - ax->t0) / 5 * k;
		double x = x_of(ax, ts);

		analyze_clock(a, 3, ts, label, sizeof(label));
		label[8] = 0; /* whole seconds on the axis */
		fprintf(f, "<line x1='%.1f' y1='%d' x2='%.1f' y2='%d' stroke='#444'/>", x, bottom,
			x, bottom + 4);
		fprintf(f, "<text x='%.1f' y='%d' text-anchor='middle'>%s</text>", x, bottom + 16,
			label);
	}
	for (k = 0; k <= 4; k++) {
		double ms = ax->ymax_ms / 4 * k, y = y_of(ax, ms);

		duration(ms, d, sizeof(d));
		fprintf(f, "<text x='%d' y='%.1f' text-anchor='end'>%s</text>", LEFT - 6, y + 4, d);
		fprintf(f, "<line x1='%d' y1='%.1f' x2='%d' y2='%.1f' stroke='#eee'/>", LEFT + 1, y,
			W - RIGHT, y);
	}
	fprintf(f, "<text x='%d' y='%d'>idle at close</text>", 4, ax->top - 8);
}

static void legend(FILE *f, int x, int y, const char *color, const char *what)
{
	fprintf(f, "<rect x='%d' y='%d' width='10' height='10' fill='%s'/>", x, y - 9, color);
	fprintf(f, "<text x='%d' y='%d'>%s</text>", x + 14, y, what);
}

static void timeline_closes(FILE *f, const struct axes *ax, const struct timeline *t)
{
	char d[24];
	uint32_t i;

	for (i = 0; i < t->ncloses; i++) {
		const struct close_mark *c = &t->closes[i];

		duration(c->idle_ms, d, sizeof(d));
		fprintf(f,
			"<circle class='close %s' cx='%.1f' cy='%.1f' r='2.5' fill='%s' "
			"fill-opacity='0.6'><title>%s closed it after %s idle</title></circle>",
			c->by_backend ? "backend" : "peer", x_of(ax, c->ts_ns),
			y_of(ax, c->idle_ms), c->by_backend ? "#1565c0" : "#ef6c00",
			c->by_backend ? "the backend" : "the peer", d);
	}
}

/* A lost request: a red line across the plot, with its line in a tooltip. */
static void timeline_lost(FILE *f, const struct axes *ax, const struct event_mark *m)
{
	double x = x_of(ax, m->ts_ns);

	fprintf(f,
		"<g class='lost-mark'><line x1='%.1f' y1='%d' x2='%.1f' y2='%d' stroke='#c62828'/>",
		x, ax->top, x, ax->top + ax->h);
	fprintf(f, "<text x='%.1f' y='%d' fill='#c62828' text-anchor='middle'>&#215;</text><title>",
		x, ax->top - 2);
	markup_text(f, m->what);
	fprintf(f, " (%s)</title></g>", cause_name(m->cause));
}

/* The request lines along the lost requests' lines: those closer than a
 * label's height share one ("+3 more"). */
static void timeline_lost_labels(FILE *f, const struct axes *ax, const struct timeline *t)
{
	const struct event_mark *first = NULL;
	double first_x = 0;
	uint32_t i, more = 0;

	for (i = 0; i <= t->nevents; i++) {
		const struct event_mark *m = i < t->nevents ? &t->events[i] : NULL;
		double x = m ? x_of(ax, m->ts_ns) : 1e9;

		if (m && m->kind != MARK_LOST)
			continue;
		if (first && fabs(x - first_x) <= 14) {
			more++;
			continue;
		}
		if (first) {
			fprintf(f,
				"<text class='lost-label' transform='translate(%.1f %d) rotate(-90)' "
				"fill='#c62828' font-size='10'>",
				first_x + 3, ax->top + ax->h - 4);
			markup_text(f, first->what);
			if (more)
				fprintf(f, " (+%u more)", more);
			fputs("</text>", f);
		}
		first = m;
		first_x = x;
		more = 0;
	}
}

static void timeline_event_mark(FILE *f, const struct axes *ax, const struct event_mark *m)
{
	double x = x_of(ax, m->ts_ns);
	int bottom = ax->top + ax->h;

	if (m->kind == MARK_DOWN) {
		double x1 = x_of(ax, m->end_ns ? m->end_ns : ax->t1);

		fprintf(f,
			"<rect class='down' x='%.1f' y='%d' width='%.1f' height='%d' fill='#9e9e9e' "
			"fill-opacity='0.3'><title>listener down</title></rect>",
			x, ax->top, fmax(x1 - x, 1), ax->h);
	} else if (m->kind == MARK_EXIT) {
		fprintf(f,
			"<g class='exit'><line x1='%.1f' y1='%d' x2='%.1f' y2='%d' stroke='#000' "
			"stroke-dasharray='4 3'/><text x='%.1f' y='%d'>",
			x, ax->top, x, bottom, x + 3, ax->top + 12);
		markup_text(f, m->what);
		fputs("</text></g>", f);
	} else if (m->kind == MARK_REFUSED) {
		fprintf(f,
			"<line class='refused' x1='%.1f' y1='%d' x2='%.1f' y2='%d' stroke='#6a1b9a' "
			"stroke-width='2'><title>connection refused</title></line>",
			x, bottom - 10, x, bottom);
	}
}

static void timeline_svg(FILE *f, const struct analyzer *a, const struct service *s)
{
	const struct timeline *t = &s->timeline;
	struct axes ax = timeline_axes(t);
	uint32_t i;

	fprintf(f, "<svg class='timeline' width='%d' height='%d' viewBox='0 0 %d %d'>", W,
		ax.top + ax.h + 24, W, ax.top + ax.h + 24);
	time_ticks(f, a, &ax);
	legend(f, LEFT + 120, 14, "#1565c0", "closed by the backend");
	legend(f, LEFT + 290, 14, "#ef6c00", "closed by the peer");
	legend(f, LEFT + 440, 14, "#c62828", "failed request");
	legend(f, LEFT + 570, 14, "#9e9e9e", "listener down");
	legend(f, LEFT + 690, 14, "#6a1b9a", "refused");
	for (i = 0; i < t->nevents; i++)
		if (t->events[i].kind == MARK_DOWN)
			timeline_event_mark(f, &ax, &t->events[i]);
	timeline_closes(f, &ax, t);
	for (i = 0; i < t->nevents; i++) {
		if (t->events[i].kind == MARK_LOST)
			timeline_lost(f, &ax, &t->events[i]);
		else if (t->events[i].kind != MARK_DOWN)
			timeline_event_mark(f, &ax, &t->events[i]);
	}
	timeline_lost_labels(f, &ax, t);
	fputs("</svg>\n", f);
	if (t->closes_seen > t->ncloses)
		fprintf(f, "<p class='note'>%u of %llu closes drawn, a uniform sample.</p>\n",
			t->ncloses, (unsigned long long)t->closes_seen);
}

/* ---- the distribution of idle time at close, log time across ---- */

struct log_axis {
	double lo_ms, decades;
};

static double lx_of(const struct log_axis *la, double ms)
{
	return LEFT + PLOT_W * (log10(fmax(ms, la->lo_ms)) - log10(la->lo_ms)) / la->decades;
}

static void bin_counts(const struct idle_stats *st, const struct log_axis *la, uint32_t *bins,
		       int nbins)
{
	uint32_t i;

	for (i = 0; i < st->nsamples; i++) {
		int b = (int)((log10(st->samples[i]) - log10(la->lo_ms)) * BINS_PER_DECADE);

		if (b >= 0 && b < nbins)
			bins[b]++;
	}
}

static void idle_bars(FILE *f, const struct log_axis *la, const uint32_t *bins, int nbins,
		      uint32_t most, bool backend, int top, int h)
{
	double bin_w = (double)PLOT_W / (la->decades * BINS_PER_DECADE);
	int b;

	for (b = 0; b < nbins; b++) {
		double bh = most ? (double)h * bins[b] / most : 0;

		if (!bins[b])
			continue;
		fprintf(f,
			"<rect class='bar %s' x='%.1f' y='%.1f' width='%.1f' height='%.1f' "
			"fill='%s'><title>%u closes by the %s</title></rect>",
			backend ? "backend" : "peer", LEFT + b * bin_w + (backend ? 0 : bin_w / 2),
			top + h - bh, bin_w / 2, bh, backend ? "#1565c0" : "#ef6c00", bins[b],
			backend ? "backend" : "peer");
	}
}

/* A vertical line at a timeout, labelled; row staggers the labels. */
static void timeout_line(FILE *f, const struct log_axis *la, double ms, const char *color,
			 const char *dash, const char *label, int row, int top, int h)
{
	double x = lx_of(la, ms);

	fprintf(f,
		"<g class='timeout'><line x1='%.1f' y1='%d' x2='%.1f' y2='%d' stroke='%s' "
		"stroke-dasharray='%s'/><text x='%.1f' y='%d' fill='%s'>",
		x, top, x, top + h, color, dash, x + 3, top + 10 + row * 12, color);
	markup_text(f, label);
	fputs("</text></g>", f);
}

/* The load balancers' defaults, one line per value; labels staggered in
 * the order of their values, so that neighbours never share a row. */
static void lb_lines(FILE *f, const struct log_axis *la, int top, int h)
{
	double drawn = 0, next;
	int i, row = 0;

	for (;; drawn = next) {
		char label[160], d[24];
		size_t n = 0;

		next = INFINITY;
		for (i = 0; i < n_lb_defaults; i++)
			if (lb_defaults[i].idle_s > drawn && lb_defaults[i].idle_s < next)
				next = lb_defaults[i].idle_s;
		if (isinf(next))
			return;
		for (i = 0; i < n_lb_defaults; i++)
			if (lb_defaults[i].idle_s == next && n < sizeof(label))
				n += snprintf(label + n, sizeof(label) - n, "%s%s", n ? ", " : "",
					      lb_defaults[i].preset);
		duration(next * 1000, d, sizeof(d));
		if (n < sizeof(label))
			snprintf(label + n, sizeof(label) - n, " %s", d);
		timeout_line(f, la, next * 1000, "#757575", "2 3", label, 3 + row++ % 3, top, h);
	}
}

static void log_ticks(FILE *f, const struct log_axis *la, int top, int h)
{
	int k;
	char d[24];

	fprintf(f, "<line x1='%d' y1='%d' x2='%d' y2='%d' stroke='#444'/>", LEFT, top + h,
		W - RIGHT, top + h);
	for (k = 0; k <= (int)la->decades; k++) {
		double ms = la->lo_ms * pow(10, k), x = lx_of(la, ms);

		duration(ms, d, sizeof(d));
		fprintf(f, "<line x1='%.1f' y1='%d' x2='%.1f' y2='%d' stroke='#444'/>", x, top + h,
			x, top + h + 4);
		fprintf(f, "<text x='%.1f' y='%d' text-anchor='middle'>%s</text>", x, top + h + 16,
			d);
	}
}

static void idle_svg(FILE *f, const struct service *s, const struct verdict *v)
{
	struct log_axis la = { .lo_ms = 100 };
	static uint32_t back[MAX_BINS], peer[MAX_BINS];
	int nbins, b, top = 56, h = 160;
	double hi_ms = 3600e3;
	uint32_t most = 0;
	char label[64], d[24];

	if (s->backend.n && s->backend.min_ms < la.lo_ms)
		la.lo_ms = pow(10, floor(log10(fmax(s->backend.min_ms, 1))));
	if (s->peer.n && s->peer.min_ms < la.lo_ms)
		la.lo_ms = pow(10, floor(log10(fmax(s->peer.min_ms, 1))));
	hi_ms = fmax(hi_ms, fmax(s->backend.max_ms, s->peer.max_ms));
	la.decades = ceil(log10(hi_ms * 1.01) - log10(la.lo_ms));
	nbins = (int)fmin(la.decades * BINS_PER_DECADE, MAX_BINS);
	memset(back, 0, sizeof(back));
	memset(peer, 0, sizeof(peer));
	bin_counts(&s->backend, &la, back, nbins);
	bin_counts(&s->peer, &la, peer, nbins);
	for (b = 0; b < nbins; b++)
		most = back[b] > most ? back[b] : peer[b] > most ? peer[b] : most;
	fprintf(f, "<svg class='idle' width='%d' height='%d' viewBox='0 0 %d %d'>", W, top + h + 24,
		W, top + h + 24);
	log_ticks(f, &la, top, h);
	fprintf(f,
		"<text x='4' y='%d'>closes</text><text x='%d' y='%d' text-anchor='end'>%u</text>",
		top - 4, LEFT - 6, top + 4, most);
	idle_bars(f, &la, back, nbins, most, true, top, h);
	idle_bars(f, &la, peer, nbins, most, false, top, h);
	lb_lines(f, &la, top - 50, h + 50);
	if (v->backend.found) {
		duration(v->backend.value_ms, d, sizeof(d));
		snprintf(label, sizeof(label), "backend closes at %s", d);
		timeout_line(f, &la, v->backend.value_ms, "#1565c0", "6 3", label, 0, top - 50,
			     h + 50);
	}
	if (v->peer.found) {
		duration(v->peer.value_ms, d, sizeof(d));
		snprintf(label, sizeof(label), "peer closes at %s", d);
		timeout_line(f, &la, v->peer.value_ms, "#ef6c00", "6 3", label, 1, top - 50,
			     h + 50);
	}
	fputs("</svg>\n", f);
}

/* ---- words ---- */

static void verdict_block(FILE *f, const struct verdict *v)
{
	int i;

	fprintf(f, "<div class='verdict %s'><span class='kind'>",
		v->kind == VERDICT_OK	    ? "OK" :
		v->kind == VERDICT_MISMATCH ? "MISMATCH" :
					      "INSUFFICIENT");
	markup_text(f, verdict_name(v->kind));
	fputs("</span><p class='why'>", f);
	markup_text(f, v->why);
	fputs("</p>", f);
	if (v->fix[0]) {
		fputs("<p class='fix'><b>Fix:</b> ", f);
		markup_text(f, v->fix);
		fputs("</p>", f);
	}
	fputs("</div>\n", f);
	for (i = 0; i < v->nfindings; i++) {
		fprintf(f, "<div class='verdict finding' data-cause='%s'><span class='kind'>",
			v->findings[i].cause);
		markup_text(f, v->findings[i].cause);
		fprintf(f, ": %llu</span><p>", (unsigned long long)v->findings[i].requests);
		markup_text(f, v->findings[i].evidence);
		fputs("</p><p class='fix'><b>Fix:</b> ", f);
		markup_text(f, v->findings[i].fix);
		fputs("</p></div>\n", f);
	}
}

static void lost_table(FILE *f, const struct analyzer *a, const struct timeline *t)
{
	char when[24], d[24];
	uint32_t i, shown = 0;

	for (i = 0; i < t->nevents; i++) {
		const struct event_mark *m = &t->events[i];

		if (m->kind != MARK_LOST)
			continue;
		if (!shown++)
			fputs("<h3>Failed requests</h3><table class='lost'><tr><th>time</th>"
			      "<th>request</th><th>cause</th><th>idle</th><th>reset reason</th></tr>\n",
			      f);
		analyze_clock(a, 3, m->ts_ns, when, sizeof(when));
		if (m->idle_ms >= 0)
			duration(m->idle_ms, d, sizeof(d));
		fprintf(f, "<tr class='lost'><td>%s</td><td class='request'>", when);
		markup_text(f, m->what);
		fprintf(f, "</td><td class='cause'>%s</td><td>%s</td><td>%s</td></tr>\n",
			cause_name(m->cause), m->idle_ms >= 0 ? d : "", m->reason ? m->reason : "");
	}
	if (shown)
		fputs("</table>\n", f);
	if (t->events_seen > t->nevents)
		fprintf(f, "<p class='note'>The first %u events are drawn; %llu in all.</p>\n",
			t->nevents, (unsigned long long)t->events_seen);
}

static void service_section(FILE *f, const struct analyzer *a, const struct service *s)
{
	struct verdict v;

	analyze_verdict(a, s, &v);
	fputs("<section class='service' data-service='", f);
	markup_text(f, s->name);
	fprintf(f, "' data-verdict='%s'><h2>", verdict_name(v.kind));
	markup_text(f, s->local ? "Service " : "Backend ");
	markup_text(f, s->name);
	fputs(" <span class='meta'>(backend: ", f);
	markup_text(f, s->backend_comm[0] ? s->backend_comm : "not on this host");
	fputs(", peer: ", f);
	markup_text(f, s->peer_comm[0] ? s->peer_comm : "not on this host");
	fputs(")</span></h2>\n", f);
	verdict_block(f, &v);
	fputs("<h3>Timeline</h3>\n", f);
	timeline_svg(f, a, s);
	fprintf(f,
		"<h3>Idle time at close</h3><p class='note'>%llu closes by the backend, %llu by the "
		"peer; dashed: the timeouts katrace inferred; dotted: load balancers' defaults."
		"</p>\n",
		(unsigned long long)s->backend.n, (unsigned long long)s->peer.n);
	idle_svg(f, s, &v);
	lost_table(f, a, &s->timeline);
	fputs("</section>\n", f);
}

int html_report(FILE *f, const struct analyzer *a, const char *source)
{
	int i, shown = 0;

	fputs("<!DOCTYPE html>\n<html lang='en'><head><meta charset='utf-8'>\n"
	      "<meta http-equiv='Content-Security-Policy' content=\"default-src 'none'; "
	      "style-src 'unsafe-inline'\">\n<title>katrace report</title>\n<style>",
	      f);
	fputs(style, f);
	fputs("</style></head><body>\n<h1>katrace report</h1>\n<p class='meta'>", f);
	markup_text(f, source);
	fputs("</p>\n", f);
	for (i = 0; i < a->n; i++) {
		if (!worth_a_section(&a->svc[i]))
			continue;
		service_section(f, a, &a->svc[i]);
		shown++;
	}
	if (!shown)
		fputs("<p class='none'>No HTTP keep-alive connection closed idle, and no request "
		      "failed.</p>\n",
		      f);
	fputs("</body></html>\n", f);
	return ferror(f) ? -1 : 0;
}
