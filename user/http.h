/* HTTP/1.x start lines, from the first bytes of a send/receive call. Only
 * the request line (method, path) and the status code are kept: never
 * headers or bodies. */
#ifndef HTTP_H
#define HTTP_H
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define HTTP_MAX_PATH 256

enum http_kind { HTTP_NONE = 0, HTTP_REQUEST, HTTP_RESPONSE };

struct http_msg {
	enum http_kind kind;
	char method[12];
	char path[HTTP_MAX_PATH + 8]; /* room for the "?…" that replaces a query */
	int status;
};

/* Parses the start line at buf. Query strings become "?…" unless full_path.
 * *used is set to the offset just past this message as far as it can be
 * told from these bytes (start line, headers and a Content-Length body), or
 * 0 when the message goes on past them. Returns the kind, HTTP_NONE for
 * bytes that are not an HTTP/1.x start line. */
enum http_kind http_parse(const uint8_t *buf, size_t len, bool full_path, struct http_msg *m,
			  size_t *used);

/* Parses the message at *buf and steps past it (to the end of the bytes
 * when they do not show where it ends). false when no HTTP is left. */
bool http_next(const uint8_t **buf, size_t *len, bool full_path, struct http_msg *m);

/* "METHOD /path" */
void http_request_line(const struct http_msg *m, char *out, size_t outlen);

#endif
