// SPDX-License-Identifier: GPL-2.0
#include <errno.h>
#include <stdlib.h>
#include "args.h"

long parse_num(const char *arg, long min, long max, const char *what, struct argp_state *st)
{
	char *end;
	long v;

	errno = 0;
	v = strtol(arg, &end, 10);
	if (errno || end == arg || *end || v < min || v > max)
		argp_error(st, "invalid %s: '%s'", what, arg);
	return v;
}
