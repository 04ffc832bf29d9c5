#!/usr/bin/env python3
"""A user-space WAN emulator: a TCP relay that adds a fixed one-way delay, a bandwidth cap and a TCP window.

    python3 benches/wanrelay.py --listen 127.0.0.1:PORT --to 127.0.0.1:ROUTER --delay-ms 25 --mbit 200
    python3 benches/wanrelay.py --listen 127.0.0.1:PORT --to 127.0.0.1:ROUTER --delay-ms 25 \\
        --shared-mbit 1000 --window-kib 3072

Each direction of each connection is a pipe: a byte read at time t is written at t + delay, and
no earlier than the link clocks it passes allow. A link clock serialises chunks at its rate
(`next_free`): `--mbit` gives each direction of each connection its own clock, `--shared-mbit`
gives each direction one clock that every connection's chunks pass in the order they arrive,
so N connections share the cap (both may be given; a chunk then waits for both).

What the relay holds per direction per connection is bounded, and at the bound it stops reading
that connection, so TCP flow control reaches the sender as on a real path:

* `--window-kib W`: a byte is in flight from the relay's read until its emulated ACK returns,
  `delay` after it was delivered; at W in flight the relay stops reading. One connection then
  runs at about W / (2 x delay), like a window-bound TCP flow, whatever the cap.
* without it: the bytes queued in the one-way pipe (max(2 x rate x delay, 1 MiB), released on
  delivery; the rate is the per-connection cap, else the shared one) as before 2026-12-03.

A receiver that stops reading stops delivery (the relay's write buffer to it is kept small), and
with a window also the ACKs. The kernel here has no netem; this is the stand-in. Prints
`listening HOST:PORT`.
"""

import argparse
import asyncio
import collections

CHUNK = 64 * 1024  # most the relay reads at once
WRITE_HIGH = 256 * 1024  # write buffer towards a receiver above which delivery waits
EARLY = 0.001  # a chunk due within this many seconds is delivered now (timer granularity)


class Link:
    """A serialising clock: a chunk starts when it is due and the previous one has left."""

    def __init__(self, rate):
        self.rate = rate  # bytes per second
        self.next_free = 0.0


def delivery_time(links, due, n):
    """When the last byte of an n-byte chunk due at `due` has passed every link. Each link's clock
    runs on timestamps, not on when a timer fires, so a late wake-up loses no capacity, and a link
    idle since before `due` banks no credit for a burst."""
    start = max([due] + [link.next_free for link in links])
    end = start
    for link in links:
        link.next_free = start + n / link.rate
        end = max(end, link.next_free)
    return end


class Pipe:
    """One direction of one connection: reads from `src`, delivers to `dst` when due."""

    def __init__(self, conn, links, src):
        self.conn, self.loop, self.cfg, self.links, self.src = conn, conn.loop, conn.cfg, links, src
        self.dst = None  # the other side's transport, once connected
        self.queue = collections.deque()  # (deliver at, bytes)
        self.held = 0  # bytes counted against the bound (in flight, or queued)
        self.bound = self.cfg.window or max(int(2 * (self.cfg.rate or self.cfg.shared_rate) * self.cfg.delay), 1 << 20)
        self.read_paused = False
        self.dst_full = False  # the receiver's write buffer is above WRITE_HIGH
        self.timer = None
        self.eof = False  # the source sent FIN
        self.done = False  # FIN passed on

    def room(self):
        return max(1, min(CHUNK, self.bound - self.held))

    def push(self, data):
        now = self.loop.time()
        self.queue.append((delivery_time(self.links, now + self.cfg.delay, len(data)), data))
        self.held += len(data)
        if self.held >= self.bound and not self.read_paused:
            self.read_paused = True
            self.src.pause_reading()
        self.arm()

    def finish(self):
        self.eof = True
        self.arm()

    def arm(self):
        if self.timer is not None or self.dst is None or self.dst_full:
            return
        if self.queue:
            self.timer = self.loop.call_at(self.queue[0][0] - EARLY, self.flush)
        elif self.eof and not self.done:
            self.done = True
            if self.dst.can_write_eof():
                self.dst.write_eof()
            self.conn.pipe_done()

    def flush(self):
        self.timer = None
        now = self.loop.time()
        while self.queue and self.queue[0][0] <= now + EARLY and not self.dst_full and not self.dst.is_closing():
            _, data = self.queue.popleft()
            self.dst.write(data)  # may call pause_writing -> dst_full
            if self.cfg.window:  # the ACK comes back one delay after delivery
                self.loop.call_at(now + self.cfg.delay - EARLY, self.release, len(data))
            else:
                self.release(len(data))
        self.arm()

    def release(self, n):
        self.held -= n
        if self.read_paused and self.held < self.bound and not self.src.is_closing():
            self.read_paused = False
            self.src.resume_reading()

    def dst_pause(self):
        self.dst_full = True
        if self.timer is not None:
            self.timer.cancel()
            self.timer = None

    def dst_resume(self):
        self.dst_full = False
        self.arm()


class Side(asyncio.BufferedProtocol):
    """One socket of a relayed connection: what it reads goes into `out`; it is the receiver
    of the other side's pipe."""

    def __init__(self, conn, direction):
        self.conn, self.direction = conn, direction
        self.buf = bytearray(CHUNK)
        self.transport = None
        self.out = None  # Pipe fed by this socket
        self.into = None  # Pipe that writes to this socket

    def connection_made(self, transport):
        self.transport = transport
        transport.set_write_buffer_limits(high=WRITE_HIGH)
        self.out = Pipe(self.conn, self.conn.links(self.direction), transport)
        self.conn.made(self)

    def get_buffer(self, sizehint):
        return memoryview(self.buf)[:self.out.room()]

    def buffer_updated(self, nbytes):
        self.out.push(bytes(self.buf[:nbytes]))

    def eof_received(self):
        self.out.finish()
        return True  # keep writing the other direction

    def pause_writing(self):
        if self.into:
            self.into.dst_pause()

    def resume_writing(self):
        if self.into:
            self.into.dst_resume()

    def connection_lost(self, exc):
        self.conn.lost(self, exc)


class Connection:
    """A client connection and its upstream connection, relayed both ways."""

    def __init__(self, cfg):
        self.cfg = cfg
        self.loop = asyncio.get_running_loop()
        self.client = Side(self, "up")
        self.server = None
        self.per_conn = {d: [Link(cfg.rate)] if cfg.rate else [] for d in ("up", "down")}
        self.pipes_done = 0
        self.closed = False

    def links(self, direction):
        return self.per_conn[direction] + self.cfg.shared[direction]

    def made(self, side):
        if side is self.client:
            side.transport.pause_reading()
            self.loop.create_task(self.dial())
        elif self.closed:  # the client went away while dialling
            side.transport.abort()
        else:
            self.client.into, self.server.into = self.server.out, self.client.out
            self.client.out.dst, self.server.out.dst = self.server.transport, self.client.transport
            self.client.out.arm()
            self.client.transport.resume_reading()

    async def dial(self):
        try:
            self.server = Side(self, "down")
            await self.loop.create_connection(lambda: self.server, self.cfg.to_host, self.cfg.to_port)
        except OSError:
            self.client.transport.abort()

    def pipe_done(self):
        self.pipes_done += 1
        if self.pipes_done == 2:
            self.close(False)

    def lost(self, side, exc):
        self.close(exc is not None or not (side.out and side.out.eof))

    def close(self, abort):
        if self.closed:
            return
        self.closed = True
        for side in (self.client, self.server):
            if side and side.transport and not side.transport.is_closing():
                side.transport.abort() if abort else side.transport.close()
            if side and side.out and side.out.timer:
                side.out.timer.cancel()


async def main():
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--listen", required=True, help="HOST:PORT (port 0 picks one)")
    p.add_argument("--to", required=True, help="HOST:PORT to forward to")
    p.add_argument("--delay-ms", type=float, default=25.0, help="one-way delay (default 25)")
    p.add_argument("--mbit", type=float, default=200.0,
                   help="cap per direction of each connection, Mbit/s (default 200; 0: none)")
    p.add_argument("--shared-mbit", type=float, default=0.0,
                   help="cap per direction shared by all connections, Mbit/s (default 0: none)")
    p.add_argument("--window-kib", type=float, default=0.0,
                   help="TCP window per direction of each connection, KiB (default 0: no window, "
                        "the pipe's queue is bounded instead)")
    cfg = p.parse_args()
    if min(cfg.delay_ms, cfg.mbit, cfg.shared_mbit, cfg.window_kib) < 0:
        p.error("--delay-ms, --mbit, --shared-mbit and --window-kib must not be negative")
    if cfg.window_kib and cfg.delay_ms == 0:
        p.error("--window-kib needs a delay (--delay-ms > 0): the ACK comes back one delay after delivery")
    lhost, lport = cfg.listen.rsplit(":", 1)
    cfg.to_host, to_port = cfg.to.rsplit(":", 1)
    cfg.to_port = int(to_port)
    cfg.delay = cfg.delay_ms / 1000.0
    cfg.rate = cfg.mbit * 1e6 / 8
    cfg.shared_rate = cfg.shared_mbit * 1e6 / 8
    cfg.window = int(cfg.window_kib * 1024)
    cfg.shared = {d: [Link(cfg.shared_rate)] if cfg.shared_rate else [] for d in ("up", "down")}
    loop = asyncio.get_running_loop()

    server = await loop.create_server(lambda: Connection(cfg).client, lhost, int(lport))
    addr = server.sockets[0].getsockname()
    print(f"listening {addr[0]}:{addr[1]}", flush=True)
    async with server:
        await server.serve_forever()


if __name__ == "__main__":
    try:
        asyncio.run(main())
    except KeyboardInterrupt:
        pass
