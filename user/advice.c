// SPDX-License-Identifier: GPL-2.0
#include <stdio.h>
#include <string.h>
#include "advice.h"

static const struct software table[] = {
	/* nodejs.org/api/http.html#serverkeepalivetimeout (default 5000 ms);
	 * the +1 s is measured: Node 20 closes at keepAliveTimeout + ~1000 ms */
	{ "node", "Node.js", "server.keepAliveTimeout", 1, 1.0,
	  "keep server.headersTimeout above it; Node closes about 1 s after its setting", NULL },
	/* docs.gunicorn.org/en/stable/settings.html#keepalive (default 2 s) */
	{ "gunicorn", "gunicorn", "--keep-alive", 0, 0, NULL, NULL },
	/* uvicorn.org/settings/#timeouts (default 5 s) */
	{ "uvicorn", "uvicorn", "--timeout-keep-alive", 0, 0, NULL, NULL },
	/* tomcat.apache.org/tomcat-10.1-doc/config/http.html keepAliveTimeout
	 * (default: connectionTimeout, 60 s in the shipped server.xml) */
	{ "java", "Tomcat (Java)", "the connector's keepAliveTimeout", 1, 0,
	  "in Spring Boot: server.tomcat.keep-alive-timeout", NULL },
	/* httpd.apache.org/docs/2.4/mod/core.html#keepalivetimeout (default 5 s) */
	{ "apache2", "Apache httpd", "KeepAliveTimeout", 0, 0, NULL, NULL },
	{ "httpd", "Apache httpd", "KeepAliveTimeout", 0, 0, NULL, NULL },
	/* nginx.org/en/docs/http/ngx_http_core_module.html#keepalive_timeout (75 s)
	 * and ngx_http_upstream_module.html#keepalive_timeout (upstream, 60 s) */
	{ "nginx", "nginx", "keepalive_timeout", 0, 0, NULL,
	  "lower keepalive_timeout in the upstream block (default 60 s)" },
	/* docs.haproxy.org/2.6/configuration.html: timeout http-keep-alive;
	 * idle server connections live until the server's pool-purge-delay (5 s) */
	{ "haproxy", "HAProxy", "timeout http-keep-alive", 0, 0, NULL,
	  "lower pool-purge-delay on the server line (default 5 s) and timeout server" },
	/* envoyproxy.io: common_http_protocol_options.idle_timeout (default 1 h) */
	{ "envoy", "Envoy", "common_http_protocol_options.idle_timeout", 0, 0, NULL,
	  "lower the cluster's common_http_protocol_options.idle_timeout" },
	/* pkg.go.dev/net/http#Server: IdleTimeout (falls back to ReadTimeout) */
	{ "go", "Go net/http", "http.Server.IdleTimeout", 0, 0, NULL, NULL },
};

/* Default idle timeouts of load balancers that are not on this host. */
const struct lb_default lb_defaults[] = {
	/* docs.aws.amazon.com/elasticloadbalancing/latest/application/application-load-balancers.html#connection-idle-timeout */
	{ "aws-alb", "AWS Application Load Balancer", 60 },
	/* cloud.google.com/load-balancing/docs/https#timeouts_and_retries:
	 * backend keepalive timeout 600 s */
	{ "gcp", "Google Cloud external Application Load Balancer", 600 },
	/* learn.microsoft.com/azure/load-balancer/load-balancer-tcp-idle-timeout (4 min) */
	{ "azure", "Azure Load Balancer", 240 },
	/* ngx_http_upstream_module keepalive_timeout default */
	{ "nginx", "nginx (upstream keepalive_timeout)", 60 },
	/* HAProxy keeps idle server connections until pool-purge-delay (5 s) */
	{ "haproxy", "HAProxy (pool-purge-delay)", 5 },
	/* Envoy HttpProtocolOptions.idle_timeout default */
	{ "envoy", "Envoy (idle_timeout)", 3600 },
	/* developers.cloudflare.com/fundamentals/reference/connection-limits/
	 * (origin keep-alive idle: 900 s) */
	{ "cloudflare", "Cloudflare (to origin)", 900 },
};
const int n_lb_defaults = sizeof(lb_defaults) / sizeof(lb_defaults[0]);

const struct software *software_by_comm(const char *comm)
{
	size_t i;

	for (i = 0; i < sizeof(table) / sizeof(table[0]); i++)
		if (!strcmp(comm, table[i].comm))
			return &table[i];
	return NULL;
}

int software_setting(const struct software *sw, double want_s, char *out, size_t len)
{
	double v = want_s - sw->extra_s; /* it closes extra_s after its setting */

	return snprintf(out, len, "%s = %.0f%s%s%s%s", sw->setting, sw->unit_ms ? v * 1000 : v,
			sw->unit_ms ? " (ms)" : " (s)", sw->note ? " (" : "",
			sw->note ? sw->note : "", sw->note ? ")" : "");
}

const struct lb_default *lb_by_preset(const char *preset)
{
	int i;

	for (i = 0; i < n_lb_defaults; i++)
		if (!strcmp(preset, lb_defaults[i].preset))
			return &lb_defaults[i];
	return NULL;
}
