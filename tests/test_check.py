"""katrace check, a CI regression test for keep-alive timeouts."""
import json
import os
import socket
import subprocess
import tempfile
import xml.etree.ElementTree as ET

from lib import KATRACE, NodeServer, PyPeer, SERVERS, as_user, check
from test_accuracy import true_close_ms


# On every kernel, but two that hold Node's timers to 20 ms across two of
# its runs (the truth, then the check) or 0.2 s after its close: emulation
# does not keep them that close (seen: 51 ms apart under TCG).
KERNEL_MATRIX = True
NATIVE_ONLY = ("test_repeat_shows_requests_failing",
               "test_below_lb_timeout_fails_with_measured_timeout")


def run_check(*args, user=None, timeout=60):
    cmd = [KATRACE, "check", *args]
    if user:
        cmd = as_user(user, cmd)
    return subprocess.run(cmd, capture_output=True, text=True, timeout=timeout)


def as_json(p):
    check(p.stdout.count("\n") == 1, p.stdout + p.stderr)
    return json.loads(p.stdout)


def test_below_lb_timeout_fails_with_measured_timeout():
    truth = true_close_ms(1000)	# Node closes ~2.0 s
    with NodeServer(keepalive_ms=1000) as srv:
        p = run_check("--target", f"127.0.0.1:{srv.port}", "--lb-idle-timeout", "3s",
                      "--margin", "1s", "--json")
    r = as_json(p)
    check(p.returncode == 1 and r["result"] == "fail", p.stdout)
    check(r["measured_by"] == "kernel" and r["server_comm"] == "node", r)
    check(abs(r["server_idle_timeout_s"] * 1000 - truth) <= 20,
          f"measured {r['server_idle_timeout_s']}, true {truth:.1f} ms")
    check("server.keepAliveTimeout = 3000" in r["fix"], r["fix"])


def test_above_lb_timeout_passes():
    with NodeServer(keepalive_ms=3000) as srv:	# closes ~4 s
        p = run_check("--target", f"127.0.0.1:{srv.port}", "--lb-idle-timeout", "2s",
                      "--margin", "1s", "--repeat", "2")
    check(p.returncode == 0 and "PASS" in p.stdout, p.stdout + p.stderr)
    check("requests after 1.8 s idle: 2 answered, 0 failed" in p.stdout, p.stdout)


def test_repeat_shows_requests_failing():
    with NodeServer(keepalive_ms=100) as srv:	# closes ~1.1 s
        p = run_check("--target", f"127.0.0.1:{srv.port}", "--lb-idle-timeout", "1500ms",
                      "--margin", "0", "--repeat", "3", "--json")
    r = as_json(p)
    check(p.returncode == 1 and r["repeat"]["failed"] == 3 and r["repeat"]["answered"] == 0, r)


def test_lb_preset_and_spawn():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    server = os.path.join(SERVERS, "keepalive.js")
    p = run_check("--target", f"127.0.0.1:{port}", "--lb", "haproxy", "--margin", "1s",
                  "--spawn", f"exec node {server} {port} 500", "--json")
    r = as_json(p)
    # HAProxy keeps idle server connections 5 s; Node at 500 ms closes at ~1.5 s
    check(p.returncode == 1 and r["lb_idle_timeout_s"] == 5, r)
    check(abs(r["server_idle_timeout_s"] - 1.5) < 0.05, r)
    with socket.socket() as s:	# the spawned server is gone
        check(s.connect_ex(("127.0.0.1", port)) != 0, "the spawned server still listens")


def test_unreachable_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    p = run_check("--target", f"127.0.0.1:{port}", "--lb", "aws-alb")
    check(p.returncode == 2 and "could not check: cannot connect" in p.stdout, p.stdout)


def test_non_http_port():
    with PyPeer("binary") as srv:
        p = run_check("--target", f"127.0.0.1:{srv.port}", "--lb", "aws-alb")
    check(p.returncode == 2 and "does not speak HTTP" in p.stdout, p.stdout + p.stderr)


def test_connection_close_server():
    with NodeServer(keepalive_ms=5000) as srv:
        p = run_check("--target", f"127.0.0.1:{srv.port}", "--lb", "aws-alb", "--path", "/close")
    check(p.returncode == 2 and "closes the connection after every response" in p.stdout,
          p.stdout)


def test_without_root_falls_back_to_the_client_socket():
    with NodeServer(keepalive_ms=500) as srv:
        p = run_check("--target", f"127.0.0.1:{srv.port}", "--lb-idle-timeout", "2s",
                      "--margin", "0", user="65534")
    check(p.returncode == 1, p.stdout + p.stderr)
    check("BPF unavailable" in p.stdout and "measured from the client socket" in p.stdout, p.stdout)
    check("after 1.5" in p.stdout, p.stdout)


def test_junit_report():
    with NodeServer(keepalive_ms=100) as srv, tempfile.TemporaryDirectory() as d:
        path = os.path.join(d, "report.xml")
        p = run_check("--target", f"127.0.0.1:{srv.port}", "--lb-idle-timeout", "1500ms",
                      "--margin", "0", "--junit", path)
        suite = ET.parse(path).getroot()
    check(p.returncode == 1, p.stdout)
    check(suite.tag == "testsuite" and suite.get("failures") == "1" and suite.get("tests") == "1",
          ET.tostring(suite))
    failure = suite.find("testcase/failure")
    check(failure is not None and "closed an idle keep-alive connection" in failure.get("message"),
          ET.tostring(suite))


def test_bad_arguments():
    for args in (["--lb", "aws-alb"], ["--target", "x:1"], ["--target", "h:1", "--lb", "nope"],
                 ["--target", "h:1", "--lb-idle-timeout", "abc"],
                 ["--target", "h:http", "--lb", "aws-alb"],
                 ["--target", "h:1", "--lb", "aws-alb", "--repeat", "3x"]):
        p = run_check(*args)
        check(p.returncode != 0 and p.stderr.strip(), (args, p.stderr))
