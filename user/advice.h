/* What katrace knows of the software at each end: the setting that holds its
 * idle keep-alive timeout, and the well-known load balancer defaults. One
 * table, shared by the verdict and by `katrace check`. */
#ifndef ADVICE_H
#define ADVICE_H
#include <stddef.h>

struct software {
	const char *comm; /* process name that identifies it */
	const char *name;
	const char *setting;  /* what holds its idle timeout as a backend */
	int unit_ms;	      /* the setting is in ms (else seconds) */
	double extra_s;	      /* it closes this long after the configured value */
	const char *note;     /* goes with the setting, or NULL */
	const char *as_proxy; /* what to lower when it is the proxy; NULL: not a proxy */
};

struct lb_default {
	const char *preset; /* --lb name */
	const char *name;
	double idle_s;
};

const struct software *software_by_comm(const char *comm);
/* "server.keepAliveTimeout = 6000 (ms) (note)": sw's setting for keeping
 * idle connections want_s seconds. Returns what snprintf returns. */
int software_setting(const struct software *sw, double want_s, char *out, size_t len);
const struct lb_default *lb_by_preset(const char *preset);
extern const struct lb_default lb_defaults[];
extern const int n_lb_defaults;

#endif
