/* A small HTTP/1.x endpoint that answers GET on one path from the event
 * loop's poll(), never blocking it: non-blocking sockets, a deadline per
 * client and a cap on clients, so that no client (a slow one, an idle one,
 * one sending garbage, a thousand of them) can stall the loop. */
#ifndef ENDPOINT_H
#define ENDPOINT_H
#include <poll.h>
#include <stdint.h>
#include <stdio.h>

#define ENDPOINT_MAX_CLIENTS 64 /* at the cap, the oldest still reading goes */
#define ENDPOINT_POLLFDS     (ENDPOINT_MAX_CLIENTS + 1)

struct endpoint;

/* Writes the body of the answer to f; 0, or -1 for a 500. */
typedef int (*render_fn)(void *ctx, FILE *f);

/* "127.0.0.1:9464", answering GET path; NULL after a one-line message. */
struct endpoint *endpoint_open(const char *addr, const char *path, const char *content_type);
/* The descriptors to poll, into p (ENDPOINT_POLLFDS at most); how many. */
int endpoint_pollfds(const struct endpoint *e, struct pollfd *p);
/* After poll(): accepts, reads, answers and writes what is ready, and drops
 * the clients past their deadline. now_ms: CLOCK_MONOTONIC in ms. */
void endpoint_serve(struct endpoint *e, const struct pollfd *p, int n, uint64_t now_ms,
		    render_fn render, void *ctx);
void endpoint_close(struct endpoint *e);

#endif
