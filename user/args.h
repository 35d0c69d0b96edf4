/* Command-line values shared by katrace and katrace check. */
#ifndef ARGS_H
#define ARGS_H
#include <argp.h>

/* A whole decimal number in [min, max], else argp's one-line error naming
 * what (it exits). */
long parse_num(const char *arg, long min, long max, const char *what, struct argp_state *st);

#endif
