"""In the race lab, the inferred backend timeout is within 2 % (or
20 ms) of the backend's true close time, and the verdict is right."""
import socket

from lib import NodeServer, check, http_request, wait_eof
from test_racelab import racelab


def true_close_ms(keepalive_ms):
    """When this Node.js really closes an idle connection, seen by a client."""
    with NodeServer(keepalive_ms=keepalive_ms) as srv:
        c = socket.create_connection(("127.0.0.1", srv.port))
        t_resp = http_request(c)
        t_close, how = wait_eof(c, timeout=keepalive_ms / 1000 + 5)
        check(how == "fin", how)
        return (t_close - t_resp) * 1000


def summary_of(r, side="backend"):
    summaries = [x for x in r["records_" + side] if x["type"] == "summary"]
    check(len(summaries) == 1, summaries)
    services = [s for s in summaries[0]["services"] if s["traced"] == "backend"]
    check(len(services) == 1, summaries[0])
    return services[0]


def check_inferred(keepalive_ms, spread_ms, rounds):
    truth = true_close_ms(keepalive_ms)
    r = racelab("--keepalive-ms", str(keepalive_ms), "--gap-ms", str(round(truth)),
                "--spread-ms", str(spread_ms), "--rounds", str(rounds), "--workers", "24",
                "--trace", "backend")
    svc = summary_of(r)
    got = svc["backend_idle"]["timeout_s"]
    check(got is not None, svc)
    err_ms = abs(got * 1000 - truth)
    check(err_ms <= max(20, 0.02 * truth), f"inferred {got * 1000:.1f} ms, true {truth:.1f} ms")
    # the proxy (60 s) keeps connections far longer than the backend
    check(svc["verdict"] == "MISMATCH", svc)
    check("server.keepAliveTimeout" in svc["fix"], svc["fix"])
    return got, truth


def test_inferred_timeout_about_1s():
    check_inferred(200, 30, 8)


def test_inferred_timeout_about_5s():
    check_inferred(4000, 60, 6)


def test_control_verdict_ok():
    # nginx: its upstream keepalive_timeout is a strict idle timeout (HAProxy's
    # pool-purge-delay closes half the idle connections per period, at best)
    r = racelab("--proxy", "nginx", "--keepalive-ms", "5000", "--proxy-idle-ms", "1000", "--gap-ms", "1500",
                "--spread-ms", "500", "--rounds", "5", "--workers", "24", "--trace", "backend")
    svc = summary_of(r)
    check(svc["verdict"] == "OK" and svc["lost"] == 0, svc)
    check(svc["backend_idle"]["closes"] == 0 and svc["peer_idle"]["timeout_s"] is not None, svc)
