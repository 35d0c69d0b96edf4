/* Prometheus text-format metrics: served on GET /metrics and written, for
 * node_exporter's textfile collector, to a file replaced atomically. */
#ifndef METRICS_H
#define METRICS_H
#include <stdint.h>
#include <stdio.h>

#include "counters.h"

struct session;

void metrics_render(FILE *f, const struct session *s, const struct run_counters *n);
/* "127.0.0.1:9464" -> a listening non-blocking socket, or -1 after a message. */
int metrics_listen(const char *addr);
/* Answers one pending connection on the listening socket, if any. */
void metrics_serve_one(int listen_fd, const struct session *s, const struct run_counters *n);
/* Writes PATH.tmp and renames it over PATH. 0 or -1. */
int metrics_write_file(const char *path, const struct session *s, const struct run_counters *n);

#endif
