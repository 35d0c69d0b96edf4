"""HTTPS backends: the race inside TLS, counted from the connection-level
evidence (the request's bytes are encrypted: "request": null,
"unnamed_because": "encrypted", "proto": "tls"), and the verdict from the
TLS connections' idle closes, as for plaintext; the request lines from
uprobes on OpenSSL's SSL_read/SSL_write (Node.js links it in, Python and
HAProxy and nginx load libssl.so.3)."""
import json
import os
import re
import socket
import ssl
import subprocess
import sys
import tempfile
import time

from lib import Katrace, NodeServer, Proc, check, reset_reason, wait_eof, wait_line
from test_racelab import racelab

KERNEL_MATRIX = True
NATIVE_ONLY = ("test_haproxy_tls_502s_named", "test_nginx_tls_502s_named")


class TlsNode(NodeServer):
    """tests/servers/keepalive.js over HTTPS, with a certificate of its own."""

    def __init__(self, keepalive_ms):
        self.dir = tempfile.TemporaryDirectory()
        cert, key = (os.path.join(self.dir.name, n) for n in ("cert.pem", "key.pem"))
        subprocess.run(["openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt",
                        "ec_paramgen_curve:prime256v1", "-nodes", "-days", "2", "-subj",
                        "/CN=localhost", "-keyout", key, "-out", cert],
                       check=True, capture_output=True)
        os.environ.update(TLS_CERT=cert, TLS_KEY=key)
        try:
            super().__init__(keepalive_ms)
        finally:
            del os.environ["TLS_CERT"], os.environ["TLS_KEY"]

    def __exit__(self, *a):
        super().__exit__(*a)
        self.dir.cleanup()


def tls_client(port):
    ctx = ssl.create_default_context()
    ctx.check_hostname, ctx.verify_mode = False, ssl.CERT_NONE
    return ctx.wrap_socket(socket.create_connection(("127.0.0.1", port)))


def https_get(s, path):
    s.sendall(f"GET {path} HTTP/1.1\r\nHost: t\r\n\r\n".encode())
    buf = b""
    while not buf.endswith(b"ok\n") and not re.search(rb"\nok /\S*\n$", buf):
        chunk = s.recv(65536)
        check(chunk, "closed before the response")
        buf += chunk
    return buf


def reuse_after_close(level=None):
    """A client reuses an HTTPS connection the backend closed idle: the
    kernel answers RST. Returns katrace's lost requests, the backend's
    closes and the summary."""
    with TlsNode(keepalive_ms=100) as srv, Katrace("-p", str(srv.pid), level=level) as kt:
        s = tls_client(srv.port)
        https_get(s, "/first")
        raw = socket.socket(fileno=os.dup(s.fileno()))
        wait_eof(raw)	# the backend's close_notify and FIN
        # the next request as any TLS client sends it: one application-data
        # record (its bytes are what matters to the kernel, not their key)
        raw.sendall(b"\x17\x03\x03\x00\x40" + os.urandom(64))
        time.sleep(0.1)
        raw.close()
        s.close()
        lost = kt.records("lost_request")
        closes = kt.records("close", pid=srv.pid)
        summary = kt.records("summary")
    check(len(lost) == 1, (lost, kt.stderr))
    check(closes and closes[0]["proto"] == "tls" and closes[0]["closed_by"] == "local-fin", closes)
    svc = [x for x in summary[0]["services"] if x["service"] == f":{srv.port}"]
    check(svc and svc[0]["lost"] == 1 and svc[0]["verdict"] == "MISMATCH", summary)
    return lost[0], closes[0], svc[0]


def test_tls_request_on_a_closed_connection_counted():
    """The lost request is counted, unnamed, proto tls; the TLS close feeds
    the service's idle closes and the verdict."""
    l, close, svc = reuse_after_close()
    check(l["proto"] == "tls" and l["request"] is None and l["unnamed_because"] == "encrypted", l)
    check(l["cause"] == "keepalive_race" and l["reset_reason"] == reset_reason("TCP_ABORT_ON_DATA"), l)
    check(1050 < l["idle_ms"] < 1400, l)	# Node: keepAliveTimeout + ~1 s
    check(abs(close["idle_ms"] - l["idle_ms"]) < 0.2, (close, l))
    check(svc["backend_idle"]["closes"] == 1, svc)


def test_tls_request_counted_at_conn_level():
    """At --level conn too (no program per call): counted, proto tls."""
    l, _, _ = reuse_after_close("conn")
    check(l["proto"] == "tls" and l["request"] is None and l["cause"] == "keepalive_race", l)


def test_tls_close_notify_is_not_data():
    """The backend's close_notify, sent just before its FIN, leaves the
    idle time at close what it was; a client that closes first (its own
    close_notify) loses nothing."""
    with TlsNode(keepalive_ms=100) as srv, Katrace("-p", str(srv.pid)) as kt:
        s = tls_client(srv.port)
        https_get(s, "/a")
        time.sleep(0.3)
        https_get(s, "/b")
        s.close()	# close_notify and FIN from the client
        s2 = tls_client(srv.port)
        https_get(s2, "/c")
        wait_eof(socket.socket(fileno=os.dup(s2.fileno())))
        s2.close()
        closes = kt.records("close", pid=srv.pid)
        lost = kt.records("lost_request")
    check(not lost, lost)
    by = {c["closed_by"]: c for c in closes}
    check(set(by) == {"peer-fin", "local-fin"}, closes)  # requests: the exchanges
    check(by["peer-fin"]["requests"] == 2 and by["local-fin"]["requests"] == 1, closes)
    check(1050 < by["local-fin"]["idle_ms"] < 1400, by["local-fin"])


PY_HTTPS = """
import http.server, ssl, sys
class H(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    def do_GET(self):
        body = f"ok {self.path}\\n".encode()  # a body may not start like a request
        self.send_response(200)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)
    def log_message(self, *a):
        pass
srv = http.server.HTTPServer(("127.0.0.1", 0), H)
ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
ctx.load_cert_chain(sys.argv[1], sys.argv[2])
srv.socket = ctx.wrap_socket(srv.socket, server_side=True)
print("ready", srv.server_address[1], flush=True)
srv.serve_forever()
"""


def test_node_https_request_lines_named():
    """Node.js over HTTPS: its request lines and statuses, from the
    plaintext its SSL_read and SSL_write handle (the query redacted)."""
    with TlsNode(keepalive_ms=5000) as srv, Katrace("-p", str(srv.pid)) as kt:
        s = tls_client(srv.port)
        https_get(s, "/first")
        https_get(s, "/status/404?token=secret")
        s.close()
        closes = kt.records("close", pid=srv.pid)
    check(len(closes) == 1, closes)
    c = closes[0]
    check(c["proto"] == "tls" and c["requests"] == 2 and c["last_request"] == "GET /status/404?…"
          and c["last_status"] == 404, c)
    check("secret" not in json.dumps(kt.out), "query kept")


def test_python_https_backend_named():
    """Python's http.server over ssl, linked against the system's
    libssl.so.3: its request lines named."""
    with tempfile.TemporaryDirectory() as d:
        cert, key = os.path.join(d, "cert.pem"), os.path.join(d, "key.pem")
        subprocess.run(["openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt",
                        "ec_paramgen_curve:prime256v1", "-nodes", "-days", "2", "-subj",
                        "/CN=localhost", "-keyout", key, "-out", cert],
                       check=True, capture_output=True)
        with Proc([sys.executable, "-c", PY_HTTPS, cert, key]) as srv:
            port = int(wait_line(srv.p, "ready").split()[1])
            with Katrace("-p", str(srv.pid)) as kt:
                s = tls_client(port)
                https_get(s, "/py/1")
                https_get(s, "/py/2")
                s.close()
                closes = kt.records("close", pid=srv.pid)
    check(len(closes) == 1, (closes, kt.stderr))
    c = closes[0]
    check(c["proto"] == "tls" and c["requests"] == 2 and c["last_request"] == "GET /py/2"
          and c["last_status"] == 200, c)


def check_tls_race(r):
    truth = r["proxy_502"]
    check(len(truth) >= 3, f"only {len(truth)} 502s in {r['requests']} requests")
    for side in ("backend", "proxy"):
        check(r["lost_count_" + side] == len(truth),
              f"katrace on the {side}: {r['lost_count_' + side]} lost, {r['proxy']} 502s: {truth}")
        recs = r["records_" + side]
        lost = [x for x in recs if x["type"] == "lost_request"]
        check(all(x["proto"] == "tls" for x in lost), side)
        svc = [x for s in recs if s["type"] == "summary" for x in s["services"] if x["lost"]]
        check(svc and svc[0]["verdict"] == "MISMATCH", (side, svc))
        # in the backend's own words where katrace saw it: Node's setting
        check(side == "proxy" or "server.keepAliveTimeout" in svc[0]["fix"], svc)
    # the proxy wrote each through its TLS library: named by path there;
    # the backend never read them: counted, encrypted
    check(r["lost_proxy"] == truth, (r["lost_proxy"], truth))
    check(all(x["request"] is None and x["unnamed_because"] == "encrypted"
              for x in r["records_backend"] if x["type"] == "lost_request"), "backend")


def test_haproxy_tls_502s_named():
    """HAProxy to a Node.js HTTPS backend (ssl verify none): its SH-- 502s
    are katrace's lost requests, named by path on the proxy, counted on
    the backend."""
    check_tls_race(racelab("--tls", "--proxy", "haproxy", "--workers", "40", "--rounds", "12",
                           "--min-502", "3"))


def test_nginx_tls_502s_named():
    """The same behind nginx (proxy_pass https://)."""
    check_tls_race(racelab("--tls", "--proxy", "nginx", "--workers", "40", "--rounds", "12",
                           "--min-502", "3"))
