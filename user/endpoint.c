// SPDX-License-Identifier: GPL-2.0
#define _GNU_SOURCE
#include <errno.h>
#include <netdb.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>
#include "endpoint.h"

#define REQUEST_MS  1000 /* a scraper sends its request at once */
#define RESPONSE_MS 5000 /* and reads the answer as fast */
#define MAX_REQUEST 2048

struct client {
	int fd; /* -1: a free slot */
	bool writing;
	uint64_t accepted_ms, deadline_ms;
	size_t have;
	char req[MAX_REQUEST];
	char *out; /* the whole answer */
	size_t out_len, out_off;
};

struct endpoint {
	int fd;
	char path[64];
	const char *content_type;
	struct client c[ENDPOINT_MAX_CLIENTS];
};

static int listen_on(const char *addr)
{
	struct addrinfo hints = { .ai_socktype = SOCK_STREAM, .ai_flags = AI_PASSIVE }, *ai;
	const char *colon = strrchr(addr, ':');
	int fd, one = 1, err;
	char host[256];

	if (!colon || (size_t)(colon - addr) >= sizeof(host)) {
		fprintf(stderr, "katrace: --metrics-addr wants HOST:PORT, got '%s'\n", addr);
		return -1;
	}
	snprintf(host, sizeof(host), "%.*s", (int)(colon - addr), addr);
	err = getaddrinfo(host[0] ? host : NULL, colon + 1, &hints, &ai);
	if (err) {
		fprintf(stderr, "katrace: --metrics-addr %s: %s\n", addr, gai_strerror(err));
		return -1;
	}
	fd = socket(ai->ai_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	if (fd >= 0)
		setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
	if (fd < 0 || bind(fd, ai->ai_addr, ai->ai_addrlen) || listen(fd, SOMAXCONN)) {
		fprintf(stderr, "katrace: cannot listen on %s: %s\n", addr, strerror(errno));
		if (fd >= 0)
			close(fd);
		fd = -1;
	}
	freeaddrinfo(ai);
	return fd;
}

struct endpoint *endpoint_open(const char *addr, const char *path, const char *content_type)
{
	struct endpoint *e = calloc(1, sizeof(*e));
	int i;

	if (!e) {
		fprintf(stderr, "katrace: out of memory\n");
		return NULL;
	}
	e->fd = listen_on(addr);
	if (e->fd < 0) {
		free(e);
		return NULL;
	}
	snprintf(e->path, sizeof(e->path), "%s", path);
	e->content_type = content_type;
	for (i = 0; i < ENDPOINT_MAX_CLIENTS; i++)
		e->c[i].fd = -1;
	return e;
}

static void drop(struct client *c)
{
	close(c->fd);
	free(c->out);
	memset(c, 0, sizeof(*c));
	c->fd = -1;
}

int endpoint_pollfds(const struct endpoint *e, struct pollfd *p)
{
	int i, n = 0;

	p[n++] = (struct pollfd){ .fd = e->fd, .events = POLLIN };
	for (i = 0; i < ENDPOINT_MAX_CLIENTS; i++)
		if (e->c[i].fd >= 0)
			p[n++] = (struct pollfd){ .fd = e->c[i].fd,
						  .events = e->c[i].writing ? POLLOUT : POLLIN };
	return n;
}

/* Whether a is the better one to drop: one that has sent nothing yet goes
 * before one that has sent part of its request, the older first. */
static bool worse(const struct client *a, const struct client *b)
{
	if (!b)
		return true;
	if (!a->have != !b->have)
		return !a->have;
	return a->accepted_ms < b->accepted_ms;
}

/* A free slot, or that of the client to drop among those still reading. */
static struct client *slot(struct endpoint *e)
{
	struct client *victim = NULL;
	int i;

	for (i = 0; i < ENDPOINT_MAX_CLIENTS; i++) {
		if (e->c[i].fd < 0)
			return &e->c[i];
		if (!e->c[i].writing && worse(&e->c[i], victim))
			victim = &e->c[i];
	}
	if (victim)
		drop(victim);
	return victim;
}

static void read_request(struct endpoint *e, struct client *c, uint64_t now_ms, render_fn render,
			 void *ctx);
static void write_answer(struct client *c);

/* Every connection waiting: a scraper's request is usually there with it,
 * and read at once (answered, it can no longer be dropped for a newcomer). */
static void accept_all(struct endpoint *e, uint64_t now_ms, render_fn render, void *ctx)
{
	struct client *c;
	int fd;

	while ((fd = accept4(e->fd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC)) >= 0) {
		c = slot(e);
		if (!c) { /* every slot is writing an answer: this one waits its turn */
			close(fd);
			continue;
		}
		c->fd = fd;
		c->accepted_ms = now_ms;
		c->deadline_ms = now_ms + REQUEST_MS;
		read_request(e, c, now_ms, render, ctx);
		if (c->fd >= 0 && c->writing)
			write_answer(c);
	}
}

static void set_answer(struct client *c, const char *status, const char *type, const char *body,
		       size_t len)
{
	FILE *f = open_memstream(&c->out, &c->out_len);

	if (!f)
		return;
	fprintf(f,
		"HTTP/1.1 %s\r\nContent-Type: %s\r\nContent-Length: %zu\r\nConnection: close\r\n\r\n",
		status, type, len);
	fwrite(body, 1, len, f);
	fclose(f);
}

/* The request is in (or the buffer full): the answer, to be written. */
static void answer(struct endpoint *e, struct client *c, uint64_t now_ms, render_fn render,
		   void *ctx)
{
	char want[80], *body = NULL;
	size_t body_len = 0;
	bool ok;
	FILE *f;
	int n = snprintf(want, sizeof(want), "GET %s", e->path);

	c->req[c->have] = 0;
	c->writing = true;
	c->deadline_ms = now_ms + RESPONSE_MS;
	if (strncmp(c->req, want, n) || (c->req[n] != ' ' && c->req[n] != '?')) {
		char nf[96];
		int len = snprintf(nf, sizeof(nf), "katrace: GET %s", e->path);

		set_answer(c, "404 Not Found", "text/plain", nf, len);
		return;
	}
	f = open_memstream(&body, &body_len);
	ok = f && !render(ctx, f);
	if (f && fclose(f))
		ok = false;
	if (ok)
		set_answer(c, "200 OK", e->content_type, body, body_len);
	else
		set_answer(c, "500 Internal Server Error", "text/plain", "", 0);
	free(body);
}

static void read_request(struct endpoint *e, struct client *c, uint64_t now_ms, render_fn render,
			 void *ctx)
{
	ssize_t r = recv(c->fd, c->req + c->have, sizeof(c->req) - 1 - c->have, 0);

	if (r == 0 || (r < 0 && errno != EAGAIN && errno != EINTR)) {
		drop(c);
		return;
	}
	if (r > 0)
		c->have += r;
	if (memmem(c->req, c->have, "\r\n\r\n", 4) || c->have == sizeof(c->req) - 1)
		answer(e, c, now_ms, render, ctx);
}

static void write_answer(struct client *c)
{
	ssize_t w;

	if (!c->out) {
		drop(c);
		return;
	}
	w = send(c->fd, c->out + c->out_off, c->out_len - c->out_off, MSG_NOSIGNAL | MSG_DONTWAIT);
	if (w < 0 && (errno == EAGAIN || errno == EINTR))
		return;
	if (w <= 0 || (c->out_off += w) == c->out_len)
		drop(c);
}

static struct client *client_of(struct endpoint *e, int fd)
{
	int i;

	for (i = 0; i < ENDPOINT_MAX_CLIENTS; i++)
		if (e->c[i].fd == fd)
			return &e->c[i];
	return NULL;
}

void endpoint_serve(struct endpoint *e, const struct pollfd *p, int n, uint64_t now_ms,
		    render_fn render, void *ctx)
{
	int i;

	for (i = 1; i < n; i++) {
		struct client *c = p[i].revents ? client_of(e, p[i].fd) : NULL;

		if (!c)
			continue;
		if (!c->writing)
			read_request(e, c, now_ms, render, ctx);
		if (c->fd >= 0 && c->writing)
			write_answer(c);
	}
	if (p[0].revents & POLLIN)
		accept_all(e, now_ms, render, ctx);
	for (i = 0; i < ENDPOINT_MAX_CLIENTS; i++)
		if (e->c[i].fd >= 0 && now_ms >= e->c[i].deadline_ms)
			drop(&e->c[i]);
}

void endpoint_close(struct endpoint *e)
{
	int i;

	if (!e)
		return;
	for (i = 0; i < ENDPOINT_MAX_CLIENTS; i++)
		if (e->c[i].fd >= 0)
			drop(&e->c[i]);
	close(e->fd);
	free(e);
}
