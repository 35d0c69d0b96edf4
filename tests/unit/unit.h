/* A minimal unit test harness: each TEST prints PASS or FAIL (first failed
 * CHECK) on a line of its own, which tests/run.py counts. */
#ifndef UNIT_H
#define UNIT_H
#include <stdio.h>

static const char *current_test;
static int current_failed, any_failed;

#define CHECK(cond, ...)                                                                         \
	do {                                                                                     \
		if (!(cond)) {                                                                   \
			printf("FAIL %s: %s:%d: %s: ", current_test, __FILE__, __LINE__, #cond); \
			printf(__VA_ARGS__);                                                     \
			printf("\n");                                                            \
			current_failed = any_failed = 1;                                         \
			return;                                                                  \
		}                                                                                \
	} while (0)

#define RUN(fn)                                   \
	do {                                      \
		current_test = #fn;               \
		current_failed = 0;               \
		fn();                             \
		if (!current_failed)              \
			printf("PASS %s\n", #fn); \
		fflush(stdout);                   \
	} while (0)

#endif
