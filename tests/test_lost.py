"""Each kernel path by which a request is lost to a close race,
forced deterministically, named from the backend alone."""
import socket
import struct
import subprocess
import sys
import time

from lib import (Katrace, Netns, NodeServer, PyPeer, check, http_request, local_port,
                 reset_reason, wait_eof)

# Every path on every kernel of the matrix, but the crafted-BTF test.
KERNEL_MATRIX = True
NATIVE_ONLY = ("test_kernel_without_reset_reason_or_dynptr",)


LOST_REQ = b"POST /lost/7?k=v HTTP/1.1\r\nHost: t\r\nContent-Length: 5\r\n\r\nhello"


def only_lost(kt):
    lost = kt.records("lost_request")
    check(len(lost) == 1, f"expected one lost request: {kt.out} {kt.stderr}")
    return lost[0]


def backend_closes_then_client_writes(delay_s, expect_reason, level=None):
    with NodeServer(keepalive_ms=100) as srv, Katrace("-p", str(srv.pid), level=level) as kt:
        c = socket.create_connection(("127.0.0.1", srv.port))
        t_first = time.monotonic()
        http_request(c, "/first")
        t_fin, _ = wait_eof(c)	# the backend's FIN has arrived
        time.sleep(delay_s)
        t_write = time.monotonic()
        c.sendall(LOST_REQ)
        t_written = time.monotonic()
        port = local_port(c)
        time.sleep(0.1)
        c.close()
        lost = only_lost(kt)
        close = [r for r in kt.records() if r["raddr"].endswith(f":{port}")][0]
    check(lost["request"] == "POST /lost/7?…", lost)
    check(lost["reset_reason"] == reset_reason(expect_reason), lost)
    check(lost["pid"] == srv.pid and lost["role"] == "server", lost)
    check(lost["raddr"].endswith(f":{port}") and lost["laddr"].endswith(f":{srv.port}"), lost)
    # The backend closed after it answered the first request and before the
    # client woke to its FIN; the client wakes late under emulation (30 ms
    # on 6.1 in CI), so the kernel's time is bounded, not compared.
    check((t_write - t_fin) * 1000 - 1 <= lost["close_to_request_ms"] <= (t_written - t_first) * 1000 + 1,
          (lost, t_first, t_fin, t_write, t_written))
    check(abs(lost["idle_ms"] - close["idle_ms"]) < 0.2, (lost, close))
    return lost


def test_path_abort_on_data(level=None):
    """The request crosses the backend's FIN: the orphan in FIN_WAIT gets data."""
    backend_closes_then_client_writes(0, "TCP_ABORT_ON_DATA", level)


def test_path_timewait_socket(level=None):
    """The FIN was ACKed first: the orphan is a timewait socket by then.
    Before 6.10 its RST leaves no trace: the client's end on this host
    received it (seen_by_peer)."""
    lost = backend_closes_then_client_writes(0.1, "TCP_TIMEWAIT_SOCKET", level)
    check(lost["seen_by_peer"] is (reset_reason("x") is None), lost)


def test_path_abort_on_close(level=None):
    """The request is in the receive queue, unread, when the backend closes."""
    with PyPeer("http-then-close-unread") as srv, Katrace("-p", str(srv.pid), level=level) as kt:
        c = socket.create_connection(("127.0.0.1", srv.port))
        http_request(c, "/one")
        time.sleep(0.2)
        c.sendall(LOST_REQ)
        _, how = wait_eof(c)
        lost = only_lost(kt)
    check(how == "rst", how)
    check(lost["request"] == "POST /lost/7?…" and lost["reset_reason"] == reset_reason("TCP_ABORT_ON_CLOSE"), lost)
    # it arrived before the close (which comes 250 ms after the response),
    # 200 ms after the response (the client's sleep; later under emulation),
    # and was never read
    check(lost["close_to_request_ms"] < -10 and 220 < lost["idle_ms"] < 330, lost)
    check(190 < lost["idle_ms"] + lost["close_to_request_ms"] < 260, lost)


def client_in_netns(ns, port, script):
    return subprocess.run(ns.cmd([sys.executable, "-c", f"""
import socket, sys, time
sys.path.insert(0, {repr(sys.path[0])})
from lib import http_request, wait_eof
c = socket.create_connection(('127.0.0.1', {port}))
{script}
"""]), capture_output=True, text=True, timeout=20)


def lost_after_socket_is_gone(ns, srv, request, level=None):
    """The server closed the idle connection and no timewait socket is kept
    (tcp_max_tw_buckets=0): the client's next request finds none."""
    with Katrace("-p", str(srv.pid), level=level) as kt:
        p = client_in_netns(ns, srv.port, f"""
http_request(c, '/one')
wait_eof(c)
time.sleep(0.1)
c.sendall({request!r})
time.sleep(0.1)
""")
        check(p.returncode == 0, p.stderr)
        lost = only_lost(kt)
    check(lost["pid"] == srv.pid, lost)
    return lost


def test_path_no_socket(level=None):
    """Nothing listens either: sk is NULL, and the request is matched to its
    connection by the segment's 4-tuple."""
    with Netns("katrace-nosock", ["net.ipv4.tcp_max_tw_buckets=0"]) as ns, \
            PyPeer("http-once-then-unlisten", netns=ns) as srv:
        lost = lost_after_socket_is_gone(ns, srv, b"DELETE /gone/1 HTTP/1.1\r\nHost: t\r\n\r\n",
                                         level)
    check(lost["request"] == "DELETE /gone/1" and lost["reset_reason"] == reset_reason("NO_SOCKET"), lost)
    # before 6.10 the RST is seen as the segment's drop (kfree_skb, NO_SOCKET)
    check(lost["seen_by_peer"] is False, lost)
    check(90 < lost["close_to_request_ms"] < 150, lost)


def test_path_listener_answers():
    """The port still listens: the listener answers the stray request
    (TCP_FLAGS); matched by 4-tuple as well."""
    with Netns("katrace-listener", ["net.ipv4.tcp_max_tw_buckets=0"]) as ns, \
            NodeServer(keepalive_ms=100, netns=ns) as srv:
        lost = lost_after_socket_is_gone(
            ns, srv, b"PUT /late HTTP/1.1\r\nHost: t\r\nContent-Length: 0\r\n\r\n")
    check(lost["request"] == "PUT /late" and lost["reset_reason"] == reset_reason("TCP_FLAGS"), lost)


def client_writes_on_closed_connection(*katrace_args, connect_first=True):
    """Traced on the client: it writes a request on a connection whose FIN it
    has not read yet and gets RST back. The lost record."""
    with NodeServer(keepalive_ms=100) as srv:
        c = socket.create_connection(("127.0.0.1", srv.port)) if connect_first else None
        with Katrace("-p", str(__import__("os").getpid()), *katrace_args) as kt:
            c = c or socket.create_connection(("127.0.0.1", srv.port))
            http_request(c, "/first")
            time.sleep(1.3)	# past Node's effective 1.1 s: its FIN is here, unread
            c.sendall(LOST_REQ)
            time.sleep(0.1)
            try:
                c.recv(100)
            except ConnectionResetError:
                pass
            c.close()
            return only_lost(kt)


def check_client_timing(lost):
    """The client wrote 1.3 s after its response: Node's close (~1.1 s idle;
    later under emulation) split that time into the idle before the close
    and the close-to-request gap."""
    check(1000 < lost["idle_ms"] < 1280 and lost["close_to_request_ms"] > 0, lost)
    check(abs(lost["idle_ms"] + lost["close_to_request_ms"] - 1300) < 60, lost)


def test_client_side_request_on_closed_connection():
    """The connection was open before katrace started: adopted at its next call."""
    lost = client_writes_on_closed_connection()
    check(lost["role"] == "client" and lost["request"] == "POST /lost/7?…", lost)
    check(lost["reset_reason"] is None, lost)
    check_client_timing(lost)


def test_no_lost_request_without_race(level=None):
    with NodeServer(keepalive_ms=100) as srv, Katrace("-p", str(srv.pid), level=level) as kt:
        for _ in range(3):
            c = socket.create_connection(("127.0.0.1", srv.port))
            http_request(c)
            wait_eof(c)
            c.close()
        recs = kt.records("lost_request")
    check(recs == [], recs)


def test_kernel_without_reset_reason_or_dynptr():
    """tcp_send_reset as before Linux 6.10 (no reason argument, so no skb
    dynptr either): the lost request is still reported, its bytes in page
    fragments unreadable, and reset_reason null."""
    import tempfile
    import btf_craft
    with tempfile.NamedTemporaryFile(suffix=".btf") as f:
        btf_craft.write(f.name, {"inet_sock_set_state": 3, "tcp_send_reset": 2,
                                 "tcp_receive_reset": 1, "tcp_destroy_sock": 1,
                                 "tcp_probe": 2, "sock_send_length": 3, "sock_recv_length": 3})
        with NodeServer(keepalive_ms=100) as srv, Katrace("--btf", f.name, "-p", str(srv.pid)) as kt:
            c = socket.create_connection(("127.0.0.1", srv.port))
            http_request(c, "/first")
            wait_eof(c)
            c.sendall(LOST_REQ)
            time.sleep(0.1)
            c.close()
            lost = only_lost(kt)
    check(lost["reset_reason"] is None and lost["pid"] == srv.pid, lost)
    check(lost["request"] in ("POST /lost/7?…", None), lost)	# None: in page fragments
    check(lost["close_to_request_ms"] is not None, lost)
