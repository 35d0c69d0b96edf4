"""The kernel connection tracer, against real Node.js and Python peers."""
import os
import socket
import struct
import subprocess
import sys
import tempfile
import time

import btf_craft
from lib import (KATRACE, Katrace, NodeServer, Proc, SERVERS, check, http_request,
                 local_port, run_katrace, wait_eof, wait_line)

# Run on every kernel of the matrix (tests/run.py --kernels), but for the
# crafted-BTF tests: their BTF claims tracepoints an old kernel lacks.
KERNEL_MATRIX = True
NATIVE_ONLY = ("test_error_missing_tracepoint", "test_fallback_without_sock_length_tracepoints")


MY_COMM = open("/proc/self/comm").read().strip()


def by_rport(recs, port):
    found = [r for r in recs if r["raddr"].endswith(f":{port}")]
    check(len(found) == 1, f"expected one record to port {port}, got {found}")
    return found[0]


def test_server_idle_close_local_fin(level=None):
    """Node closes an idle keep-alive socket: server, local-fin, idle to within 20 ms."""
    with NodeServer(keepalive_ms=300) as srv, Katrace("-p", str(srv.pid), level=level) as kt:
        c = socket.create_connection(("127.0.0.1", srv.port))
        t_resp = http_request(c)
        t_close, how = wait_eof(c)
        check(how == "fin", f"server closed with {how}")
        measured_ms = (t_close - t_resp) * 1000
        port = local_port(c)
        c.close()
        r = by_rport(kt.records(), port)
    check(r["role"] == "server", r)
    check(r["closed_by"] == "local-fin", r)
    check(r["pid"] == srv.pid and r["comm"] == "node", r)
    check(abs(r["idle_ms"] - measured_ms) <= 20, f"idle {r['idle_ms']} vs measured {measured_ms:.1f}")
    check(r["states"][:3] == ["SYN_RECV", "ESTABLISHED", "FIN_WAIT1"], r["states"])
    check(r["bytes_in"] > 0 and r["bytes_out"] > 0, r)
    check(r["lifetime_ms"] >= r["idle_ms"], r)


def test_client_closes_first_peer_fin(level=None):
    with NodeServer(keepalive_ms=5000) as srv, Katrace("-p", str(srv.pid), level=level) as kt:
        c = socket.create_connection(("127.0.0.1", srv.port))
        http_request(c)
        time.sleep(0.2)
        port = local_port(c)
        c.close()
        time.sleep(0.2)
        r = by_rport(kt.records(), port)
    check(r["closed_by"] == "peer-fin", r)
    check(abs(r["idle_ms"] - 200) <= 20, r)
    check(r["states"][2] == "CLOSE_WAIT", r["states"])


def test_peer_reset_peer_rst(level=None):
    with NodeServer(keepalive_ms=5000) as srv, Katrace("-p", str(srv.pid), level=level) as kt:
        c = socket.create_connection(("127.0.0.1", srv.port))
        http_request(c)
        c.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        port = local_port(c)
        c.close()	# SO_LINGER 0: close sends RST
        time.sleep(0.5)	# Node frees the socket once it has handled the reset
        r = by_rport(kt.records(), port)
    check(r["closed_by"] == "peer-rst", r)
    check(r["states"][-1] == "CLOSE", r["states"])


def test_server_closes_unread_local_rst(level=None):
    with Proc([sys.executable, os.path.join(SERVERS, "tcp_peer.py"), "close-unread"]) as srv:
        port = int(wait_line(srv.p, "ready").split()[1])
        with Katrace("-p", str(srv.pid), level=level) as kt:
            c = socket.create_connection(("127.0.0.1", port))
            c.sendall(b"GET /never-read HTTP/1.1\r\nHost: t\r\n\r\n")
            _, how = wait_eof(c)
            check(how == "rst", f"client saw {how}, expected a reset")
            r = by_rport(kt.records(), local_port(c))
    check(r["role"] == "server" and r["closed_by"] == "local-rst", r)
    check(r["pid"] == srv.pid, r)


def test_ipv6_connection(level=None):
    with NodeServer(keepalive_ms=100, host="::1") as srv, Katrace("-p", str(srv.pid), level=level) as kt:
        c = socket.create_connection(("::1", srv.port))
        http_request(c)
        wait_eof(c)
        r = by_rport(kt.records(), local_port(c))
    check(r["laddr"] == f"[::1]:{srv.port}", r)
    check(r["raddr"] == f"[::1]:{local_port(c)}", r)
    check(r["closed_by"] == "local-fin", r)


def test_pid_filter_excludes_other_process(level=None):
    with NodeServer(5000) as a, NodeServer(5000) as b, Katrace("-p", str(a.pid), level=level) as kt:
        ca = socket.create_connection(("127.0.0.1", a.port))
        cb = socket.create_connection(("127.0.0.1", b.port))
        http_request(ca)
        http_request(cb)
        ca.close()
        cb.close()
        recs = kt.records()
    check(recs and all(r["pid"] == a.pid for r in recs), recs)
    check(not [r for r in recs if r["laddr"].endswith(f":{b.port}")], recs)


def test_attribution_not_from_softirq_task(level=None):
    """Each side's close runs in softirq while the *other* process is on the CPU
    (loopback); both records must still name their own process."""
    with NodeServer(keepalive_ms=100) as srv, Katrace(level=level) as kt:
        c = socket.create_connection(("127.0.0.1", srv.port))
        http_request(c)
        wait_eof(c)	# node's FIN: our CLOSE_WAIT happens in node's context
        port = local_port(c)
        c.close()
        recs = kt.records()
    server = [r for r in recs if r["laddr"].endswith(f":{srv.port}") and r["raddr"].endswith(f":{port}")]
    client = [r for r in recs if r["laddr"].endswith(f":{port}") and r["raddr"].endswith(f":{srv.port}")]
    check(len(server) == 1 and len(client) == 1, recs)
    check(server[0]["pid"] == srv.pid and server[0]["role"] == "server", server)
    check(client[0]["pid"] == os.getpid() and client[0]["comm"] == MY_COMM, client)
    check(client[0]["role"] == "client" and client[0]["closed_by"] == "peer-fin", client)
    check(client[0]["states"][0] == "SYN_SENT", client)


def test_port_filter(level=None):
    with NodeServer(5000) as a, NodeServer(5000) as b, Katrace("--port", str(a.port), level=level) as kt:
        for port in (a.port, b.port):
            c = socket.create_connection(("127.0.0.1", port))
            http_request(c)
            c.close()
        recs = kt.records()
    check(recs, "no records")
    check(all(str(a.port) in (r["laddr"] + r["raddr"]) for r in recs), recs)


def test_traced_process_exit_ends_run():
    """A traced process that served no port exits: the run ends, with its
    connections reported."""
    with NodeServer(5000) as srv:
        client = subprocess.Popen([sys.executable, "-c", f"""
import socket, sys, time
sys.stdin.readline()
c = socket.create_connection(("127.0.0.1", {srv.port}))
c.sendall(b"GET / HTTP/1.1\\r\\nHost: t\\r\\n\\r\\n")
print(c.getsockname()[1], flush=True)
c.recv(65536)
sys.stdin.readline()
"""], stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
        kt = Katrace("-p", str(client.pid))
        client.stdin.write("go\n")
        client.stdin.flush()
        port = int(client.stdout.readline())
        client.stdin.close()	# it exits
        client.wait(5)
        rc = kt.p.wait(10)
        kt.finish(settle=0)
    check(rc == 0, f"exit {rc}")
    check(f"pid {client.pid} exited" in kt.stderr, kt.stderr)
    recs = kt.records()
    check(any(r["laddr"].endswith(f":{port}") for r in recs), recs)


def test_traced_server_exit_is_followed():
    """A traced server exits: the run goes on, following its port, and the
    next process to listen there (a restart) is traced."""
    with NodeServer(5000) as first:
        port = first.port
        kt = Katrace("-p", str(first.pid))
        c = socket.create_connection(("127.0.0.1", port))
        http_request(c, "/first")
        first.stop()
        with NodeServer(5000, port=port) as second:
            c = socket.create_connection(("127.0.0.1", port))
            http_request(c, "/second")
            c.close()
            time.sleep(1.0)	# katrace looks at its processes twice a second
            check(kt.p.poll() is None, "katrace stopped at the first exit")
            recs = kt.finish()
    check(f"pid {first.pid} exited; following its ports" in kt.stderr, (first.pid, kt.stderr))
    exits = [r for r in recs if r["type"] == "process_exit"]
    check([r["pid"] for r in exits] == [first.pid], exits)
    ups = [r for r in recs if r["type"] == "listener" and r["state"] == "up"]
    check([r["pid"] for r in ups] == [first.pid, second.pid], ups)
    second_close = [r for r in recs if r["type"] == "close" and r["last_request"] == "GET /second"]
    check(second_close and second_close[0]["pid"] == second.pid, recs)


def test_error_not_root():
    p = run_katrace("-d", "1", user="65534")
    check(p.returncode != 0, p)
    check(p.stderr.strip().count("\n") == 0 and "need root or CAP_BPF" in p.stderr, p.stderr)


def test_error_no_btf():
    p = run_katrace("--btf", "/nonexistent/vmlinux", "-d", "1")
    check(p.returncode != 0 and "no kernel BTF at /nonexistent/vmlinux" in p.stderr, p.stderr)


def test_error_missing_tracepoint():
    with tempfile.NamedTemporaryFile(suffix=".btf") as f:
        btf_craft.write(f.name, {"inet_sock_set_state": 3, "tcp_send_reset": 3,
                                 "tcp_destroy_sock": 1})
        p = run_katrace("--btf", f.name, "-d", "1")
    check(p.returncode != 0, p)
    check("no tracepoint tcp_receive_reset" in p.stderr, p.stderr)


def test_error_pid_not_found():
    p = run_katrace("-p", "999999", "-d", "1")
    check(p.returncode != 0 and p.stderr.strip() == "katrace: pid 999999 not found", p.stderr)


def test_error_bad_arguments():
    for args in (["-p", "abc"], ["--port", "70000"], ["-d", "-1"]):
        p = run_katrace(*args)
        check(p.returncode != 0 and "invalid" in p.stderr, (args, p.stderr))


def vectored_request(*katrace_args):
    """A request written by one vectored send (sendmsg of three pieces) on a
    connection of this process: (the response's start, its close record)."""
    with NodeServer(keepalive_ms=5000) as srv, \
            Katrace(*katrace_args, "-p", str(os.getpid())) as kt:
        c = socket.create_connection(("127.0.0.1", srv.port))
        c.sendmsg([b"GET /vec", b"tored/pa", b"th HTTP/1.1\r\nHost: t\r\n\r\n"])
        got = c.recv(65536)
        c.close()
        r = by_rport(kt.records(), srv.port)
    return got, r


def check_vectored_request(got, r):
    check(got.startswith(b"HTTP/1.1 200"), got)
    check(r["role"] == "client" and r["requests"] == 1 and
          r["last_request"] == "GET /vectored/path" and r["last_status"] == 200, r)


def test_vectored_send_named_whole():
    """A request written by one vectored send is named whole on the sending
    end: its bytes are read from TCP's copy of them, where the pieces lie in
    a row (the caller's first iovec holds only "GET /vec")."""
    check_vectored_request(*vectored_request())


def test_fallback_without_sock_length_tracepoints():
    """A kernel before 6.5 (no sock_send_length/sock_recv_length), shown to
    katrace through a BTF that lacks them: data timing and HTTP come from the
    send/recv syscall exits instead, just as exact."""
    with tempfile.NamedTemporaryFile(suffix=".btf") as f:
        btf_craft.write(f.name, {"inet_sock_set_state": 3, "tcp_send_reset": 3,
                                 "tcp_receive_reset": 1, "tcp_destroy_sock": 1,
                                 "tcp_probe": 2, "sys_exit": 2})
        note = run_katrace("--btf", f.name, "-d", "0.5")
        check(note.returncode == 0 and "from the send/recv syscall exits" in note.stderr, note.stderr)
        with NodeServer(keepalive_ms=300) as srv, Katrace("--btf", f.name, "-p", str(srv.pid)) as kt:
            c = socket.create_connection(("127.0.0.1", srv.port))
            http_request(c, "/a")
            t_resp = http_request(c, "/b")
            t_close, _ = wait_eof(c)
            r = by_rport(kt.records(), local_port(c))
        # a vectored send is read from TCP's copy at the syscall's exit too
        vectored = vectored_request("--btf", f.name)
    check(r["requests"] == 2 and r["last_request"] == "GET /b" and r["last_status"] == 200, r)
    check(abs(r["idle_ms"] - (t_close - t_resp) * 1000) <= 20, r)
    check_vectored_request(*vectored)
