"""The HTML report, opened in headless Chromium (Debian's chromium): from a
race-lab capture, a screenshot kept in build/artifacts, the page's DOM
holding the service, the lost requests' lines and the verdict, and nothing
loaded from outside; and the report of a live run (--html)."""
import html.parser
import json
import os
import socket
import subprocess
import tempfile
import time

from lib import KATRACE, ROOT, Katrace, NodeServer, check, http_request, wait_eof

ARTIFACTS = os.path.join(ROOT, "build", "artifacts")
CAPTURE = os.path.join(ROOT, "tests", "fixtures", "haproxy-backend.katrace")
TRUTH = os.path.join(ROOT, "tests", "fixtures", "haproxy-race.truth.json")
# Chromium, headless and quiet: no first-run, sync, component or update
# traffic of its own, so that its network log holds only what the page asks.
CHROMIUM = ["chromium", "--headless", "--no-sandbox", "--disable-gpu",
            "--disable-background-networking", "--disable-component-update",
            "--disable-default-apps", "--disable-extensions", "--disable-sync",
            "--no-first-run", "--hide-scrollbars", "--window-size=1040,1500"]


class Dom(html.parser.HTMLParser):
    """What the checks need of the page: the services, the failed requests'
    lines, the verdicts, and every address the page could load."""

    def __init__(self, text):
        super().__init__()
        self.services, self.requests, self.verdicts, self.urls = [], [], [], []
        self._in = None
        self.feed(text)

    def handle_starttag(self, tag, attrs):
        a = dict(attrs)
        if tag == "section" and "data-service" in a:
            self.services.append((a["data-service"], a.get("data-verdict")))
        if tag == "td" and a.get("class") == "request":
            self._in = "request"
        if tag == "p" and a.get("class") == "why":
            self._in = "why"
        for k in ("src", "href", "xlink:href", "action", "poster"):
            if k in a:
                self.urls.append(a[k])

    def handle_endtag(self, tag):
        self._in = None

    def handle_data(self, data):
        if self._in == "request":
            self.requests.append(data)
        elif self._in == "why":
            self.verdicts.append(data)


def chromium(page, *flags):
    with tempfile.TemporaryDirectory() as profile:
        p = subprocess.run([*CHROMIUM, f"--user-data-dir={profile}", *flags,
                            "file://" + page], capture_output=True, text=True, timeout=120)
    check(p.returncode == 0, p.stderr[-2000:])
    return p.stdout


def page_requests(page):
    """The URLs the page asked Chromium's network stack for: requests whose
    initiator is an origin (the browser's own, update checks and the like,
    have none)."""
    with tempfile.TemporaryDirectory() as d:
        netlog = os.path.join(d, "net.json")
        chromium(page, f"--log-net-log={netlog}", "--dump-dom")
        events = json.load(open(netlog))["events"]
    return {e["params"]["url"] for e in events
            if "url" in e.get("params", {}) and
            e["params"].get("initiator", "not an origin") != "not an origin"}


def report(capture, out):
    p = subprocess.run([KATRACE, "report", capture, "--html", out], capture_output=True,
                       text=True, timeout=60)
    check(p.returncode == 0 and os.path.getsize(out) > 0, p.stderr)
    return p


def test_report_of_a_race_lab_capture_in_chromium():
    truth = json.load(open(TRUTH))["proxy_502"]
    os.makedirs(ARTIFACTS, exist_ok=True)
    shot = os.path.join(ARTIFACTS, "report.png")
    with tempfile.TemporaryDirectory() as d:
        page, control = os.path.join(d, "report.html"), os.path.join(d, "control.html")
        report(CAPTURE, page)
        chromium(page, f"--screenshot={shot}")
        dom = Dom(chromium(page, "--dump-dom"))
        fetched = page_requests(page)
        # the check sees a page that does fetch: an image from loopback
        open(control, "w").write("<img src='http://127.0.0.1:9/x.png'>")
        control_fetched = page_requests(control)
    check(os.path.getsize(shot) > 20000, "screenshot too small")
    check(open(shot, "rb").read(8) == b"\x89PNG\r\n\x1a\n", "not a PNG")
    check(len(dom.services) == 1 and dom.services[0][1] == "MISMATCH", dom.services)
    check(sorted(dom.requests) == sorted(truth), (dom.requests, truth))
    check(any("5 requests were lost" in v for v in dom.verdicts), dom.verdicts)
    check(not dom.urls and not fetched, (dom.urls, fetched))
    check(control_fetched == {"http://127.0.0.1:9/x.png"}, control_fetched)


def test_live_run_writes_the_report():
    """--html at the end of a live run: the lost request of a real race on
    the page, its query redacted, and the verdict."""
    with tempfile.TemporaryDirectory() as d:
        page = os.path.join(d, "live.html")
        with NodeServer(keepalive_ms=100) as srv, Katrace("-p", str(srv.pid), "--html", page) as kt:
            c = socket.create_connection(("127.0.0.1", srv.port))
            http_request(c, "/first")
            wait_eof(c)	# the backend's FIN: the next request crosses it
            c.sendall(b"POST /lost/7?secret=1 HTTP/1.1\r\nHost: t\r\nContent-Length: 0\r\n\r\n")
            time.sleep(0.1)
            c.close()
            kt.finish()
        text = open(page).read()
        dom = Dom(text)
    check("report written to" in kt.stderr, kt.stderr)
    check(dom.services and dom.services[0][0] == f":{srv.port}", dom.services)
    check(dom.requests == ["POST /lost/7?…"], dom.requests)
    check("secret" not in text and "Traced live: pid" in text, "privacy or heading")


def test_unwritable_html_path_fails_at_once():
    p = subprocess.run([KATRACE, "report", CAPTURE, "--html", "/nonexistent/dir/r.html"],
                       capture_output=True, text=True, timeout=20)
    check(p.returncode != 0 and "cannot write /nonexistent/dir/r.html" in p.stderr and
          len(p.stderr.strip().splitlines()) == 1, p.stderr)
