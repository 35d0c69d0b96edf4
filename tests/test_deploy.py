"""What an SRE installs beside katrace: the Prometheus alerting rules and the
Grafana dashboard (tools/deploy/), checked with Prometheus's own promtool
and against the metrics a real daemon exports."""
import json
import os
import re
import signal
import subprocess
import tempfile
import time

from lib import KATRACE, ROOT, check

DEPLOY = os.path.join(ROOT, "tools", "deploy")


def promtool(*args, cwd=DEPLOY):
    return subprocess.run(["promtool", *args], capture_output=True, text=True, cwd=cwd,
                          timeout=60)


def exported_metrics():
    """The metric names a real daemon writes (# TYPE lines), histograms with
    their _bucket, _sum and _count series."""
    with tempfile.TemporaryDirectory() as d:
        prom = os.path.join(d, "k.prom")
        p = subprocess.Popen([KATRACE, "--daemon", "--log", "/dev/null", "--metrics-file", prom],
                             stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
        deadline = time.monotonic() + 30
        while not os.path.exists(prom) and time.monotonic() < deadline:
            time.sleep(0.2)
        p.send_signal(signal.SIGTERM)
        p.wait(timeout=20)
        text = open(prom).read()
    names = set()
    for name, kind in re.findall(r"^# TYPE (\S+) (\S+)$", text, re.M):
        names.add(name)
        if kind == "histogram":
            names |= {name + "_bucket", name + "_sum", name + "_count"}
    check(len(names) > 10, text)
    return names


def used_metrics(expr):
    return set(re.findall(r"\b(katrace_[a-z_]+)\b", expr))


def test_alert_rules_pass_their_promtool_tests():
    """Each alert fires on the series it is for (mismatch, race losses in
    the last hour, other failures, drops, evictions), and not before."""
    p = promtool("check", "rules", "katrace-alerts.yml")
    check(p.returncode == 0 and "5 rules found" in p.stdout, p.stdout + p.stderr)
    p = promtool("test", "rules", "katrace-alerts.test.yml")
    check(p.returncode == 0 and "SUCCESS" in p.stdout, p.stdout + p.stderr)


def test_alerts_and_dashboard_use_only_exported_metrics():
    """Every query of the dashboard parses (promtool, as recording rules,
    Grafana's variables given values) and, like every alert, names only
    metrics katrace exports."""
    exported = exported_metrics()
    dash = json.load(open(os.path.join(DEPLOY, "katrace-dashboard.json")))
    exprs = [t["expr"] for panel in dash["panels"] for t in panel["targets"]]
    check(len(exprs) >= 8, exprs)
    rules = open(os.path.join(DEPLOY, "katrace-alerts.yml")).read()
    alert_exprs = re.findall(r"^\s+expr: (.+)$", rules, re.M)
    check(len(alert_exprs) == 5, alert_exprs)
    for e in exprs + alert_exprs:
        unknown = used_metrics(e) - exported
        check(used_metrics(e) and not unknown, f"{e}: {unknown or 'no katrace metric'}")
    grafana = {"$__rate_interval": "5m", "$__interval": "1m", "$instance": ".*"}
    with tempfile.NamedTemporaryFile("w", suffix=".yml", dir=DEPLOY) as f:
        lines = ["groups:", "  - name: dashboard", "    rules:"]
        for i, e in enumerate(exprs):
            for var, value in grafana.items():
                e = e.replace(var, value)
            lines += [f"      - record: katrace:dashboard:{i}", f"        expr: {json.dumps(e)}"]
        f.write("\n".join(lines) + "\n")
        f.flush()
        p = promtool("check", "rules", f.name)
    check(p.returncode == 0 and f"{len(exprs)} rules found" in p.stdout, p.stdout + p.stderr)


def long_options(*args):
    p = subprocess.run([KATRACE, *args, "--help"], capture_output=True, text=True, timeout=20)
    return set(re.findall(r"(--[a-z][a-z-]+)", p.stdout)) - {"--help", "--usage", "--version"}


def test_debian_package_installs_and_runs():
    """make deb builds a package; dpkg installs it; the installed binary
    runs (a replay, as nobody), its unit file passes systemd-analyze verify,
    and its man page renders with every option and exit code."""
    p = subprocess.run(["make", "-s", "deb"], cwd=ROOT, capture_output=True, text=True,
                       timeout=300)
    check(p.returncode == 0, p.stdout + p.stderr)
    deb = p.stdout.strip().splitlines()[-1]
    p = subprocess.run(["dpkg", "-i", os.path.join(ROOT, deb)], capture_output=True,
                       text=True, timeout=120)
    check(p.returncode == 0, p.stdout + p.stderr)
    try:
        fixture = os.path.join(ROOT, "tests", "fixtures", "haproxy-backend.katrace")
        p = subprocess.run(["runuser", "-u", "nobody", "--", "/usr/bin/katrace", "report",
                            fixture], capture_output=True, text=True, timeout=60)
        check(p.returncode == 0 and "verdict: MISMATCH" in p.stdout, p.stdout[-500:] + p.stderr)
        unit = "/usr/lib/systemd/system/katrace.service"
        check("ExecStart=/usr/bin/katrace --daemon" in open(unit).read(), open(unit).read())
        p = subprocess.run(["systemd-analyze", "verify", unit], capture_output=True, text=True,
                           timeout=60)
        check(p.returncode == 0 and not p.stderr.strip(), p.stdout + p.stderr)
        p = subprocess.run(["man", "-l", "/usr/share/man/man8/katrace.8.gz"], capture_output=True,
                           text=True, timeout=60, env={**os.environ, "MANWIDTH": "100",
                                                       "MANPAGER": "cat"})
        page = re.sub(r".\x08", "", p.stdout)	# overstrike, if any
        check(p.returncode == 0 and "EXIT STATUS" in page, p.stderr)
        missing = {o for o in long_options() | long_options("check") if o not in page}
        check(not missing, f"options missing from the man page: {sorted(missing)}")
        for share in ("katrace-alerts.yml", "katrace-dashboard.json"):
            check(os.path.exists(f"/usr/share/katrace/{share}"), share)
    finally:
        subprocess.run(["dpkg", "-r", "katrace"], capture_output=True, timeout=120)


def free_port():
    import socket
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def firing(prom_port, alertname):
    import urllib.request
    with urllib.request.urlopen(f"http://127.0.0.1:{prom_port}/api/v1/alerts", timeout=5) as r:
        alerts = json.load(r)["data"]["alerts"]
    return [a for a in alerts if a["labels"]["alertname"] == alertname and a["state"] == "firing"]


def wait_ready(prom, port):
    import urllib.request
    deadline = time.monotonic() + 60
    while True:
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{port}/-/ready", timeout=2) as r:
                if r.status == 200:
                    return
        except OSError:
            pass
        check(time.monotonic() < deadline and prom.poll() is None, "prometheus did not start")
        time.sleep(0.5)


def test_real_prometheus_fires_the_race_alert():
    """A real Prometheus scrapes a real daemon every second with the rules
    loaded; a request lost to a real close race on a Node.js backend (the
    kernel's RST) makes KatraceRequestsLostToKeepaliveRace fire for that
    service, and nothing else fires."""
    import socket
    from test_daemon import Daemon
    from lib import NodeServer, http_request, wait_eof
    import test_lost
    prom_port = free_port()
    with tempfile.TemporaryDirectory() as d, Daemon() as daemon, \
            NodeServer(keepalive_ms=100) as srv:
        config = os.path.join(d, "prometheus.yml")
        with open(config, "w") as f:
            f.write(f"""global: {{scrape_interval: 1s, evaluation_interval: 1s}}
rule_files: [{os.path.join(DEPLOY, "katrace-alerts.yml")}]
scrape_configs:
  - job_name: katrace
    static_configs: [{{targets: ["127.0.0.1:{daemon.metrics_port}"]}}]
""")
        prom = subprocess.Popen(["prometheus", f"--config.file={config}",
                                 f"--storage.tsdb.path={d}/data",
                                 f"--web.listen-address=127.0.0.1:{prom_port}"],
                                stdout=subprocess.DEVNULL, stderr=open(f"{d}/prometheus.log", "w"))
        try:
            wait_ready(prom, prom_port)
            # the service's series exist (at 0) before the race, so that
            # increase() sees the loss
            c = socket.create_connection(("127.0.0.1", srv.port))
            http_request(c, "/first")
            wait_eof(c)
            c.close()
            time.sleep(4)
            c = socket.create_connection(("127.0.0.1", srv.port))
            http_request(c, "/second")
            wait_eof(c)	# the backend's FIN is here: the next request races it
            c.sendall(test_lost.LOST_REQ)
            time.sleep(0.1)
            c.close()
            deadline = time.monotonic() + 30
            while not firing(prom_port, "KatraceRequestsLostToKeepaliveRace"):
                check(time.monotonic() < deadline and prom.poll() is None,
                      "the race alert did not fire")
                time.sleep(1)
            alert = firing(prom_port, "KatraceRequestsLostToKeepaliveRace")[0]
            check(alert["labels"]["service"] == f":{srv.port}", alert)
            for other in ("KatraceRequestsFailed", "KatraceRingBufferDrops", "KatraceEvictions"):
                check(not firing(prom_port, other), other)
        finally:
            prom.terminate()
            prom.wait(20)
