#!/usr/bin/env python3
# SPDX-License-Identifier: MIT
"""delayproxy.py - a TCP proxy on 127.0.0.1 that behaves like a WAN, for tests.

Usage: delayproxy.py --target HOST:PORT [--listen-port PORT] [--delay-ms N]
                     [--control FILE] [--max-seconds S]

Listens on 127.0.0.1:PORT (0, the default: a free port), prints the port on
stdout (one line) once listening, and forwards every connection to
HOST:PORT. It is plain TCP, so HTTP and TLS alike go through it.

  --delay-ms N     every chunk of client->server bytes is held N ms before
                   it is forwarded (order kept per connection), so every
                   request, and each client flight of a TLS handshake, pays
                   N ms; server->client bytes flow at once (default 0)
  --control FILE   re-read five times a second; its content is the mode:
                     ok (or no file)  forward normally
                     stall            connections stay open but no
                                      server->client bytes are forwarded:
                                      they are held, not dropped (reading
                                      from the server stops, TCP holds the
                                      rest; what was already written to a
                                      client's socket, at most 4 MiB a
                                      connection, still drains); new
                                      connections are accepted, their
                                      requests reach the server, and they
                                      stall the same way
                     reset            every open connection is reset (RST),
                                      new ones are reset at once
                   going back to ok forwards what was held
  --max-seconds S  exit after S seconds (default 3600); also exits on
                   SIGTERM and SIGINT

Only for tests on loopback. Python 3 standard library only.
"""
import argparse
import asyncio
import collections
import signal
import socket
import struct
import sys

READ_SIZE = 1 << 20        # bytes per recv (asyncio reads 256 KiB)
WRITE_HIGH = 4 << 20       # pause the other side above this much unsent
WRITE_LOW = 1 << 20
QUEUE_HIGH = 4 << 20       # delayed client bytes before pausing the client
CONTROL_PERIOD = 0.2

MODES = ("ok", "stall", "reset")


class Proxy:
    def __init__(self, loop, host, port, delay, control):
        self.loop = loop
        self.host = host
        self.port = port
        self.delay = delay
        self.control = control
        self.mode = "ok"
        self.pairs = set()
        self.bad_word = None

    def read_mode(self):
        if not self.control:
            return "ok"
        try:
            with open(self.control, encoding="ascii", errors="replace") as f:
                word = f.read().strip()
        except FileNotFoundError:
            return "ok"
        except OSError:
            return self.mode
        if word in MODES:
            return word
        if word and word != self.bad_word:
            self.bad_word = word
            print("delayproxy: unknown mode %r in %s, keeping %s"
                  % (word, self.control, self.mode), file=sys.stderr,
                  flush=True)
        return self.mode  # empty (being rewritten) or unknown

    def poll_control(self):
        mode = self.read_mode()
        if mode != self.mode:
            print("delayproxy: mode %s -> %s (%d connections)"
                  % (self.mode, mode, len(self.pairs)), file=sys.stderr,
                  flush=True)
            self.mode = mode
            for pair in list(self.pairs):
                if mode == "reset":
                    pair.reset()
                elif mode == "ok":
                    pair.flush_held()
        self.loop.call_later(CONTROL_PERIOD, self.poll_control)

    def client_factory(self):
        return ClientSide(self)

    def close_all(self):
        for pair in list(self.pairs):
            pair.reset()


def tune(transport):
    """Large reads and write buffers: full loopback speed without delay."""
    if hasattr(transport, "max_size"):
        transport.max_size = READ_SIZE
    transport.set_write_buffer_limits(high=WRITE_HIGH, low=WRITE_LOW)


def set_rst(transport):
    """Make the next close send a TCP reset instead of a FIN."""
    sock = transport.get_extra_info("socket")
    if sock is not None:
        try:
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER,
                            struct.pack("ii", 1, 0))
        except OSError:
            pass


class ClientSide(asyncio.Protocol):
    """One client connection and its connection to the target."""

    def __init__(self, proxy):
        self.proxy = proxy
        self.loop = proxy.loop
        self.client = None
        self.server = None
        self.closed = False
        # client -> server: (due time, bytes), sent in order once due
        self.queue = collections.deque()
        self.queued = 0
        self.timer = None
        self.client_eof = False
        self.server_writable = True   # the server's transport takes more
        # server -> client: held while stalled
        self.held = []
        self.server_eof = False       # EOF (or close) from the server seen
        self.client_writable = True

    # --- the client's transport ---

    def connection_made(self, transport):
        self.client = transport
        tune(transport)
        if self.proxy.mode == "reset":
            set_rst(transport)
            transport.abort()
            self.closed = True
            return
        self.proxy.pairs.add(self)
        self.loop.create_task(self.connect())

    async def connect(self):
        try:
            _, proto = await self.loop.create_connection(
                lambda: ServerSide(self), self.proxy.host, self.proxy.port)
        except OSError as e:
            print("delayproxy: connect to %s:%d failed: %s"
                  % (self.proxy.host, self.proxy.port, e), file=sys.stderr,
                  flush=True)
            self.reset()
            return
        if self.closed:
            proto.transport.abort()
            return
        self.server = proto.transport
        tune(self.server)
        self.pump()

    def data_received(self, data):
        if self.closed:
            return
        if (self.proxy.delay == 0 and not self.queue and self.server
                and self.server_writable):
            self.server.write(data)
            return
        self.queue.append((self.loop.time() + self.proxy.delay, data))
        self.queued += len(data)
        self.pump()

    def eof_received(self):
        self.client_eof = True
        self.pump()
        return True  # keep the other direction open (half-close)

    def connection_lost(self, exc):
        if exc is not None:
            self.reset()
        elif not self.closed:
            self.finish()

    def pause_writing(self):
        self.client_writable = False
        self.flow()

    def resume_writing(self):
        self.client_writable = True
        self.flow()

    def flow(self):
        """Read from each side only while the other can take it: the
        kernel's socket buffers then hold the rest (TCP backpressure)."""
        if self.closed:
            return
        want = self.server_writable and self.queued <= QUEUE_HIGH
        if not self.client_eof and want != self.client.is_reading():
            if want:
                self.client.resume_reading()
            else:
                self.client.pause_reading()
        if self.server is None or self.server_eof:
            return
        want = (self.client_writable and not self.held
                and self.proxy.mode != "stall")
        if want != self.server.is_reading():
            if want:
                self.server.resume_reading()
            else:
                self.server.pause_reading()

    # --- client -> server, after the delay ---

    def pump(self):
        """Send the queued client bytes that are due; arm the timer for the
        next one."""
        if self.closed or self.server is None:
            return
        now = self.loop.time()
        while self.queue and self.server_writable:
            due, data = self.queue[0]
            if due > now:
                break
            self.queue.popleft()
            self.queued -= len(data)
            self.server.write(data)
        self.flow()
        if self.queue:
            if self.timer is None and self.server_writable:
                self.timer = self.loop.call_at(self.queue[0][0], self.on_timer)
        elif self.client_eof and self.server.can_write_eof():
            if not self.server.is_closing():
                self.server.write_eof()

    def on_timer(self):
        self.timer = None
        self.pump()

    # --- server -> client ---

    def from_server(self, data, proto):
        if self.closed:
            return
        if self.proxy.mode == "stall" or self.held:
            self.held.append(bytes(data))
            self.flow()
            return
        self.client.write(data)
        if self.client.get_write_buffer_size():
            # Not all sent: the transport may keep a reference to the
            # buffer (Python >= 3.12 does not copy), so read into a new one.
            proto.view = None

    def server_done(self):
        """The server sent EOF or closed: pass it on once nothing is held."""
        self.server_eof = True
        if self.proxy.mode != "stall" and not self.held:
            self.finish()

    def flush_held(self):
        if self.closed:
            return
        held, self.held = self.held, []
        for data in held:
            self.client.write(data)
        if self.server_eof:
            self.finish()
        else:
            self.flow()

    # --- ending ---

    def finish(self):
        """Orderly end: flush what the client is owed, then close both."""
        if self.closed:
            return
        self.closed = True
        self.proxy.pairs.discard(self)
        if self.timer:
            self.timer.cancel()
        if self.client and not self.client.is_closing():
            if self.client.can_write_eof():
                self.client.write_eof()
            self.client.close()
        if self.server and not self.server.is_closing():
            self.server.close()

    def reset(self):
        """Abortive end: RST to the client, drop the server connection."""
        if self.closed:
            return
        self.closed = True
        self.proxy.pairs.discard(self)
        if self.timer:
            self.timer.cancel()
        if self.client:
            set_rst(self.client)
            self.client.abort()
        if self.server:
            set_rst(self.server)
            self.server.abort()


class ServerSide(asyncio.BufferedProtocol):
    """The target's side. It receives into one reused buffer (no
    allocation per read); see from_server for when it is let go."""

    def __init__(self, pair):
        self.pair = pair
        self.transport = None
        self.view = None

    def connection_made(self, transport):
        self.transport = transport

    def get_buffer(self, sizehint):
        if self.view is None:
            self.view = memoryview(bytearray(READ_SIZE))
        return self.view

    def buffer_updated(self, nbytes):
        self.pair.from_server(self.view[:nbytes], self)

    def eof_received(self):
        self.pair.server_done()
        return True

    def connection_lost(self, exc):
        if exc is not None:
            self.pair.reset()
        else:
            self.pair.server_done()

    def pause_writing(self):
        self.pair.server_writable = False
        self.pair.flow()

    def resume_writing(self):
        self.pair.server_writable = True
        self.pair.pump()


def parse_target(s):
    host, sep, port = s.rpartition(":")
    if not sep or not host or not port.isdigit():
        raise argparse.ArgumentTypeError("expected HOST:PORT, got %r" % s)
    return host.strip("[]"), int(port)


async def main():
    ap = argparse.ArgumentParser(
        description="TCP proxy on 127.0.0.1 adding a delay to every "
        "client->server chunk; stall/reset through a control file.")
    ap.add_argument("--target", required=True, type=parse_target,
                    help="HOST:PORT to forward to")
    ap.add_argument("--listen-port", type=int, default=0)
    ap.add_argument("--delay-ms", type=float, default=0.0)
    ap.add_argument("--control", default=None)
    ap.add_argument("--max-seconds", type=float, default=3600.0)
    args = ap.parse_args()
    if args.delay_ms < 0 or args.max_seconds <= 0:
        ap.error("--delay-ms must be >= 0 and --max-seconds > 0")

    loop = asyncio.get_running_loop()
    proxy = Proxy(loop, args.target[0], args.target[1],
                  args.delay_ms / 1000.0, args.control)
    proxy.mode = proxy.read_mode()
    server = await loop.create_server(
        proxy.client_factory, "127.0.0.1", args.listen_port,
        reuse_address=True, backlog=1024)
    print(server.sockets[0].getsockname()[1], flush=True)

    done = loop.create_future()

    def stop(*_):
        if not done.done():
            done.set_result(None)

    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop)
    loop.call_later(args.max_seconds, stop)
    loop.call_later(CONTROL_PERIOD, proxy.poll_control)
    await done
    server.close()
    proxy.close_all()


if __name__ == "__main__":
    try:
        asyncio.run(main())
    except KeyboardInterrupt:
        pass
