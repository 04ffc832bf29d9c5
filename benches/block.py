"""The `block` set of benches/bench.py: a block device and a disk image synced by Ferry (a block
volume) and by rsync+stunnel (`--copy-devices --write-devices --inplace --no-whole-file
--ignore-times`, rsync 3.2+), side by side through the same squid + HAProxy chain, on loop devices.

    device  /dev/loopS (the source image, read-only) -> /dev/loopT (a sparse file of the same size)
    image   SRC.img -> disk.img on the target's ext4 (Ferry serves it as a block volume; rsync
            writes it with --inplace into its module)

Phases: `initial` (an empty target: zeros, or an empty image) and `resync` (the target holds v1,
the source is v2 = v1 with 1% of its 4 KiB blocks changed). The source is a quarter zeros, in
runs. Besides wall time, CPU, RSS and the bytes through the router, the device case counts the
bytes written to the target device (the kernel's count, /sys/block/loopT/stat), and the image
case the target image's allocated bytes (a thin target stays thin). Every run is verified by
comparing the target's first SIZE bytes with the source.

Imports nothing of bench.py: the Bench instance is handed in (its run_ferry, run_rsync, work
dirs and results).
"""

import hashlib
import os
import random
import shutil
import stat
import subprocess

MiB = 1 << 20
BLOCK = 4096


def make_images(work, mb, seed="ferry-bench-block"):
    """v1.img (`mb` MiB: in each 4 MiB stripe one 1 MiB run of zeros at a random place, so a
    quarter zeros in all; the rest incompressible) and v2.img (v1 with 1% of its 4 KiB blocks
    rewritten), reused across runs."""
    base = f"{work}/src/block-{mb}"
    v1, v2 = f"{base}/v1.img", f"{base}/v2.img"
    if os.path.exists(f"{base}/.done"):
        return v1, v2
    shutil.rmtree(base, ignore_errors=True)
    os.makedirs(base)
    size = mb * MiB
    r = random.Random(seed)
    key = hashlib.sha256(seed.encode()).hexdigest()[:32]
    openssl = subprocess.Popen(["openssl", "enc", "-aes-128-ctr", "-nosalt", "-K", key, "-iv", "0" * 32,
                                "-in", "/dev/zero"], stdout=subprocess.PIPE, stderr=subprocess.DEVNULL)
    with open(v1, "wb") as f:
        for stripe in range(0, size, 4 * MiB):
            zero = r.randrange(4)
            for i in range(min(4, (size - stripe) // MiB)):
                f.write(bytes(MiB) if i == zero else openssl.stdout.read(MiB))
    openssl.kill()
    openssl.wait()
    shutil.copyfile(v1, v2)
    with open(v2, "r+b") as f:
        blocks = size // BLOCK
        for i in r.sample(range(blocks), max(1, blocks // 100)):
            f.seek(i * BLOCK)
            f.write(r.randbytes(BLOCK))
    open(f"{base}/.done", "w").close()
    return v1, v2


def attach(path, read_only=False):
    """A loop device over `path`."""
    argv = ["losetup", "-f", "--show"] + (["-r"] if read_only else []) + [path]
    return subprocess.run(argv, check=True, capture_output=True, text=True).stdout.strip()


def detach(dev):
    subprocess.run(["losetup", "-d", dev], stderr=subprocess.DEVNULL)


def sectors_written(dev):
    """The kernel's count of 512-byte sectors written to `dev` since it was attached."""
    with open(f"/sys/block/{os.path.basename(dev)}/stat") as f:
        return int(f.read().split()[6])


def same_prefix(src, dst, size):
    """Whether `dst` starts with the `size` bytes of `src`."""
    with open(src, "rb") as a, open(dst, "rb") as b:
        left = size
        while left:
            n = min(left, 4 * MiB)
            x, y = a.read(n), b.read(n)
            if x != y:
                return False
            left -= n
    return True


def rsync_args(dest):
    """rsync's options for one device or image. `--ignore-times`: a device node's mtime says
    nothing of its content, and a fresh node can share the source's second (rsync then skips it)."""
    return ["--copy-devices", "--write-devices", "--inplace", "--no-whole-file", "--ignore-times", "--stats"], dest


class BlockSet:
    def __init__(self, bench, log):
        self.b = bench
        self.log = log
        self.loops = []

    def loop(self, path, read_only=False):
        dev = attach(path, read_only)
        self.loops.append(dev)
        return dev

    def free(self, dev):
        detach(dev)
        self.loops.remove(dev)

    def teardown(self):
        for dev in list(self.loops):
            self.free(dev)

    def run(self):
        b = self.b
        v1, v2 = make_images(b.work, b.a.block_mb)
        size = os.path.getsize(v1)
        zeros = count_zero_blocks(v1) * BLOCK
        self.log(f"== block: {size / MiB:.0f} MiB image, {zeros / MiB:.0f} MiB of it zeros; v2 changes 1% of its 4 KiB blocks")
        try:
            for case in ("device", "image"):
                for phase in ("initial", "resync"):
                    for _ in range(b.a.pairs):
                        for tool in ("ferry", "rsync"):
                            self.one(case, phase, tool, v1, v2, size, zeros)
        finally:
            self.teardown()

    def one(self, case, phase, tool, v1, v2, size, zeros):
        b = self.b
        src_img = v1 if phase == "initial" else v2
        work = f"{b.work}/block/{tool}"
        shutil.rmtree(work, ignore_errors=True)
        os.makedirs(work)
        tdir = f"{b.tgt}/block-{tool}"  # the image case's target, on the target's ext4
        shutil.rmtree(tdir, ignore_errors=True)
        os.makedirs(tdir)
        src = tgt_dev = None
        try:
            if case == "device":
                backing = f"{work}/target.img"
                if phase == "initial":
                    open(backing, "wb").truncate(size)
                else:
                    subprocess.run(["cp", "--sparse=always", v1, backing], check=True)
                src = self.loop(src_img, read_only=True)
                tgt_dev = self.loop(backing)
                target = tgt_dev
            else:
                target = f"{tdir}/disk.img"
                if phase == "initial":
                    open(target, "wb").close()
                else:
                    subprocess.run(["cp", "--sparse=always", v1, target], check=True)
                src = src_img
            subprocess.run(["sync"])
            written0 = sectors_written(tgt_dev) if tgt_dev else None
            if tool == "ferry":
                res = b.run_ferry(src, target, False, b.ports["router"])
            elif case == "device":
                # rsync writes into a device node in its module that names the target device
                node = f"{tdir}/disk"
                st = os.stat(tgt_dev)
                os.mknod(node, stat.S_IFBLK | 0o600, st.st_rdev)
                res = b.run_rsync(src, tdir, False, b.ports["router"], block=rsync_args("disk"))
            else:
                res = b.run_rsync(src, tdir, False, b.ports["router"], block=rsync_args("disk.img"))
            subprocess.run(["sync"])
            written = (sectors_written(tgt_dev) - written0) * 512 if tgt_dev else None
            check = tgt_dev or target
            verified = res["ok"] and same_prefix(src_img, check, size)
            allocated = os.stat(target).st_blocks * 512 if case == "image" else None
        finally:
            if tgt_dev:
                self.free(tgt_dev)
            if case == "device" and src:
                self.free(src)
        if not verified and res["ok"]:
            b.failures.append(f"block-{case}/{phase}/{tool}: the target differs from the source")
        res.update(dataset=f"block-{case}", phase=phase, verified=verified, size=size, set="block",
                   written=written, allocated=allocated, zeros=zeros)
        b.results.append(res)
        extra = f"written {written / MiB:7.1f} MiB" if written is not None else f"allocated {allocated / MiB:7.1f} MiB"
        self.log(f"   block-{case:6} {phase:8} {tool:5} {res['wall']:7.2f}s  cpu {res['src_cpu'] + res['tgt_cpu']:6.2f}s  "
              f"rss {res['src_rss'] / 1024:6.1f}/{res['tgt_rss'] / 1024:6.1f} MiB  wire {res['wire'] / 1e6:8.2f} MB  "
              f"{extra}  {'ok' if verified else 'FAILED'}")


def count_zero_blocks(path):
    zero = bytes(BLOCK)
    n = 0
    with open(path, "rb") as f:
        while True:
            chunk = f.read(4 * MiB)
            if not chunk:
                return n
            n += sum(1 for i in range(0, len(chunk), BLOCK) if chunk[i:i + BLOCK] == zero)


def med(xs):
    xs = sorted(x for x in xs if x is not None)
    return xs[len(xs) // 2] if xs else None


def table(rows):
    """The block set's table and its target rows (as (name, measured, met) triples)."""
    lines = ["| case | phase | tool | wall s | CPU s tool | RSS MiB src/tgt | wire MB (router) | "
             "written MiB (device) / allocated MiB (image) | rsync/ferry wall | ok |", "|" + "---|" * 10]
    summary = {}
    for case in dict.fromkeys(r["dataset"] for r in rows):
        for phase in dict.fromkeys(r["phase"] for r in rows if r["dataset"] == case):
            rs = [r for r in rows if r["dataset"] == case and r["phase"] == phase]
            fr = [r for r in rs if r["tool"] == "ferry"]
            rr = [r for r in rs if r["tool"] == "rsync"]
            ratio = med([y["wall"] / x["wall"] for x, y in zip(fr, rr) if x["wall"] > 0])
            for tool, ts in (("ferry", fr), ("rsync+stunnel", rr)):
                if not ts:
                    continue
                disk = med([r["written"] if r["written"] is not None else r["allocated"] for r in ts])
                s = dict(wall=med([r["wall"] for r in ts]), wire=med([r["wire"] for r in ts]), disk=disk,
                         src_rss=max(r["src_rss"] for r in ts), tgt_rss=max(r["tgt_rss"] for r in ts),
                         ok=all(r["verified"] for r in ts), ratio=ratio, size=ts[0]["size"], zeros=ts[0]["zeros"])
                summary[(case, phase, tool)] = s
                lines.append(
                    f"| {case} | {phase} | {tool} | {s['wall']:.2f} | {med([r['src_cpu'] + r['tgt_cpu'] for r in ts]):.2f} | "
                    f"{s['src_rss'] / 1024:.1f}/{s['tgt_rss'] / 1024:.1f} | {s['wire'] / 1e6:.1f} | "
                    f"{(disk or 0) / MiB:.1f} | {f'{ratio:.2f}' if tool == 'ferry' and ratio else ''} | "
                    f"{'yes' if s['ok'] else 'NO'} |")
    return "\n".join(lines), targets(summary)


def targets(s):
    out = []
    f, r = s.get(("block-device", "initial", "ferry")), s.get(("block-device", "initial", "rsync+stunnel"))
    if f and r:
        nonzero = f["size"] - f["zeros"]
        out.append(("block initial ≥ 1.5× rsync+stunnel, zero runs neither sent nor written",
                    f"{f['ratio']:.2f}×; Ferry sent {f['wire'] / MiB:.0f} MiB and wrote {f['disk'] / MiB:.0f} MiB "
                    f"of {nonzero / MiB:.0f} MiB non-zero (rsync: {r['wire'] / MiB:.0f} / {r['disk'] / MiB:.0f})",
                    f["ratio"] >= 1.5 and f["wire"] <= nonzero * 1.05 and f["disk"] <= nonzero * 1.05))
    f, r = s.get(("block-device", "resync", "ferry")), s.get(("block-device", "resync", "rsync+stunnel"))
    if f and r:
        out.append(("block re-sync (1% of 4 KiB blocks) ≥ 3× rsync+stunnel, no more bytes on the wire",
                    f"{f['ratio']:.2f}×; wire {f['wire'] / 1e6:.1f} MB vs {r['wire'] / 1e6:.1f} MB",
                    f["ratio"] >= 3 and f["wire"] <= r["wire"]))
    f = s.get(("block-image", "resync", "ferry"))
    if f:
        out.append(("image re-sync in place", f"{f['ratio']:.2f}× rsync+stunnel --inplace", f["ok"]))
    rss = [v for k, v in s.items() if k[2] == "ferry"]
    if rss:
        peak = max(max(v["src_rss"], v["tgt_rss"]) for v in rss)
        out.append(("block: peak RSS per side ≤ 100 MiB, any phase", f"{peak / 1024:.1f} MiB", peak <= 100 * 1024))
    return out
