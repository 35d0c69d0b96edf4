"""-w records the stream; `katrace report` replays it to the same output."""
import os
import socket
import subprocess
import tempfile
import time
import zlib

from lib import KATRACE, Katrace, NodeServer, as_user, check, http_request, run_katrace, wait_eof


KERNEL_MATRIX = True


def record_session(path, *extra, level=None):
    with NodeServer(keepalive_ms=100) as srv, \
            Katrace("-p", str(srv.pid), "-w", path, *extra, level=level) as kt:
        for i in range(3):
            c = socket.create_connection(("127.0.0.1", srv.port))
            c.sendall(f"GET /a/{i}?token=abc HTTP/1.1\r\nHost: t\r\nCookie: s3cret\r\n\r\n".encode())
            c.recv(65536)
            if i == 2:
                wait_eof(c)	# the server's idle close
            c.close()
        c = socket.create_connection(("127.0.0.1", srv.port))
        http_request(c, "/first")
        wait_eof(c)
        c.sendall(b"POST /lost?x=1 HTTP/1.1\r\nHost: t\r\nContent-Length: 0\r\n\r\n")
        time.sleep(0.1)
        c.close()
        return kt.finish()


def test_replay_prints_what_the_live_run_printed(level=None):
    """The replay of a capture, without root, prints what the live run
    printed, and the capture holds no header, query or body."""
    with tempfile.TemporaryDirectory() as d:
        cap = os.path.join(d, "run.katrace")
        live = record_session(cap, level=level)
        # no root needed to replay (the capture is 0600: hand it over)
        os.chmod(d, 0o755)
        os.chmod(cap, 0o644)
        rep = subprocess.run(as_user("65534", [KATRACE, "report", cap, "--json"]),
                             capture_output=True, text=True)
        check(rep.returncode == 0, rep.stderr)
        import json
        replayed = [json.loads(l) for l in rep.stdout.splitlines()]
        check(replayed == live, f"live {live}\nreplay {replayed}")
        check(any(r["type"] == "lost_request" for r in live), live)
        check(live[-1]["type"] == "summary", live[-1])
        text_live = run_katrace("report", cap)
        check("SUMMARY" in text_live.stdout and "LOST" in text_live.stdout, text_live.stdout)
        raw = open(cap, "rb").read()
        body = zlib.decompress(raw[raw.index(b"\x1f\x8b"):], 47)
        for secret in (b"s3cret", b"token=abc", b"Cookie", b"Host", b"x=1"):
            check(secret not in body, f"{secret} was written to the capture")


def test_bad_capture_files_give_clear_errors():
    with tempfile.TemporaryDirectory() as d:
        cap = os.path.join(d, "good.katrace")
        record_session(cap)
        good = open(cap, "rb").read()
        mid = good.index(b"\x1f\x8b") + (len(good) - good.index(b"\x1f\x8b")) // 2
        cases = {
            "foreign": (b"\x7fELF" + b"\0" * 600, "not a katrace capture file"),
            "empty": (b"", "not a katrace capture file"),
            "newer": (good[:8] + (99).to_bytes(4, "little") + good[12:], "is newer than this katrace"),
            "header-cut": (good[:100], "truncated capture"),
            "truncated": (good[:len(good) - 40], "truncated"),
            "corrupted": (good[:mid] + bytes(b ^ 0x5a for b in good[mid:mid + 16]) + good[mid + 16:],
                          "corrupted"),
            "tail-flipped": (good[:-6] + bytes(b ^ 0xff for b in good[-6:]), "corrupted"),
        }
        for name, (data, expect) in cases.items():
            path = os.path.join(d, name)
            with open(path, "wb") as f:
                f.write(data)
            p = subprocess.run([KATRACE, "report", path], capture_output=True, text=True, timeout=10)
            err = p.stderr.strip()
            check(p.returncode == 1 and expect in err and err.count("\n") == 0,
                  f"{name}: rc {p.returncode}, {err!r}")
        p = subprocess.run([KATRACE, "report", os.path.join(d, "missing")], capture_output=True,
                           text=True)
        check(p.returncode == 1 and "cannot open" in p.stderr, p.stderr)
