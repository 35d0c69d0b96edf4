/* Prometheus text-format metrics: rendered for GET /metrics (user/endpoint.c
 * serves it) and written, for node_exporter's textfile collector, to a
 * file replaced atomically. */
#ifndef METRICS_H
#define METRICS_H
#include <stdint.h>
#include <stdio.h>

#include "counters.h"

struct session;

void metrics_render(FILE *f, const struct session *s, const struct run_counters *n);
/* Writes PATH.tmp and renames it over PATH. 0 or -1. */
int metrics_write_file(const char *path, const struct session *s, const struct run_counters *n);

#endif
