/* SPDX-License-Identifier: GPL-2.0 */
/*
 * The HTTP/1.x request methods katrace recognizes, once for bpf/ and user/:
 * each with its first four bytes as a little-endian word, which is what the
 * BPF programs compare (a method shorter than four is followed by its
 * space). X(name, word) is expanded by each user of the list.
 */
#ifndef HTTP_METHODS_H
#define HTTP_METHODS_H

/* clang-format off */
#define HTTP_METHODS(X)			\
	X("GET",     0x20544547)	/* "GET " */	\
	X("POST",    0x54534f50)	/* "POST" */	\
	X("PUT",     0x20545550)	/* "PUT " */	\
	X("HEAD",    0x44414548)	/* "HEAD" */	\
	X("DELETE",  0x454c4544)	/* "DELE" */	\
	X("OPTIONS", 0x4954504f)	/* "OPTI" */	\
	X("PATCH",   0x43544150)	/* "PATC" */	\
	X("CONNECT", 0x4e4e4f43)	/* "CONN" */	\
	X("TRACE",   0x43415254)	/* "TRAC" */
/* clang-format on */

/* The first four bytes of a status line, as the same kind of word. */
#define HEAD_HTTP 0x50545448 /* "HTTP" */

#endif /* HTTP_METHODS_H */
