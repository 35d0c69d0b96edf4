/* The HTML report: per service, a timeline of the run, the distribution of
 * idle time at close against the timeouts, the verdict and the fix. */
#ifndef HTML_H
#define HTML_H
#include <stdio.h>
#include "analyze.h"

/* source: what the run traced, in words. Returns -1 on a write error. The
 * analyzer must have kept its timeline (keep_timeline). */
int html_report(FILE *f, const struct analyzer *a, const char *source);
/* Text into HTML or XML, escaped (request lines come from the network);
 * control characters become '?'. */
void markup_text(FILE *f, const char *s);

#endif
