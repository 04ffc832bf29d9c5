#!/usr/bin/env python3
"""Measure what benches/wanrelay.py delivers: 1 and N parallel connections through one relay.

    python3 benches/wanrelay_check.py --conns 1,4 --seconds 3 --delay-ms 25 --shared-mbit 1000 --window-kib 3072

Starts the relay in front of a sink, then for each count N opens N connections that send as fast
as they can for `--seconds` (one direction, client to server) and reports the rate each
connection and all together reached at the sink, what the model predicts (one window-bound
connection: W / (2 x delay); N of them: min(N x that, the caps)), and the relay's own CPU
(user + system seconds per second of the run, from /proc: a Python relay that saturates a core
no longer delivers its model). Exits 1 if a rate falls outside `--tolerance` of the prediction.
"""

import argparse
import os
import socket
import subprocess
import sys
import threading
import time

HERE = os.path.dirname(os.path.abspath(__file__))
CLK = os.sysconf("SC_CLK_TCK")


def proc_cpu(pid):
    with open(f"/proc/{pid}/stat") as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / CLK


class Sink(threading.Thread):
    """Accepts connections and counts what each one receives."""

    def __init__(self):
        super().__init__(daemon=True)
        self.sock = socket.socket()
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(64)
        self.port = self.sock.getsockname()[1]
        self.counts = []
        self.lock = threading.Lock()

    def run(self):
        while True:
            conn, _ = self.sock.accept()
            cell = [0]  # this connection's count (a reset leaves it out of the next list)
            with self.lock:
                self.counts.append(cell)
            threading.Thread(target=self.drain, args=(conn, cell), daemon=True).start()

    def drain(self, conn, cell):
        buf = bytearray(1 << 20)
        with conn:
            while True:
                n = conn.recv_into(buf)
                if not n:
                    return
                cell[0] += n

    def reset(self):
        with self.lock:
            self.counts = []

    def snapshot(self):
        with self.lock:
            return [cell[0] for cell in self.counts]


def send(port, stop):
    data = bytes(1 << 20)
    with socket.create_connection(("127.0.0.1", port)) as s:
        try:
            while not stop.is_set():
                s.sendall(data)
        except OSError:
            pass


def measure(relay_port, sink, n, seconds, relay_pid):
    sink.reset()
    stop = threading.Event()
    threads = [threading.Thread(target=send, args=(relay_port, stop), daemon=True) for _ in range(n)]
    for t in threads:
        t.start()
    time.sleep(0.3)  # connections up; the window model has no slow start to wait for
    c0, cpu0, t0 = sink.snapshot(), proc_cpu(relay_pid), time.monotonic()
    time.sleep(seconds)
    c1, cpu1, t1 = sink.snapshot(), proc_cpu(relay_pid), time.monotonic()
    stop.set()
    for t in threads:
        t.join(timeout=5)
    dt = t1 - t0
    rates = [(b - (c0[i] if i < len(c0) else 0)) / dt for i, b in enumerate(c1)]
    return rates, (cpu1 - cpu0) / dt


def main():
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--conns", default="1,4", help="connection counts to measure, comma list (default 1,4)")
    p.add_argument("--seconds", type=float, default=3.0, help="measured time per count (default 3)")
    p.add_argument("--delay-ms", type=float, default=25.0)
    p.add_argument("--mbit", type=float, default=0.0, help="per-connection cap (default 0: none)")
    p.add_argument("--shared-mbit", type=float, default=1000.0)
    p.add_argument("--window-kib", type=float, default=3072.0)
    p.add_argument("--tolerance", type=float, default=0.15,
                   help="largest relative difference from the model that passes (default 0.15)")
    a = p.parse_args()
    sink = Sink()
    sink.start()
    relay = subprocess.Popen([sys.executable, os.path.join(HERE, "wanrelay.py"), "--listen", "127.0.0.1:0",
                              "--to", f"127.0.0.1:{sink.port}", "--delay-ms", str(a.delay_ms),
                              "--mbit", str(a.mbit), "--shared-mbit", str(a.shared_mbit),
                              "--window-kib", str(a.window_kib)], stdout=subprocess.PIPE, text=True)
    try:
        line = relay.stdout.readline().split()
        if len(line) != 2 or line[0] != "listening":
            print(f"relay did not start: {line}", file=sys.stderr)
            return 2
        port = int(line[1].rsplit(":", 1)[1])
        per_window = a.window_kib * 1024 / (2 * a.delay_ms / 1000) if a.window_kib else float("inf")
        per_conn = min(per_window, a.mbit * 1e6 / 8 if a.mbit else float("inf"))
        shared = a.shared_mbit * 1e6 / 8 if a.shared_mbit else float("inf")
        print(f"relay: {a.delay_ms} ms one way, window {a.window_kib:g} KiB, per-connection cap {a.mbit:g} Mbit/s, "
              f"shared cap {a.shared_mbit:g} Mbit/s")
        bad = False
        for n in [int(x) for x in a.conns.split(",") if x]:
            rates, cpu = measure(port, sink, n, a.seconds, relay.pid)
            model = min(n * per_conn, shared)
            total = sum(rates)
            off = total / model - 1 if model != float("inf") else 0.0
            bad |= abs(off) > a.tolerance
            print(f"{n} connection(s): {total / 1e6:7.1f} MB/s together (model {model / 1e6:.1f}, {off:+.1%}); "
                  f"each {', '.join(f'{r / 1e6:.1f}' for r in rates)} MB/s; relay CPU {cpu:.2f} s/s")
        return 1 if bad else 0
    finally:
        relay.terminate()
        relay.wait()


if __name__ == "__main__":
    sys.exit(main())
