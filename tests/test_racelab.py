"""Against real proxies, katrace's lost requests are exactly the
proxy's own 502s, named from the backend and from the proxy."""
import json
import os
import subprocess

from lib import ROOT, check

RACELAB = os.path.join(ROOT, "tools", "racelab")


def racelab(*args, timeout=400):
    p = subprocess.run([RACELAB, "--json", *args], capture_output=True, text=True,
                       timeout=timeout)
    check(p.returncode == 0, f"racelab failed: {p.stderr[-2000:]}")
    return json.loads(p.stdout)


def check_exact(r):
    truth = set(r["proxy_502"])
    for side in ("backend", "proxy"):
        got = set(r["lost_" + side])
        check(got == truth, f"{r['proxy']}, katrace on the {side}: missed {sorted(truth - got)}, "
                            f"extra {sorted(got - truth)}")
    for side in ("backend", "proxy"):
        for rec in r["records_" + side]:
            if rec["type"] == "lost_request" and rec["cause"] == "keepalive_race":
                check(rec["idle_ms"] is not None and rec["close_to_request_ms"] is not None, rec)
                check(abs(rec["idle_ms"] - (r["keepalive_ms"] + 1000)) < 30, rec)


def test_haproxy_502s_named_exactly():
    r = racelab("--proxy", "haproxy", "--workers", "40", "--rounds", "12", "--min-502", "1",
                "--method", "POST,GET,PUT,DELETE")
    # the sets compared exactly; one 502 will do (a slow machine once gave 1 in 8000)
    check(len(r["proxy_502"]) >= 1, f"no 502 in {r['requests']} requests")
    check_exact(r)


def test_nginx_502s_named_exactly():
    r = racelab("--proxy", "nginx", "--workers", "40", "--rounds", "12", "--min-502", "3",
                "--method", "POST")
    # nginx re-sends a failed pooled request on a new connection, hiding
    # most races (this session: 0 to 2 502s in 8000 requests, some runs):
    # what it failed, katrace names exactly, even when that is nothing
    check(r["requests"] >= 480, r["requests"])
    check_exact(r)


def test_control_backend_outlives_proxy():
    """Backend idle timeout (6 s) above the proxy's (1 s): no lost request."""
    for proxy in ("haproxy", "nginx"):
        r = racelab("--proxy", proxy, "--keepalive-ms", "5000", "--proxy-idle-ms", "1000",
                    "--gap-ms", "1500", "--spread-ms", "500", "--rounds", "5", "--workers", "40",
                    "--method", "POST")
        check(r["proxy_502"] == [] and r["lost_backend"] == [] and r["lost_proxy"] == [], r)
        check(r["statuses"] == {"200": r["requests"]}, r["statuses"])
