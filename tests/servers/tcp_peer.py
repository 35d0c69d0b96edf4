#!/usr/bin/env python3
"""A plain TCP server for cases Node.js cannot be made to produce on purpose.

usage: tcp_peer.py MODE [HOST]; prints "ready PORT".
  close-unread  accept, wait until the client's bytes have arrived, close
                without reading them: the kernel answers with RST (abort on close)
  binary        accept, read, answer with bytes that are not HTTP, keep open
  http-then-close-unread
                accept, answer one HTTP request, then close as soon as the next
                one has arrived, without reading it (RST, TCP_ABORT_ON_CLOSE):
                a keep-alive server whose idle timer fires as a request lands
  http-once-then-unlisten
                answer one HTTP request, stop listening, close the idle
                connection (FIN) after 0.2 s, and stay alive: a backend being
                restarted behind a proxy that still pools the connection
"""
import socket
import sys
import time

mode = sys.argv[1]
host = sys.argv[2] if len(sys.argv) > 2 else "127.0.0.1"
srv = socket.socket(socket.AF_INET6 if ":" in host else socket.AF_INET)
srv.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
srv.bind((host, 0))
srv.listen(16)
print("ready", srv.getsockname()[1], flush=True)


def answer_one_request(conn):
    req = b""
    while b"\r\n\r\n" not in req:
        req += conn.recv(65536)
    conn.sendall(b"HTTP/1.1 200 OK\r\nContent-Length: 3\r\n\r\nok\n")


while True:
    conn, _ = srv.accept()
    if mode == "close-unread":
        # peek (does not consume) so that close() finds the data still unread
        conn.recv(1, socket.MSG_PEEK)
        time.sleep(0.05)
        conn.close()
    elif mode == "http-then-close-unread":
        answer_one_request(conn)
        conn.recv(1, socket.MSG_PEEK)
        time.sleep(0.05)
        conn.close()
    elif mode == "http-once-then-unlisten":
        answer_one_request(conn)
        srv.close()
        time.sleep(0.2)
        conn.close()
        time.sleep(3600)
    elif mode == "binary":
        conn.recv(65536)
        conn.sendall(bytes(range(256)) * 4)
        time.sleep(0.2)
        conn.close()
