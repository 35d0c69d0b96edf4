/* katrace check: a CI regression test that a service keeps idle keep-alive
 * connections open longer than its load balancer. */
#ifndef CHECK_CMD_H
#define CHECK_CMD_H

/* argv[0] is "check". Exit status: 0 pass, 1 fail, 2 could not check. */
int check_main(int argc, char **argv);
/* "60", "60s", "500ms", "1.5m": seconds, or -1. */
double parse_duration(const char *s);

#endif
