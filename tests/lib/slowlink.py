#!/usr/bin/env python3
# SPDX-License-Identifier: MIT
"""slowlink.py - a threaded, blocking TCP proxy on 127.0.0.1: a slow link.

Usage: slowlink.py --target HOST:PORT [--listen-port PORT] [--delay-ms N]
                   [--rate BYTES_PER_S] [--max-seconds S]

A second kind of WAN on loopback, built unlike delayproxy.py on purpose so
that a result that holds through both does not depend on one proxy's
quirks: delayproxy.py is one asyncio event loop with 1 MiB reads and
pipelined delays; this one is a thread per direction of every connection,
blocking sockets, 64 KiB reads and time.sleep.

Listens on 127.0.0.1:PORT (0, the default: a free port), prints the port on
stdout (one line) once listening, and forwards every connection to
HOST:PORT (plain TCP: HTTP and TLS alike).

  --delay-ms N     every chunk read from the client (at most 64 KiB) is
                   held N ms before it is forwarded to the server; the
                   thread reads the next chunk only after that, so every
                   request pays N ms (one larger than 64 KiB pays it per
                   64 KiB); answers are not delayed
  --rate B         the server->client direction of each connection is
                   paced to B bytes per second (a token bucket holding at
                   most 64 KiB, so there is no burst); SI or binary
                   suffixes: 16M = 16 MiB/s. 0 (the default): unlimited
  --max-seconds S  exit after S seconds (default 3600); also exits on
                   SIGTERM and SIGINT

Only for tests on loopback. Python 3 standard library only.
"""
import argparse
import signal
import socket
import sys
import threading
import time

CHUNK = 64 << 10


def parse_target(s):
    host, sep, port = s.rpartition(":")
    if not sep or not host or not port.isdigit():
        raise argparse.ArgumentTypeError("expected HOST:PORT, got %r" % s)
    return host.strip("[]"), int(port)


def parse_rate(s):
    units = {"": 1, "K": 1 << 10, "M": 1 << 20, "G": 1 << 30}
    s = s.strip().upper().removesuffix("B").removesuffix("I")
    suffix = s[-1:] if s[-1:] in "KMG" else ""
    try:
        value = float(s[:len(s) - len(suffix)])
    except ValueError:
        raise argparse.ArgumentTypeError("bad rate %r" % s) from None
    if value < 0:
        raise argparse.ArgumentTypeError("negative rate %r" % s)
    return value * units[suffix]


class Pacer:
    """A token bucket: take(n) sleeps until n more bytes may go."""

    def __init__(self, rate):
        self.rate = rate
        self.tokens = float(CHUNK)
        self.last = time.monotonic()

    def take(self, n):
        if self.rate <= 0:
            return
        now = time.monotonic()
        self.tokens = min(float(CHUNK), self.tokens + (now - self.last) * self.rate)
        self.last = now
        self.tokens -= n
        if self.tokens < 0:
            time.sleep(-self.tokens / self.rate)


def shut(sock, how):
    try:
        sock.shutdown(how)
    except OSError:
        pass


def client_to_server(cli, srv, delay):
    """Hold each chunk `delay` s, then forward it: one at a time."""
    try:
        while True:
            data = cli.recv(CHUNK)
            if not data:
                break
            if delay > 0:
                time.sleep(delay)
            srv.sendall(data)
    except OSError:
        pass
    shut(srv, socket.SHUT_WR)


def server_to_client(srv, cli, rate):
    pacer = Pacer(rate)
    try:
        while True:
            data = srv.recv(CHUNK)
            if not data:
                break
            pacer.take(len(data))
            cli.sendall(data)
    except OSError:
        pass
    shut(cli, socket.SHUT_WR)


def serve_pair(cli, target, delay, rate):
    try:
        srv = socket.create_connection(target, timeout=10)
    except OSError as e:
        print("slowlink: connect to %s:%d failed: %s" % (target[0], target[1], e),
              file=sys.stderr, flush=True)
        cli.close()
        return
    srv.settimeout(None)
    for s in (cli, srv):
        s.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    up = threading.Thread(target=client_to_server, args=(cli, srv, delay),
                          daemon=True)
    up.start()
    server_to_client(srv, cli, rate)
    up.join()
    srv.close()
    cli.close()


def main():
    ap = argparse.ArgumentParser(
        description="threaded TCP proxy on 127.0.0.1: a delay on every "
        "client->server chunk and a paced server->client direction")
    ap.add_argument("--target", required=True, type=parse_target)
    ap.add_argument("--listen-port", type=int, default=0)
    ap.add_argument("--delay-ms", type=float, default=0.0)
    ap.add_argument("--rate", type=parse_rate, default=0.0)
    ap.add_argument("--max-seconds", type=float, default=3600.0)
    args = ap.parse_args()
    if args.delay_ms < 0 or args.max_seconds <= 0:
        ap.error("--delay-ms must be >= 0 and --max-seconds > 0")

    lsock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    lsock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    lsock.bind(("127.0.0.1", args.listen_port))
    lsock.listen(1024)
    lsock.settimeout(0.5)
    print(lsock.getsockname()[1], flush=True)

    stop = threading.Event()
    for sig in (signal.SIGTERM, signal.SIGINT):
        signal.signal(sig, lambda *_: stop.set())
    end = time.monotonic() + args.max_seconds
    while not stop.is_set() and time.monotonic() < end:
        try:
            cli, _ = lsock.accept()
        except socket.timeout:
            continue
        except OSError:
            if stop.is_set():
                break
            raise
        cli.settimeout(None)
        threading.Thread(target=serve_pair, daemon=True,
                         args=(cli, args.target, args.delay_ms / 1000.0,
                               args.rate)).start()
    lsock.close()


if __name__ == "__main__":
    main()
