#!/usr/bin/env python3
# SPDX-License-Identifier: MIT
"""s3server.py - a small S3-compatible, path-style endpoint, for tests.

Usage: s3server.py --root DIR --bucket NAME --port PORT --log FILE
                   [--page-size N] [--host 127.0.0.1]

Serves the regular files under DIR as the objects of bucket NAME on
http://HOST:PORT/NAME/ (path style); an object's key is its path relative
to DIR with '/' separators. PORT 0 picks a free port (then nothing says
which: pass a real port). Prints nothing on stdout; errors go to stderr.
Exits on SIGTERM and SIGINT.

  GET/HEAD /NAME/KEY
      the object: ETag (quoted MD5 hex of the content, computed once per
      (path, size, mtime) and cached), Last-Modified, Content-Length,
      Accept-Ranges: bytes, Content-Type: application/octet-stream.
      One range per request: "bytes=A-B", "bytes=A-", "bytes=-N" -> 206
      with Content-Range; a range that starts at or past the end (or
      "bytes=-0") -> 416 with "Content-Range: bytes */SIZE". A Range that
      does not parse, or asks for several ranges, is ignored (200 with the
      whole object), as S3 does. If-Match / If-None-Match -> 412 / 304.
      A key is percent-decoded from the path; a '..' component -> 403
      AccessDenied; no such file -> 404 NoSuchKey; another bucket -> 404
      NoSuchBucket. Errors carry an S3 <Error> XML body (not for HEAD).
  HEAD /NAME
      200 (HeadBucket).
  GET /NAME?list-type=2[&prefix=P][&delimiter=D][&max-keys=N]
           [&continuation-token=T][&start-after=S][&encoding-type=url]
      ListObjectsV2, shaped as AWS sends it. Keys in UTF-8 binary order;
      with a delimiter, the keys under one common prefix roll up into a
      <CommonPrefixes> entry that counts once toward the page. A page holds
      min(max-keys (default 1000), 1000, --page-size) entries; a truncated
      page carries an opaque NextContinuationToken (urlsafe base64 of the
      last entry returned). MaxKeys echoes max-keys (default 1000).
      Without list-type=2 -> 400 InvalidArgument (only V2 is implemented).
  Any other method -> 405 MethodNotAllowed.

HTTP/1.1 with keep-alive (every response has a Content-Length).

--log FILE gets one line per request (appended, flushed at once):
    METHOD PATH?QUERY STATUS RANGE BYTES_SENT
PATH?QUERY is the request target as sent, RANGE the Range header with
spaces removed ("-" when none), BYTES_SENT the body bytes written (less
than Content-Length when the client went away; counted as written to the
socket, so a client that stops reading may still be counted for what the
kernel buffered).

Only for tests on loopback. Python 3 standard library only.
"""
import argparse
import base64
import email.utils
import hashlib
import http.server
import os
import re
import signal
import stat
import sys
import threading
import time
import urllib.parse

NS = "http://s3.amazonaws.com/doc/2006-03-01/"
XML_DECL = '<?xml version="1.0" encoding="UTF-8"?>\n'
CHUNK = 256 << 10
AWS_MAX_KEYS = 1000

RANGE_RE = re.compile(r"^bytes=(\d*)-(\d*)$")


def xml_escape(s):
    return (s.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")
            .replace('"', "&quot;").replace("'", "&apos;"))


def utf8(s):
    # File names that are not UTF-8 come back from os with lone surrogates.
    return s.encode("utf-8", "surrogateescape")


def iso8601(mtime):
    return time.strftime("%Y-%m-%dT%H:%M:%S.000Z", time.gmtime(int(mtime)))


def http_date(mtime):
    return email.utils.formatdate(int(mtime), usegmt=True)


class Store:
    """The bucket: files under root, and their cached MD5s."""

    def __init__(self, root, bucket, page_size):
        self.root = os.path.realpath(root)
        self.bucket = bucket
        self.page_size = page_size
        self.lock = threading.Lock()
        self.md5 = {}   # (path, size, mtime_ns) -> hex

    def etag(self, path, st):
        k = (path, st.st_size, st.st_mtime_ns)
        with self.lock:
            v = self.md5.get(k)
        if v is None:
            h = hashlib.md5()
            with open(path, "rb") as f:
                while True:
                    b = f.read(1 << 20)
                    if not b:
                        break
                    h.update(b)
            v = h.hexdigest()
            with self.lock:
                self.md5[k] = v
        return '"%s"' % v

    def path_of(self, key):
        """The file for key, or None (bad key); raises PermissionError for
        a '..' component."""
        parts = key.split("/")
        if ".." in parts:
            raise PermissionError(key)
        if "\0" in key or not key:
            return None
        return os.path.join(self.root, *[p for p in parts if p])

    def keys(self):
        """Every (key, path, stat) under root, sorted by UTF-8 bytes."""
        out = []
        for d, dirs, files in os.walk(self.root):
            dirs.sort()
            rel = os.path.relpath(d, self.root)
            for name in files:
                p = os.path.join(d, name)
                try:
                    st = os.stat(p)
                except OSError:
                    continue
                if not stat.S_ISREG(st.st_mode):
                    continue
                key = name if rel == "." else rel.replace(os.sep, "/") + "/" + name
                out.append((utf8(key), key, p, st))
        out.sort(key=lambda e: e[0])
        return out


def encode_token(kind, value):
    return base64.urlsafe_b64encode(kind + utf8(value)).decode("ascii")


def decode_token(tok):
    """(kind, bytes) or None. kind b"K": after this key; b"P": after every
    key under this common prefix."""
    try:
        raw = base64.urlsafe_b64decode(tok.encode("ascii"))
    except (ValueError, UnicodeEncodeError):
        return None
    if raw[:1] not in (b"K", b"P"):
        return None
    return raw[:1], raw[1:]


class Handler(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server_version = "sffs-s3server"

    def version_string(self):
        return self.server_version
    timeout = 300   # idle keep-alive connections go away eventually

    # -- plumbing ---------------------------------------------------------

    def log_message(self, fmt, *args):
        pass   # the request log is --log; see log_error

    def log_error(self, fmt, *args):
        sys.stderr.write("s3server: " + (fmt % args) + "\n")

    def note(self, status, sent):
        rng = self.headers.get("Range") if self.headers else None
        rng = "-" if rng is None else (re.sub(r"\s+", "", rng) or "-")
        line = "%s %s %d %s %d\n" % (self.command, self.path, status, rng, sent)
        self.server.log_line(line)

    def drain_body(self):
        n = self.headers.get("Content-Length")
        if n:
            try:
                n = int(n)
            except ValueError:
                self.close_connection = True
                return
            while n > 0:
                b = self.rfile.read(min(n, CHUNK))
                if not b:
                    break
                n -= len(b)

    def reply(self, status, body=b"", headers=(), ctype="application/xml"):
        self.send_response(status)
        if body or ctype:
            self.send_header("Content-Type", ctype)
        for k, v in headers:
            self.send_header(k, v)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        sent = 0
        if self.command != "HEAD" and body:
            try:
                self.wfile.write(body)
                sent = len(body)
            except (BrokenPipeError, ConnectionResetError):
                self.close_connection = True
        self.note(status, sent)

    def error(self, status, code, message, resource=None, headers=()):
        body = (XML_DECL + "<Error><Code>%s</Code><Message>%s</Message>"
                "<Resource>%s</Resource><RequestId>sffs-test</RequestId>"
                "</Error>" % (xml_escape(code), xml_escape(message),
                              xml_escape(resource or self.path)))
        self.reply(status, body.encode("utf-8"), headers)

    def route(self):
        """(bucket, key, query dict) from the request target."""
        u = urllib.parse.urlsplit(self.path)
        path = urllib.parse.unquote(u.path, errors="surrogateescape")
        q = urllib.parse.parse_qs(u.query, keep_blank_values=True)
        query = {k: v[-1] for k, v in q.items()}
        rest = path.lstrip("/")
        bucket, _, key = rest.partition("/")
        return bucket, key, query

    # -- methods ----------------------------------------------------------

    def do_GET(self):
        self.handle_request()

    def do_HEAD(self):
        self.handle_request()

    def not_allowed(self):
        self.drain_body()
        self.error(405, "MethodNotAllowed",
                   "The specified method is not allowed against this resource.",
                   headers=[("Allow", "GET, HEAD")])

    do_PUT = do_POST = do_DELETE = do_PATCH = do_OPTIONS = not_allowed

    def handle_request(self):
        self.drain_body()
        try:
            bucket, key, query = self.route()
        except ValueError:
            self.error(400, "InvalidURI", "Couldn't parse the specified URI.")
            return
        store = self.server.store
        if bucket != store.bucket:
            self.error(404, "NoSuchBucket", "The specified bucket does not exist",
                       "/" + bucket)
            return
        if key == "":
            if self.command == "HEAD":
                self.reply(200, ctype=None)
            else:
                self.list_objects(query)
            return
        self.get_object(key)

    # -- objects ----------------------------------------------------------

    def get_object(self, key):
        store = self.server.store
        try:
            path = store.path_of(key)
        except PermissionError:
            self.error(403, "AccessDenied", "Access Denied")
            return
        st = None
        if path is not None:
            try:
                st = os.stat(path)
            except OSError:
                st = None
        if st is None or not stat.S_ISREG(st.st_mode):
            self.error(404, "NoSuchKey", "The specified key does not exist.",
                       key)
            return
        size = st.st_size
        etag = store.etag(path, st)
        common = [("ETag", etag), ("Last-Modified", http_date(st.st_mtime)),
                  ("Accept-Ranges", "bytes")]
        im = self.headers.get("If-Match")
        if im is not None and im.strip() not in ("*", etag):
            self.error(412, "PreconditionFailed",
                       "At least one of the pre-conditions you specified did not hold")
            return
        inm = self.headers.get("If-None-Match")
        if inm is not None and inm.strip() in ("*", etag):
            self.send_response(304)
            for k, v in common:
                self.send_header(k, v)
            self.send_header("Content-Length", "0")
            self.end_headers()
            self.note(304, 0)
            return
        start, end = 0, size - 1
        status = 200
        rng = self.headers.get("Range")
        if rng is not None:
            m = RANGE_RE.match(re.sub(r"\s+", "", rng))
            first, last = (m.group(1), m.group(2)) if m else ("", "")
            if m and first == "" and last != "":        # bytes=-N
                n = int(last)
                if n == 0 or size == 0:
                    start = None
                else:
                    start, end, status = max(0, size - n), size - 1, 206
            elif m and first != "" and (last == "" or int(last) >= int(first)):
                a = int(first)
                if a >= size:
                    start = None
                else:
                    b = size - 1 if last == "" else min(int(last), size - 1)
                    start, end, status = a, b, 206
            # else: malformed or several ranges: ignored, 200 whole object
            if start is None:
                self.error(416, "InvalidRange",
                           "The requested range is not satisfiable",
                           key, headers=[("Content-Range", "bytes */%d" % size)]
                           + common[:2])
                return
        length = end - start + 1 if size else 0
        self.send_response(status)
        self.send_header("Content-Type", "application/octet-stream")
        for k, v in common:
            self.send_header(k, v)
        if status == 206:
            self.send_header("Content-Range", "bytes %d-%d/%d" % (start, end, size))
        self.send_header("Content-Length", str(length))
        self.end_headers()
        sent = 0
        if self.command == "GET" and length:
            try:
                with open(path, "rb") as f:
                    f.seek(start)
                    left = length
                    while left > 0:
                        b = f.read(min(CHUNK, left))
                        if not b:       # file shrank under us
                            self.close_connection = True
                            break
                        self.wfile.write(b)
                        sent += len(b)
                        left -= len(b)
            except (BrokenPipeError, ConnectionResetError):
                self.close_connection = True
            except OSError as e:
                self.log_error("reading %s: %s", path, e)
                self.close_connection = True
        self.note(status, sent)

    # -- ListObjectsV2 ----------------------------------------------------

    def list_objects(self, q):
        store = self.server.store
        if q.get("list-type") != "2":
            self.error(400, "InvalidArgument",
                       "Only ListObjectsV2 (list-type=2) is implemented")
            return
        prefix = q.get("prefix", "")
        delim = q.get("delimiter", "")
        enc = q.get("encoding-type")
        if enc not in (None, "url"):
            self.error(400, "InvalidArgument", "Invalid Encoding Method specified in Request")
            return
        try:
            max_keys = int(q.get("max-keys", AWS_MAX_KEYS))
            if max_keys < 0:
                raise ValueError
        except ValueError:
            self.error(400, "InvalidArgument", "Provided max-keys not an integer or within integer range")
            return
        page = min(max_keys, AWS_MAX_KEYS)
        if store.page_size:
            page = min(page, store.page_size)
        token = q.get("continuation-token")
        after = None    # (kind, bytes)
        if token is not None:
            after = decode_token(token)
            if after is None:
                self.error(400, "InvalidArgument", "The continuation token provided is incorrect")
                return
        elif "start-after" in q:
            after = (b"K", utf8(q["start-after"]))

        bprefix, bdelim = utf8(prefix), utf8(delim)
        contents, prefixes, entries = [], [], 0
        last = None     # (kind, str) of the last entry taken
        truncated = False
        for bkey, key, path, st in store.keys() if page else ():
            if not bkey.startswith(bprefix):
                continue
            if after is not None:
                kind, mark = after
                if bkey <= mark or (kind == b"P" and bkey.startswith(mark)):
                    continue
            cp = None
            if bdelim:
                i = bkey.find(bdelim, len(bprefix))
                if i >= 0:
                    cp = bkey[:i + len(bdelim)]
            if cp is not None and last is not None and last[0] == b"P" \
                    and utf8(last[1]) == cp:
                continue        # rolled up into the entry just taken
            if entries == page:
                truncated = True
                break
            entries += 1
            if cp is None:
                contents.append((key, path, st))
                last = (b"K", key)
            else:
                s = cp.decode("utf-8", "surrogateescape")
                prefixes.append(s)
                last = (b"P", s)

        def text(s):
            if enc == "url":
                s = urllib.parse.quote(utf8(s), safe="/")
            return xml_escape(s)

        x = [XML_DECL, '<ListBucketResult xmlns="%s">' % NS,
             "<Name>%s</Name>" % xml_escape(store.bucket),
             "<Prefix>%s</Prefix>" % text(prefix)]
        if "start-after" in q:
            x.append("<StartAfter>%s</StartAfter>" % text(q["start-after"]))
        if token is not None:
            x.append("<ContinuationToken>%s</ContinuationToken>" % xml_escape(token))
        if truncated:
            x.append("<NextContinuationToken>%s</NextContinuationToken>"
                     % encode_token(*(last[0], last[1])))
        x.append("<KeyCount>%d</KeyCount>" % entries)
        x.append("<MaxKeys>%d</MaxKeys>" % max_keys)
        if "delimiter" in q:
            x.append("<Delimiter>%s</Delimiter>" % text(delim))
        if enc:
            x.append("<EncodingType>url</EncodingType>")
        x.append("<IsTruncated>%s</IsTruncated>" % ("true" if truncated else "false"))
        for key, path, st in contents:
            try:
                etag = store.etag(path, st)
            except OSError:
                etag = '""'
            x.append("<Contents><Key>%s</Key><LastModified>%s</LastModified>"
                     "<ETag>%s</ETag><Size>%d</Size>"
                     "<StorageClass>STANDARD</StorageClass></Contents>"
                     % (text(key), iso8601(st.st_mtime), xml_escape(etag),
                        st.st_size))
        for p in prefixes:
            x.append("<CommonPrefixes><Prefix>%s</Prefix></CommonPrefixes>" % text(p))
        x.append("</ListBucketResult>")
        body = "".join(x).encode("utf-8", "surrogateescape")
        self.reply(200, body)


class Server(http.server.ThreadingHTTPServer):
    daemon_threads = True
    allow_reuse_address = True

    def __init__(self, addr, store, logf):
        self.store = store
        self.logf = logf
        self.log_lock = threading.Lock()
        super().__init__(addr, Handler)

    def log_line(self, line):
        with self.log_lock:
            self.logf.write(line)
            self.logf.flush()

    def handle_error(self, request, client_address):
        e = sys.exc_info()[1]
        if isinstance(e, (ConnectionError, TimeoutError)):
            return
        super().handle_error(request, client_address)


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--root", required=True)
    ap.add_argument("--bucket", required=True)
    ap.add_argument("--port", type=int, required=True)
    ap.add_argument("--log", required=True)
    ap.add_argument("--page-size", type=int, default=0)
    ap.add_argument("--host", default="127.0.0.1")
    a = ap.parse_args()
    if not os.path.isdir(a.root):
        ap.error("--root %s is not a directory" % a.root)
    if a.page_size < 0:
        ap.error("--page-size must be positive")
    if not a.bucket or "/" in a.bucket:
        ap.error("bad --bucket")
    logf = open(a.log, "a", encoding="utf-8", errors="surrogateescape")

    def stop(signum, frame):
        raise SystemExit(0)

    signal.signal(signal.SIGTERM, stop)
    signal.signal(signal.SIGINT, stop)
    store = Store(a.root, a.bucket, a.page_size)
    try:
        srv = Server((a.host, a.port), store, logf)
    except OSError as e:
        print("s3server: cannot listen on %s:%d: %s" % (a.host, a.port, e),
              file=sys.stderr)
        return 1
    try:
        srv.serve_forever(poll_interval=0.2)
    except SystemExit:
        pass
    finally:
        srv.server_close()
        logf.close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
