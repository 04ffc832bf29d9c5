#!/usr/bin/env python3
"""A user-space WAN emulator: a TCP relay that adds a fixed one-way delay and a bandwidth cap.

    python3 benches/wanrelay.py --listen 127.0.0.1:PORT --to 127.0.0.1:ROUTER --delay-ms 25 --mbit 200

Each direction of each connection is an independent pipe: bytes read at time t are written at
t + delay, no faster than the cap (a token bucket per direction per connection). The bytes in
flight per direction are bounded (max(2 x bandwidth-delay product, 1 MiB)); when the bound is
reached the relay stops reading, so TCP flow control still reaches the sender as it would on a
real path. The kernel here has no netem; this is the stand-in. Prints `listening HOST:PORT`.
"""

import argparse
import asyncio
import collections
import time

CHUNK = 64 * 1024
SLACK = 0.005  # seconds the link clock may trail the wall clock (see pump_out)


async def pipe(reader, writer, delay, rate, limit):
    """Copy reader -> writer, each chunk released `delay` s after it arrived, at most `rate` B/s."""
    queue = collections.deque()
    queued = 0
    more = asyncio.Event()
    room = asyncio.Event()
    room.set()
    eof = False

    async def pump_in():
        nonlocal queued, eof
        try:
            while True:
                await room.wait()
                data = await reader.read(CHUNK)
                if not data:
                    break
                queue.append((time.monotonic() + delay, data))
                queued += len(data)
                if queued >= limit:
                    room.clear()
                more.set()
        except (ConnectionError, OSError):
            pass
        eof = True
        more.set()

    async def pump_out():
        nonlocal queued
        next_free = time.monotonic()  # earliest time the link is free (bandwidth cap)
        try:
            while True:
                if not queue:
                    if eof:
                        break
                    more.clear()
                    await more.wait()
                    continue
                due, data = queue.popleft()
                now = time.monotonic()
                # The link keeps its own clock: a chunk starts when it is due and the previous
                # one has left, not when this loop woke up (a sleep overshoots by ~1 ms, which at
                # 1 ms a chunk would halve the cap). It may lag `now` by SLACK, no more, so an
                # idle link does not bank credit for a burst.
                start = max(due, next_free, now - SLACK)
                if rate:
                    next_free = start + len(data) / rate
                    start = next_free  # the last byte of the chunk leaves after serialisation
                if start > now:
                    await asyncio.sleep(start - now)
                writer.write(data)
                await writer.drain()
                queued -= len(data)
                if queued < limit:
                    room.set()
            if writer.can_write_eof():
                writer.write_eof()
        except (ConnectionError, OSError):
            pass

    await asyncio.gather(pump_in(), pump_out())


async def handle(creader, cwriter, args):
    try:
        sreader, swriter = await asyncio.open_connection(args.to_host, args.to_port)
    except OSError:
        cwriter.close()
        return
    delay = args.delay_ms / 1000.0
    rate = args.mbit * 1e6 / 8 if args.mbit > 0 else 0
    limit = max(int(2 * rate * delay), 1 << 20)
    await asyncio.gather(
        pipe(creader, swriter, delay, rate, limit),
        pipe(sreader, cwriter, delay, rate, limit),
    )
    for w in (cwriter, swriter):
        try:
            w.close()
        except OSError:
            pass


async def main():
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--listen", required=True, help="HOST:PORT (port 0 picks one)")
    p.add_argument("--to", required=True, help="HOST:PORT to forward to")
    p.add_argument("--delay-ms", type=float, default=25.0, help="one-way delay (default 25)")
    p.add_argument("--mbit", type=float, default=200.0, help="cap per direction, Mbit/s (0: none)")
    args = p.parse_args()
    lhost, lport = args.listen.rsplit(":", 1)
    args.to_host, to_port = args.to.rsplit(":", 1)
    args.to_port = int(to_port)
    server = await asyncio.start_server(lambda r, w: handle(r, w, args), lhost, int(lport))
    addr = server.sockets[0].getsockname()
    print(f"listening {addr[0]}:{addr[1]}", flush=True)
    async with server:
        await server.serve_forever()


if __name__ == "__main__":
    try:
        asyncio.run(main())
    except KeyboardInterrupt:
        pass
