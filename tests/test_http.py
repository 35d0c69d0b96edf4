"""Requests and responses joined to their connections."""
import os
import socket
import time

from lib import (Katrace, NodeServer, PyPeer, check, http_request, local_port,
                 run_katrace, wait_eof)


def one_close(kt, port):
    recs = [r for r in kt.records() if r["raddr"].endswith(f":{port}")]
    check(len(recs) == 1, f"expected one close record for port {port}: {recs}")
    return recs[0]


def test_keepalive_many_requests():
    with NodeServer(keepalive_ms=200) as srv, Katrace("-p", str(srv.pid)) as kt:
        c = socket.create_connection(("127.0.0.1", srv.port))
        for i in range(5):
            http_request(c, f"/r/{i}")
        t_resp = time.monotonic()
        http_request(c, "/status/404")
        t_resp = time.monotonic()
        t_close, _ = wait_eof(c)
        port = local_port(c)
        r = one_close(kt, port)
    check(r["requests"] == 6, r)
    check(r["last_request"] == "GET /status/404" and r["last_status"] == 404, r)
    # idle counts from the end of the last response
    check(abs(r["idle_ms"] - (t_close - t_resp) * 1000) <= 20, r)


def test_pipelined_requests():
    with NodeServer(keepalive_ms=5000) as srv, Katrace("-p", str(srv.pid)) as kt:
        c = socket.create_connection(("127.0.0.1", srv.port))
        c.sendall(b"".join(f"GET /p/{i} HTTP/1.1\r\nHost: t\r\n\r\n".encode() for i in range(3)))
        got = b""
        while got.count(b"HTTP/1.1 200") < 3:
            got += c.recv(65536)
        port = local_port(c)
        c.close()
        r = one_close(kt, port)
    check(r["requests"] == 3 and r["last_request"] == "GET /p/2", r)


def test_request_split_across_reads():
    with NodeServer(keepalive_ms=5000) as srv, Katrace("-p", str(srv.pid)) as kt:
        c = socket.create_connection(("127.0.0.1", srv.port))
        c.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        for piece in (b"GE", b"T /split/pa", b"th HTTP/1.1\r\nHo", b"st: t\r\n\r\n"):
            c.sendall(piece)
            time.sleep(0.05)	# each piece is read on its own
        c.recv(65536)
        port = local_port(c)
        c.close()
        r = one_close(kt, port)
    check(r["requests"] == 1 and r["last_request"] == "GET /split/path", r)


def test_large_bodies():
    body = os.urandom(1 << 20)
    with NodeServer(keepalive_ms=5000) as srv, Katrace("-p", str(srv.pid)) as kt:
        c = socket.create_connection(("127.0.0.1", srv.port))
        http_request(c, "/upload", method="POST", body=body)
        http_request(c, "/after")
        port = local_port(c)
        c.close()
        r = one_close(kt, port)
    check(r["requests"] == 2 and r["last_request"] == "GET /after", r)
    check(r["bytes_in"] > len(body), r)


def test_body_that_looks_like_a_request_is_body():
    """A request's body read on its own, that starts as a request would, is
    the body: the call continues the unanswered request (nothing came
    back since its head), so it neither counts nor names a request."""
    fake = b"GET /inside-body HTTP/1.1\r\nHost: t\r\n\r\n"
    with NodeServer(keepalive_ms=5000) as srv, Katrace("-p", str(srv.pid)) as kt:
        c = socket.create_connection(("127.0.0.1", srv.port))
        c.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        c.sendall(f"POST /upload HTTP/1.1\r\nHost: t\r\nContent-Length: {len(fake)}\r\n\r\n"
                  .encode())
        time.sleep(0.01)	# the head read on its own, the body a moment later
        c.sendall(fake)
        got = b""
        while b"ok\n" not in got:
            got += c.recv(65536)
        port = local_port(c)
        c.close()
        r = one_close(kt, port)
    check(got.startswith(b"HTTP/1.1 200"), got)
    check(r["requests"] == 1 and r["last_request"] == "POST /upload", r)


def test_non_http_and_tls_still_reported():
    with PyPeer("binary") as srv, Katrace("-p", str(srv.pid)) as kt:
        ports = []
        for first in (b"\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03" + os.urandom(64),  # TLS hello
                      os.urandom(300)):
            c = socket.create_connection(("127.0.0.1", srv.port))
            c.sendall(first)
            wait_eof(c)
            ports.append(local_port(c))
            c.close()
        for port, proto in zip(ports, ("tls", "other")):
            r = one_close(kt, port)
            check(r["requests"] == 0 and r["last_request"] is None and r["last_status"] is None, r)
            check(r["proto"] == proto, r)
    check("error" not in kt.stderr.lower(), kt.stderr)


def test_privacy_query_redacted_headers_never_kept():
    secret = "s3cr3t-header-value"
    long_path = "/" + "a" * 400
    with NodeServer(keepalive_ms=5000) as srv, Katrace("-p", str(srv.pid)) as kt:
        c = socket.create_connection(("127.0.0.1", srv.port))
        c.sendall(f"GET /q?token=abc HTTP/1.1\r\nHost: t\r\nX-Secret: {secret}\r\n\r\n".encode())
        c.recv(65536)
        port1 = local_port(c)
        c.close()
        c = socket.create_connection(("127.0.0.1", srv.port))
        http_request(c, long_path)
        port2 = local_port(c)
        c.close()
        r1, r2 = one_close(kt, port1), one_close(kt, port2)
    check(r1["last_request"] == "GET /q?…", r1)
    check(r2["last_request"] == "GET " + long_path[:256], r2)
    everything = repr(kt.out) + kt.stderr
    check(secret not in everything and "token=abc" not in everything, "header or query leaked")


def test_full_path_keeps_query():
    with NodeServer(keepalive_ms=5000) as srv, Katrace("-p", str(srv.pid), "--full-path") as kt:
        c = socket.create_connection(("127.0.0.1", srv.port))
        http_request(c, "/q?a=1&b=2")
        port = local_port(c)
        c.close()
        r = one_close(kt, port)
    check(r["last_request"] == "GET /q?a=1&b=2", r)
