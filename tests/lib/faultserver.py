#!/usr/bin/env python3
# SPDX-License-Identifier: MIT
"""faultserver.py - an HTTP server that misbehaves on purpose, for tests.

Usage: faultserver.py BODYFILE [PORT]

Serves the bytes of BODYFILE at every path on 127.0.0.1 (PORT 0 or none:
a free port) and prints the port on stdout once listening. Range requests
("bytes=A-B", "bytes=A-") get a 206 unless the mode says otherwise. The mode
is the first component of the path; state is kept per full path, so
/flaky/a and /flaky/b fail independently. Request numbers count from 1.

  /ok/...        behaves (ETag "v1" and Last-Modified)
  /flaky/...     503 for requests 1 and 2, then ok
  /busy/...      429 with Retry-After: 1 for request 1, then ok
  /gone/...      410 always
  /reset/...     the first body longer than 1000 bytes is cut in the middle
                 with a TCP reset; then ok
  /short/...     the same, but the connection is closed cleanly (short body)
  /stall/...     the first such body stops after 100 bytes for 6 s (a
                 low-speed timeout for the client), then the connection
                 is closed
  /norange/...   ignores Range: always 200 with the whole body
  /nosize/...    ignores Range and sends no Content-Length (closes instead)
  /once200/...   request 2 ignores Range (200, the whole body), as a CDN
                 edge answering from a whole-object cache may; others 206
  /tiny/...      a 1-byte artifact (BODYFILE's first byte), Range ignored
  /badrange/...  request 1 ok, later 206s carry a Content-Range one byte off
  /long/...      request 1 ok, later 206s send 100 bytes more than asked
  /changing/...  request 1 has ETag "v1", later ones "v2"
  /lastmod/...   no ETag, only Last-Modified
  /noid/...      neither ETag nor Last-Modified
  /deny/...      403 for request 2 (a WAF throttling a burst), then ok
  /down/...      request 1 ok, then 503 always
  /grow/...      request 1 ok, later ones say the size is one byte more
  /forbid/...    403 always
  /noasc/...     403 for paths ending in .asc (a signature denied), else ok

Only for tests on loopback. Python 3 standard library only.
"""
import http.server
import socket
import struct
import sys
import threading
import time

LAST_MODIFIED = "Mon, 01 Jan 2024 00:00:00 GMT"


class State:
    def __init__(self):
        self.lock = threading.Lock()
        self.count = {}
        self.cut = set()

    def bump(self, path):
        with self.lock:
            self.count[path] = self.count.get(path, 0) + 1
            return self.count[path]

    def cut_once(self, path):
        with self.lock:
            if path in self.cut:
                return False
            self.cut.add(path)
            return True


def parse_range(value, size):
    """(start, end_inclusive), None for no/unsupported Range, or 'bad'."""
    if not value or not value.startswith("bytes=") or "," in value:
        return None
    a, sep, b = value[6:].partition("-")
    if not sep or not a.isdigit() or (b and not b.isdigit()):
        return None
    start = int(a)
    end = int(b) if b else size - 1
    if start >= size or end < start:
        return "bad"
    return start, min(end, size - 1)


class Handler(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def log_message(self, fmt, *args):
        pass

    def plain(self, status, extra=()):
        msg = ("%d\n" % status).encode()
        self.send_response(status)
        for k, v in extra:
            self.send_header(k, v)
        self.send_header("Content-Length", str(len(msg)))
        self.end_headers()
        self.wfile.write(msg)

    def do_GET(self):
        path = self.path.split("?")[0]
        mode = path.strip("/").split("/")[0]
        n = self.server.state.bump(path)
        body = self.server.body
        size = len(body)
        if mode == "flaky" and n <= 2:
            return self.plain(503)
        if mode == "busy" and n <= 1:
            return self.plain(429, [("Retry-After", "1")])
        if mode == "gone":
            return self.plain(410)
        if mode == "deny" and n == 2:
            return self.plain(403)
        if mode == "down" and n > 1:
            return self.plain(503)
        if mode == "forbid" or (mode == "noasc" and path.endswith(".asc")):
            return self.plain(403)
        if mode == "tiny":
            body = body[:1]
            size = 1
        rng = parse_range(self.headers.get("Range"), size)
        if mode in ("norange", "nosize", "tiny") or (mode == "once200"
                                                     and n == 2):
            rng = None
        if rng == "bad":
            return self.plain(416, [("Content-Range", "bytes */%d" % size)])
        self.send_body(path, mode, n, body, rng)

    def send_body(self, path, mode, n, body, rng):
        size = len(body)
        etag = '"v2"' if mode == "changing" and n > 1 else '"v1"'
        start, end = rng if rng else (0, size - 1)
        part = body[start:end + 1]
        if mode == "long" and n > 1:
            part = body[start:end + 101]
        self.send_response(206 if rng else 200)
        if rng:
            shift = 1 if mode == "badrange" and n > 1 else 0
            total = size + 1 if mode == "grow" and n > 1 else size
            self.send_header("Content-Range", "bytes %d-%d/%d" %
                             (start + shift, end + shift, total))
        if mode not in ("lastmod", "noid"):
            self.send_header("ETag", etag)
        if mode != "noid":
            self.send_header("Last-Modified", LAST_MODIFIED)
        if mode == "nosize":
            self.send_header("Connection", "close")
            self.close_connection = True
        else:
            self.send_header("Content-Length", str(len(part)))
        self.end_headers()
        if (mode in ("reset", "short", "stall") and len(part) > 1000
                and self.server.state.cut_once(path)):
            return self.cut(mode, part)
        self.wfile.write(part)

    def cut(self, mode, part):
        if mode == "stall":
            self.wfile.write(part[:100])
            time.sleep(6)
        else:
            self.wfile.write(part[:len(part) // 2])
        if mode == "reset":
            self.connection.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER,
                                       struct.pack("ii", 1, 0))
        self.close_connection = True
        self.connection.close()

    def finish(self):
        try:
            super().finish()
        except OSError:
            pass


class Server(http.server.ThreadingHTTPServer):
    daemon_threads = True

    def handle_error(self, request, client_address):
        pass


def main():
    with open(sys.argv[1], "rb") as f:
        body = f.read()
    port = int(sys.argv[2]) if len(sys.argv) > 2 else 0
    srv = Server(("127.0.0.1", port), Handler)
    srv.body = body
    srv.state = State()
    print(srv.server_address[1], flush=True)
    srv.serve_forever()


if __name__ == "__main__":
    main()
