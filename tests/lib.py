"""Helpers for katrace's tests: start real peers and katrace, read its JSON."""
import json
import os
import signal
import socket
import subprocess
import sys
import threading
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
KATRACE = os.path.join(ROOT, "katrace")
SERVERS = os.path.join(ROOT, "tests", "servers")


class Fail(AssertionError):
    pass


_features = None


def kernel_features():
    """What the running kernel gives katrace, as its -v line says:
    {'tcp_send_reset reason': True, 'skb dynptr in tp_btf': False, ...}"""
    global _features
    if _features is None:
        p = subprocess.run([KATRACE, "-v", "-d", "1"], capture_output=True, text=True,
                           timeout=60)
        line = next(l for l in p.stderr.splitlines() if "kernel features:" in l)
        items = line.split("kernel features: ", 1)[1].split(" (", 1)[0].split(", ")
        _features = {k.rsplit(" ", 1)[0]: k.endswith(" yes") for k in items}
    return _features


def reset_reason(name):
    """The reset reason katrace reports: the kernel's name from Linux 6.10,
    None before (tcp_send_reset had no reason)."""
    return name if kernel_features()["tcp_send_reset reason"] else None


def check(cond, msg):
    if not cond:
        raise Fail(msg)


def wait_line(proc, prefix, timeout=10.0, stream="stdout"):
    """Read lines from proc's stream until one starts with prefix. A read
    blocks: past the timeout, proc is killed, which ends it."""
    f = getattr(proc, stream)
    watchdog = threading.Timer(timeout, proc.kill)
    watchdog.start()
    seen = []
    try:
        while True:
            line = f.readline()
            if not line:
                if proc.poll() is not None:
                    break
                continue
            seen.append(line)
            if line.startswith(prefix):
                return line
    finally:
        watchdog.cancel()
    raise Fail(f"no line starting {prefix!r} from {proc.args[0]} in {timeout} s; got {seen!r}")


class Proc:
    """A child process stopped (and reaped) on exit from the with block."""

    def __init__(self, args, **kw):
        self.p = subprocess.Popen(args, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                                  text=True, **kw)

    @property
    def pid(self):
        return self.p.pid

    def __enter__(self):
        return self

    def stop(self):
        if self.p.poll() is None:
            self.p.send_signal(signal.SIGTERM)
            try:
                self.p.wait(5)
            except subprocess.TimeoutExpired:
                self.p.kill()
                self.p.wait()

    def __exit__(self, *a):
        self.stop()


class Netns:
    """A network namespace of our own, loopback up, removed on exit."""

    def __init__(self, name, sysctls=()):
        self.name = name
        subprocess.run(["ip", "netns", "del", name], stderr=subprocess.DEVNULL)
        subprocess.run(["ip", "netns", "add", name], check=True)
        subprocess.run(["ip", "-n", name, "link", "set", "lo", "up"], check=True)
        for kv in sysctls:
            subprocess.run(["ip", "netns", "exec", name, "sysctl", "-qw", kv], check=True)

    def cmd(self, args):
        return ["ip", "netns", "exec", self.name, *args]

    def __enter__(self):
        return self

    def __exit__(self, *a):
        subprocess.run(["ip", "netns", "del", self.name])


class NodeServer(Proc):
    def __init__(self, keepalive_ms, host="127.0.0.1", port=0, netns=None):
        args = ["node", os.path.join(SERVERS, "keepalive.js"), str(port), str(keepalive_ms), host]
        super().__init__(netns.cmd(args) if netns else args)
        self.host = host
        self.port = int(wait_line(self.p, "ready").split()[1])


class PyPeer(Proc):
    """tests/servers/tcp_peer.py in one of its modes."""

    def __init__(self, mode, netns=None):
        args = [sys.executable, os.path.join(SERVERS, "tcp_peer.py"), mode]
        super().__init__(netns.cmd(args) if netns else args)
        self.port = int(wait_line(self.p, "ready").split()[1])


class Katrace(Proc):
    """katrace --json with the given arguments, at --level level when one is
    given; records() stops it and parses."""

    def __init__(self, *args, level=None):
        super().__init__([KATRACE, "--json", *(["--level", level] if level else []), *args])
        wait_line(self.p, "katrace: tracing", stream="stderr")
        self.out = None

    def finish(self, settle=0.3):
        time.sleep(settle)
        if self.p.poll() is None:
            self.p.send_signal(signal.SIGINT)
        out, err = self.p.communicate(timeout=15)
        self.stderr = err
        self.out = [json.loads(l) for l in out.splitlines() if l.strip()]
        return self.out

    def records(self, type_="close", **match):
        recs = self.out if self.out is not None else self.finish()
        return [r for r in recs if r["type"] == type_ and
                all(r.get(k) == v for k, v in match.items())]


_unprivileged_copy = None


def as_user(user, args):
    """args run as another user. katrace is copied where any user can run it:
    the checkout may sit in a directory only root can enter."""
    global _unprivileged_copy
    if _unprivileged_copy is None:
        import atexit
        import shutil
        import tempfile
        d = tempfile.mkdtemp(prefix="katrace-user-")
        os.chmod(d, 0o755)
        _unprivileged_copy = os.path.join(d, "katrace")
        shutil.copy(KATRACE, _unprivileged_copy)
        os.chmod(_unprivileged_copy, 0o755)
        atexit.register(shutil.rmtree, d, True)
    args = [_unprivileged_copy if a == KATRACE else a for a in args]
    return ["setpriv", "--reuid", user, "--regid", user, "--clear-groups", *args]


def run_katrace(*args, timeout=20, user=None):
    cmd = [KATRACE, *args]
    if user:
        cmd = as_user(user, cmd)
    return subprocess.run(cmd, capture_output=True, text=True, timeout=timeout)


def http_request(sock, path="/", method="GET", body=b""):
    """Send one request and read its whole response; returns the time it ended."""
    head = f"{method} {path} HTTP/1.1\r\nHost: t\r\nContent-Length: {len(body)}\r\n\r\n"
    sock.sendall(head.encode() + body)
    buf = b""
    while b"\r\n\r\n" not in buf:
        chunk = sock.recv(65536)
        check(chunk, "server closed before answering")
        buf += chunk
    head, _, rest = buf.partition(b"\r\n\r\n")
    length = 0
    for line in head.split(b"\r\n"):
        if line.lower().startswith(b"content-length:"):
            length = int(line.split(b":")[1])
    chunked = b"transfer-encoding: chunked" in head.lower()
    while (chunked and not rest.endswith(b"0\r\n\r\n")) or (not chunked and len(rest) < length):
        chunk = sock.recv(65536)
        check(chunk, "server closed mid-response")
        rest += chunk
    return time.monotonic()


def wait_eof(sock, timeout=10):
    """Block until the peer closes; returns (time, 'fin' or 'rst')."""
    sock.settimeout(timeout)
    try:
        while sock.recv(65536):
            pass
        return time.monotonic(), "fin"
    except ConnectionResetError:
        return time.monotonic(), "rst"


def local_port(sock):
    return sock.getsockname()[1]


def exchange_until_server_closes(port, path="/", host="127.0.0.1"):
    """One request on a fresh connection, then idle until the server closes it;
    returns the client's local port."""
    c = socket.create_connection((host, port))
    http_request(c, path)
    wait_eof(c)
    port = local_port(c)
    c.close()
    return port
