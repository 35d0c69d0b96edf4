"""katrace --daemon: bounded, with Prometheus metrics, log rotation."""
import json
import os
import re
import signal
import socket
import subprocess
import tempfile
import time
import urllib.request

from lib import (KATRACE, NodeServer, SERVERS, as_user, check, exchange_until_server_closes, http_request,
                 wait_eof, wait_line)


# On every kernel: the privileges and the metrics; the load tests stay native.
KERNEL_MATRIX = True
NATIVE_ONLY = ("test_no_metrics_client_stalls_the_daemon", "test_tables_bounded_and_evictions_counted")


class Daemon:
    def __init__(self, *args):
        self.dir = tempfile.mkdtemp(prefix="katrace-daemon-")
        self.log = os.path.join(self.dir, "katrace.log")
        self.prom = os.path.join(self.dir, "katrace.prom")
        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            self.metrics_port = s.getsockname()[1]
        self.p = subprocess.Popen([KATRACE, "--daemon", "--log", self.log, "--metrics-addr",
                                   f"127.0.0.1:{self.metrics_port}", "--metrics-file", self.prom,
                                   *args], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        wait_line(self.p, "katrace: tracing", stream="stderr")

    def metrics(self):
        with urllib.request.urlopen(f"http://127.0.0.1:{self.metrics_port}/metrics", timeout=5) as r:
            check(r.headers["Content-Type"].startswith("text/plain; version=0.0.4"), r.headers)
            return parse_prom(r.read().decode())

    def records(self, path=None):
        with open(path or self.log) as f:
            return [json.loads(l) for l in f]

    def stop(self):
        self.p.send_signal(signal.SIGTERM)
        return self.p.wait(15)

    def __enter__(self):
        return self

    def __exit__(self, *a):
        if self.p.poll() is None:
            self.p.kill()
            self.p.wait()
        subprocess.run(["rm", "-rf", self.dir])


def parse_prom(text):
    """{(name, frozenset(labels)): value}, checking the exposition format."""
    out, typed = {}, set()
    for line in text.splitlines():
        if line.startswith("# TYPE "):
            name, kind = line.split()[2:4]
            check(kind in ("counter", "gauge", "histogram"), line)
            check(kind != "counter" or name.endswith("_total"), f"counter without _total: {line}")
            check(name.startswith("katrace_"), line)
            typed.add(name)
            continue
        if line.startswith("#") or not line:
            continue
        m = re.match(r'^([a-z_]+)(?:\{(.*)\})? (\S+)$', line)
        check(m, f"bad line {line!r}")
        base = re.sub(r"_(bucket|sum|count)$", "", m.group(1))
        check(m.group(1) in typed or base in typed, f"untyped {line}")
        labels = frozenset(re.findall(r'(\w+)="((?:[^"\\]|\\.)*)"', m.group(2) or ""))
        out[(m.group(1), labels)] = float(m.group(3))
    return out


def value(metrics, name, **labels):
    return metrics.get((name, frozenset(labels.items())))


def test_daemon_signals_log_and_exit():
    with NodeServer(keepalive_ms=100) as srv, Daemon("-p", str(srv.pid)) as d:
        for _ in range(2):
            exchange_until_server_closes(srv.port)
        time.sleep(0.3)
        d.p.send_signal(signal.SIGUSR1)
        time.sleep(0.3)
        os.rename(d.log, d.log + ".1")	# logrotate, then SIGHUP
        d.p.send_signal(signal.SIGHUP)
        time.sleep(0.3)
        exchange_until_server_closes(srv.port)
        time.sleep(0.3)
        rc = d.stop()
        old, new = d.records(d.log + ".1"), d.records()
    check(rc == 0, f"exit {rc}")
    types = [[r["type"] for r in recs if r["type"] != "listener"] for recs in (old, new)]
    check(types[0] == ["close", "close", "summary"], old)
    check(types[1] == ["close", "summary"], new)	# flushed on SIGTERM
    check(new[-1]["services"][0]["backend_idle"]["closes"] == 3, new[-1])


def test_metrics_endpoint_and_file():
    with NodeServer(keepalive_ms=100) as srv, Daemon("-p", str(srv.pid)) as d:
        for _ in range(3):
            exchange_until_server_closes(srv.port)
        c = socket.create_connection(("127.0.0.1", srv.port))	# one request lost to the race
        http_request(c)
        wait_eof(c)
        c.sendall(b"POST /lost HTTP/1.1\r\nHost: t\r\nContent-Length: 0\r\n\r\n")
        time.sleep(0.3)
        c.close()
        time.sleep(0.3)
        m = d.metrics()
        svc = f":{srv.port}"
        check(value(m, "katrace_connections_closed_total", role="server", closed_by="local-fin") == 4, m)
        check(value(m, "katrace_lost_requests_total", service=svc, cause="keepalive_race") == 1, m)
        check(value(m, "katrace_timeout_mismatch", service=svc) == 1, m)
        t = value(m, "katrace_idle_timeout_seconds", service=svc, side="backend")
        check(t is not None and abs(t - 1.1) < 0.02, t)
        check(value(m, "katrace_idle_before_close_seconds_count", service=svc, side="backend") == 4, m)
        check(value(m, "katrace_idle_before_close_seconds_bucket", service=svc, side="backend",
                    le="1") == 0, m)
        check(value(m, "katrace_idle_before_close_seconds_bucket", service=svc, side="backend",
                    le="2") == 4, m)
        check(value(m, "katrace_ringbuf_dropped_events_total") == 0, m)
        check(value(m, "katrace_process_resident_memory_bytes") > 0, m)
        check(value(m, "katrace_process_cpu_seconds_total") >= 0, m)
        d.stop()
        with open(d.prom) as f:
            filed = parse_prom(f.read())
        check(value(filed, "katrace_lost_requests_total", service=svc, cause="keepalive_race") == 1, filed)
        check(not os.path.exists(d.prom + ".tmp"), "temporary file left behind")


def test_cgroup_filter():
    root = "/sys/fs/cgroup/unified" if os.path.ismount("/sys/fs/cgroup/unified") else "/sys/fs/cgroup"
    cg = os.path.join(root, f"katrace-test-{os.getpid()}")
    os.mkdir(cg)
    try:
        # a shell that moves itself into the cgroup, then becomes node
        inside = subprocess.Popen(["sh", "-c", f"echo $$ > {cg}/cgroup.procs && exec node "
                                   f"{SERVERS}/keepalive.js 0 5000"], stdout=subprocess.PIPE, text=True)
        port_in = int(wait_line(inside, "ready").split()[1])
        with NodeServer(keepalive_ms=5000) as outside, Daemon("--cgroup", cg) as d:
            for port in (port_in, outside.port):
                c = socket.create_connection(("127.0.0.1", port))
                http_request(c)
                c.close()
            time.sleep(0.3)
            d.stop()
            recs = [r for r in d.records() if r["type"] == "close"]
        inside.terminate()
        inside.wait()
        check(recs and all(r["pid"] == inside.pid for r in recs), recs)
        check(any(r["laddr"].endswith(f":{port_in}") for r in recs), recs)
    finally:
        os.rmdir(cg)
    p = subprocess.run([KATRACE, "--cgroup", "/tmp"], capture_output=True, text=True)
    check(p.returncode == 1 and "not a cgroup v2 directory" in p.stderr, p.stderr)


def test_tables_bounded_and_evictions_counted():
    with NodeServer(keepalive_ms=30000) as srv:
        with Daemon("--max-conns", "128", "-p", str(srv.pid)) as d:
            socks = []
            for _ in range(400):	# more open at once than either table holds
                c = socket.create_connection(("127.0.0.1", srv.port))
                http_request(c)
                socks.append(c)
            for c in socks:
                c.close()
            time.sleep(0.5)
            m = d.metrics()
            check(value(m, "katrace_evictions_total", table="kernel") >= 400 - 128 - 10, m)
            check(d.stop() == 0, "exit")


def test_runs_with_only_cap_bpf_and_cap_perfmon():
    """As tools/deploy runs it: an unprivileged user holding exactly CAP_BPF
    and CAP_PERFMON, at the daemon's default level."""
    caps = "+bpf,+perfmon"
    with NodeServer(keepalive_ms=100) as srv:
        cmd = as_user("65534", [KATRACE, "--daemon", "-p", str(srv.pid)])
        cmd[1:1] = ["--inh-caps", caps, "--ambient-caps", caps, "--bounding-set", "-all," + caps]
        p = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        try:
            line = wait_line(p, "katrace: tracing", stream="stderr")
            check("per connection" in line, line)
            exchange_until_server_closes(srv.port)
            time.sleep(0.3)
            p.send_signal(signal.SIGTERM)
            out, err = p.communicate(timeout=15)
        finally:
            if p.poll() is None:
                p.kill()
    check(p.returncode == 0, err)
    recs = [json.loads(l) for l in out.splitlines()]
    closes = [r for r in recs if r["type"] == "close"]
    check(len(closes) == 1 and closes[0]["pid"] == srv.pid and
          closes[0]["closed_by"] == "local-fin" and closes[0]["idle_ms"] > 1000, recs)


def test_no_metrics_client_stalls_the_daemon():
    """While connections churn on the traced port, a client trickling a byte
    every 0.3 s, a thousand idle connections and one sending garbage are all
    held open on the metrics endpoint: every scrape is answered within a
    second, the garbage gets a 404, and the ring buffer drops nothing."""
    import resource
    import threading
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (max(soft, min(hard, 4096)), hard))
    with NodeServer(keepalive_ms=100) as srv, Daemon("--port", str(srv.port)) as d:
        addr = ("127.0.0.1", d.metrics_port)
        stop = threading.Event()

        def churn():
            while not stop.is_set():
                c = socket.create_connection(("127.0.0.1", srv.port))
                http_request(c, "/churn")
                c.close()

        def trickle():
            with socket.create_connection(addr) as t:
                for b in b"GET /metrics HTTP/1.1\r\n":
                    if stop.is_set():
                        return
                    try:
                        t.send(bytes([b]))
                    except OSError:
                        return	# dropped at its deadline: as it should be
                    time.sleep(0.3)

        workers = [threading.Thread(target=churn) for _ in range(2)]
        workers.append(threading.Thread(target=trickle))
        for w in workers:
            w.start()
        idle = [socket.create_connection(addr) for _ in range(1000)]
        garbage = socket.create_connection(addr)
        # read whole (an answer closed over unread bytes would be a RST)
        garbage.sendall(bytes(b for b in os.urandom(1500) if b not in b"\r\n") + b"\r\n\r\n")
        try:
            took = []
            for _ in range(5):
                t0 = time.monotonic()
                m = d.metrics()
                took.append(time.monotonic() - t0)
                time.sleep(0.2)
            garbage.settimeout(2)
            answer = garbage.recv(100)
        finally:
            stop.set()
            for w in workers:
                w.join(10)
            for s in idle:
                s.close()
            garbage.close()
    check(max(took) < 1.0, f"scrapes took {took}")
    check(answer.startswith(b"HTTP/1.1 404"), answer)
    check(value(m, "katrace_ringbuf_dropped_events_total") == 0, m)
    check(value(m, "katrace_events_total") > 20, m)
