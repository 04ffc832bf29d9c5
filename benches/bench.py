#!/usr/bin/env python3
"""Ferry vs rsync+stunnel, side by side through the same CONNECT proxy and SNI router.

One command sets everything up on loopback and tears it down again:

    python3 benches/bench.py                 # default sizes (2 GiB large, 30k small, 3 pairs)
    python3 benches/bench.py --smoke         # tiny, 1 pair, every phase, verification on (CI)
    python3 benches/bench.py --large-mb 1024 --small-files 30000 --pairs 3 --out results.md

The picture (every hop a real program, all on 127.0.0.1):

    ferry push ----------------------------\\                         /--> ferry serve     (SNI ferry.route.example)
                                            > squid (CONNECT, basic) -> [wan relay] -> haproxy (req.ssl_sni)
    rsync -> stunnel client (sni=rsync..) -/                         \\--> stunnel server -> rsync --daemon

The target volumes sit on a journaled ext4 loop image (falls back to the work dir's filesystem,
with a warning, if the loop mount fails). See benches/README.md for what is measured and how.
"""

import argparse
import csv
import hashlib
import io
import json
import os
import random
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import threading
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import block  # noqa: E402  (benches/block.py: the block set)
import pod  # noqa: E402  (benches/pod.py: the pod profile's CPU groups)

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.dirname(HERE)
CLK = os.sysconf("SC_CLK_TCK")
PAGE_KB = os.sysconf("SC_PAGE_SIZE") // 1024
MiB = 1 << 20
PROXY_USER, PROXY_PASS = "bench", "s3cret-pass"
FERRY_SNI, RSYNC_SNI = "ferry.route.example", "rsync.route.example"
APT_PACKAGES = {  # command -> package
    "rsync": "rsync", "stunnel4": "stunnel4", "squid": "squid", "htpasswd": "apache2-utils",
    "haproxy": "haproxy", "mkfs.ext4": "e2fsprogs", "openssl": "openssl", "/usr/bin/time": "time",
}


class BenchError(Exception):
    pass


def log(msg):
    print(msg, file=sys.stderr, flush=True)


# ---------------------------------------------------------------- /proc accounting

def proc_stat(pid):
    """(utime+stime, cutime+cstime) in seconds, or None if gone. Threads are included."""
    try:
        with open(f"/proc/{pid}/stat") as f:
            fields = f.read().rsplit(")", 1)[1].split()
    except OSError:
        return None
    # fields[0] is state (field 3); utime is field 14 -> index 11
    return (int(fields[11]) + int(fields[12])) / CLK, (int(fields[13]) + int(fields[14])) / CLK


def proc_ppid(pid):
    try:
        with open(f"/proc/{pid}/stat") as f:
            return int(f.read().rsplit(")", 1)[1].split()[1])
    except (OSError, ValueError, IndexError):
        return None


def descendants(root):
    """All live descendants of root (a /proc scan; there is no children file on this kernel)."""
    kids = {}
    for name in os.listdir("/proc"):
        if name.isdigit():
            pp = proc_ppid(int(name))
            if pp is not None:
                kids.setdefault(pp, []).append(int(name))
    out, todo = [], [root]
    while todo:
        p = todo.pop()
        for c in kids.get(p, []):
            out.append(c)
            todo.append(c)
    return out


def tree_cpu(root):
    """CPU seconds of root and every live descendant, each with its reaped children."""
    total = 0.0
    for pid in [root] + descendants(root):
        s = proc_stat(pid)
        if s:
            total += s[0] + s[1]
    return total


def thread_cpu(pid):
    """{tid: (thread name, CPU seconds)} of a live process's threads, from /proc/PID/task."""
    out = {}
    try:
        tids = os.listdir(f"/proc/{pid}/task")
    except OSError:
        return out
    for tid in tids:
        try:
            with open(f"/proc/{pid}/task/{tid}/stat") as f:
                head, rest = f.read().rsplit(")", 1)
            fields = rest.split()
            out[tid] = (head.split("(", 1)[1], (int(fields[11]) + int(fields[12])) / CLK)
        except (OSError, IndexError, ValueError):
            pass
    return out


def threads_used(before, after):
    """CPU seconds per thread name between two thread_cpu() readings; `after` may hold the last
    reading of threads that have ended since (HwmPoller keeps them: a thread's last 100 ms
    before it ends are not seen)."""
    out = {}
    for tid, (name, cpu) in after.items():
        used = cpu - (before[tid][1] if tid in before else 0.0)
        out[name] = out.get(name, 0.0) + used
    return {k: round(v, 3) for k, v in out.items()}


def vm_hwm_kb(pid, field="VmHWM:"):
    try:
        with open(f"/proc/{pid}/status") as f:
            for line in f:
                if line.startswith(field):
                    return int(line.split()[1])
    except OSError:
        pass
    return 0


class Daemon:
    """A process we start, measured per run: CPU from /proc before, wait4 rusage after."""

    def __init__(self, name, argv, cwd=None, stdout=None, stderr=None, env=None):
        self.name = name
        self.argv = argv
        self.proc = subprocess.Popen(argv, cwd=cwd, stdout=stdout or subprocess.DEVNULL,
                                     stderr=stderr or subprocess.DEVNULL, env=env,
                                     start_new_session=True)
        self.pid = self.proc.pid
        self.cpu0 = 0.0

    def mark(self):
        s = proc_stat(self.pid)
        self.cpu0 = (s[0] + s[1]) if s else 0.0

    def alive(self):
        return self.proc.poll() is None

    def stop(self):
        """SIGTERM, reap, return (cpu seconds since mark incl. reaped children, maxrss KiB)."""
        if self.proc.returncode is not None:
            return 0.0, 0
        hwm = vm_hwm_kb(self.pid)
        try:
            os.kill(self.pid, signal.SIGTERM)
        except ProcessLookupError:
            pass
        deadline = time.time() + 10
        while True:
            pid, status, ru = os.wait4(self.pid, os.WNOHANG)
            if pid:
                break
            if time.time() > deadline:
                os.kill(self.pid, signal.SIGKILL)
                pid, status, ru = os.wait4(self.pid, 0)
                break
            time.sleep(0.01)
        self.proc.returncode = os.waitstatus_to_exitcode(status)
        # VmHWM, not ru_maxrss: the latter carries this Python process's peak across fork+exec
        return ru.ru_utime + ru.ru_stime - self.cpu0, hwm


class HwmPoller(threading.Thread):
    """Every 100 ms: the VmHWM of each descendant of `root` (rsync forks per connection), and
    the sum of RssAnon over root and its descendants (anonymous memory only: VmHWM also counts
    file pages a process has mapped, e.g. Ferry's mmap'd basis files)."""

    def __init__(self, root, children=True, threads=False):
        super().__init__(daemon=True)
        self.root, self.children, self.peak, self.anon = root, children, {}, 0
        self.threads = {} if threads else None  # tid -> (name, CPU s) last seen (thread_cpu)
        self.stop_ev = threading.Event()

    def run(self):
        while not self.stop_ev.is_set():
            if self.threads is not None:
                self.threads.update(thread_cpu(self.root))
            kids = descendants(self.root) if self.children else []
            for pid in kids:
                h = vm_hwm_kb(pid)
                if h > self.peak.get(pid, 0):
                    self.peak[pid] = h
            self.anon = max(self.anon, sum(vm_hwm_kb(p, "RssAnon:") for p in [self.root] + kids))
            self.stop_ev.wait(0.1)

    def finish(self):
        self.stop_ev.set()
        self.join()
        if self.threads is not None:
            self.threads.update(thread_cpu(self.root))
        return sum(self.peak.values())


def wire_counts(before, after):
    """Bytes through the router both ways (`wire`) and in the busier direction (`wire_dir`,
    what a per-direction link cap meters), from two (in, out) readings."""
    d_in, d_out = after[0] - before[0], after[1] - before[1]
    return dict(wire=d_in + d_out, wire_dir=max(d_in, d_out))


def wait_listen(port, proc=None, timeout=15):
    """Wait until something LISTENs on 127.0.0.1:port (reads /proc/net/tcp; no probe connection)."""
    want = f"0100007F:{port:04X}"
    deadline = time.time() + timeout
    while time.time() < deadline:
        with open("/proc/net/tcp") as f:
            for line in f.readlines()[1:]:
                parts = line.split()
                if parts[1] == want and parts[3] == "0A":
                    return
        if proc is not None and proc.poll() is not None:
            raise BenchError(f"process {proc.args[0]} exited ({proc.returncode}) before listening on {port}")
        time.sleep(0.02)
    raise BenchError(f"nothing listening on 127.0.0.1:{port} after {timeout}s")


def run_client(argv, workdir):
    """Run a client to completion: (wall s, exit code, stdout, stderr, cpu s, maxrss KiB) via wait4."""
    # Under /usr/bin/time, not wait4 from here: a child forked from this (large) Python process
    # inherits its peak RSS into ru_maxrss across exec; GNU time is small.
    tf = f"{workdir}/client.time"
    with open(f"{workdir}/client.out", "w+b") as out, open(f"{workdir}/client.err", "w+b") as err:
        t0 = time.monotonic()
        rc = subprocess.run(["/usr/bin/time", "-o", tf, "-f", "%U %S %M"] + argv, stdout=out, stderr=err).returncode
        wall = time.monotonic() - t0
        out.seek(0)
        err.seek(0)
        u, s, m = open(tf).read().split()[-3:]
        return wall, rc, out.read(), err.read(), float(u) + float(s), int(m)


def warm(root):
    """Reads every file under `root` once, so its pages are cached."""
    for d, _, files in os.walk(root):
        for f in files:
            p = os.path.join(d, f)
            if os.path.islink(p) or not os.path.isfile(p):
                continue
            with open(p, "rb", buffering=0) as fh:
                while fh.read(1 << 20):
                    pass


def fresh_dir(path):
    shutil.rmtree(path, ignore_errors=True)
    os.makedirs(path)


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def parse_rate(text):
    """Bytes per second of a `--bwlimit` value, as Ferry reads it (crates/engine/src/ratelimit.rs):
    a number with an optional K, M or G (powers of 1024; KiB/MiB/GiB, a trailing B or /s accepted)."""
    s = text.strip().upper()
    s = s[:-2] if s.endswith("/S") else s
    s = s[:-2] if s.endswith("IB") else s
    s = s[:-1] if s.endswith("B") else s
    factor = {"K": 1 << 10, "M": 1 << 20, "G": 1 << 30}.get(s[-1:], 1)
    rate = round(float(s[:-1] if factor > 1 else s) * factor)
    if rate <= 0:
        raise ValueError(f"{text!r} is not a rate above 0")
    return rate


# ---------------------------------------------------------------- datasets

def rand_stream(seed, n, out):
    """n deterministic incompressible bytes (AES-128-CTR keystream of `seed`) to file `out`."""
    key = hashlib.sha256(seed.encode()).hexdigest()[:32]
    with open(out, "wb") as f:
        openssl = subprocess.Popen(["openssl", "enc", "-aes-128-ctr", "-nosalt", "-K", key, "-iv", "0" * 32,
                                    "-in", "/dev/zero"], stdout=subprocess.PIPE, stderr=subprocess.DEVNULL)
        left = n
        while left:
            b = openssl.stdout.read(min(left, 4 * MiB))
            f.write(b)
            left -= len(b)
        openssl.kill()
        openssl.wait()


class Pool:
    """A random pool that small-file contents are cut from (plus a unique header per file)."""

    def __init__(self, seed, size=32 * MiB):
        self.r = random.Random(seed)
        self.buf = self.r.randbytes(size)

    def data(self, n, tag):
        head = hashlib.blake2b(tag.encode(), digest_size=32).digest()
        off = self.r.randrange(0, len(self.buf) - n - 1)
        return (head + self.buf[off:off + n])[:n]

    def size(self):
        x = self.r.random()
        if x < 0.70:
            return self.r.randint(200, 8192)
        if x < 0.95:
            return self.r.randint(8192, 32768)
        return self.r.randint(32768, 65536)


def gen_large(root, total_mb, nfiles, seed):
    os.makedirs(root)
    per = total_mb * MiB // nfiles
    for i in range(nfiles):
        rand_stream(f"{seed}-large-{i}", per, os.path.join(root, f"disk{i}.img"))
    os.makedirs(os.path.join(root, "meta"))
    with open(os.path.join(root, "meta", "manifest.txt"), "w") as f:
        f.write("large dataset\n")


LOG_LEVELS = ("INFO", "INFO", "INFO", "DEBUG", "WARN", "ERROR")
LOG_SERVICES = ("api-gateway", "billing", "inventory", "auth", "scheduler", "storage-sync")
LOG_MESSAGES = (
    "request completed method=GET path=/v1/items/{a} status=200",
    "request completed method=POST path=/v1/orders status=201",
    "cache miss key=user:{a} ttl=300",
    "upstream latency high backend=10.0.{b}.{c}:8443",
    "retrying operation attempt={d} of 5",
    "flushed {a} records to segment {b}",
    "connection closed by peer remote=192.168.{b}.{c}",
    "checkpoint written lsn={a}",
)


def gen_text(root, total_mb, nfiles, seed):
    """Compressible, log-like text: each file is lines drawn at random from its own pool of 8192
    formatted lines (timestamps, levels, services, messages with varying numbers, request ids).
    Whole lines repeat (as in real logs), the numbers in them vary; zstd -3 makes about a fifth
    of a 256 KiB piece. Drawing and joining run in C: 64 MiB in well under 2 s."""
    os.makedirs(root)
    per = total_mb * MiB // nfiles
    for i in range(nfiles):
        r = random.Random(f"{seed}-text-{i}")
        ri = r.randrange
        pool, t = [], BASE_T * 1000
        for _ in range(8192):
            t += ri(50)
            msg = LOG_MESSAGES[ri(len(LOG_MESSAGES))].format(a=ri(1_000_000), b=ri(256), c=ri(256), d=1 + ri(5))
            pool.append(f"{t // 1000}.{t % 1000:03d} {LOG_LEVELS[ri(6)]} {LOG_SERVICES[ri(6)]}[{1000 + ri(64)}]: "
                        f"{msg} req={r.getrandbits(32):08x} dur_ms={ri(997)}\n".encode())
        k = int(4 * MiB / (sum(map(len, pool)) / len(pool))) + 1
        with open(os.path.join(root, f"app{i}.log"), "wb") as f:
            left = per
            while left > 0:
                b = b"".join(r.choices(pool, k=k))[:left]
                f.write(b)
                left -= len(b)


def small_path(i, nfiles):
    leaves = max(1, nfiles // 30)
    top = max(1, int(leaves ** 0.5))
    leaf = i % leaves
    return f"d{leaf % top:03d}/e{leaf // top:03d}/f{i:07d}.dat"


def gen_small(root, nfiles, seed, tiny=False):
    os.makedirs(root)
    pool = Pool(f"{seed}-small")
    made = set()
    for i in range(nfiles):
        rel = small_path(i, nfiles)
        d = os.path.dirname(rel)
        if d not in made:
            os.makedirs(os.path.join(root, d), exist_ok=True)
            made.add(d)
        n = pool.r.randint(0, 1024) if tiny else pool.size()
        with open(os.path.join(root, rel), "wb") as f:
            f.write(pool.data(n, rel))


def gen_mixed(root, scale, seed):
    """Big-ish files, small files, empty files and dirs, symlinks, hard links, varied modes."""
    nsmall = max(50, int(2000 * scale))
    gen_small(root, nsmall, seed + "-mixed")
    r = random.Random(seed + "-mixedextra")
    os.makedirs(os.path.join(root, "vm"))
    for i in range(6):
        rand_stream(f"{seed}-mixed-{i}", max(256 * 1024, int(r.randint(1, 24) * MiB * scale)),
                    os.path.join(root, "vm", f"blob{i}.bin"))
    for i in range(10):
        os.makedirs(os.path.join(root, "empty", f"e{i}"))
        open(os.path.join(root, "empty", f"zero{i}"), "wb").close()
    os.makedirs(os.path.join(root, "links"))
    for i in range(40):
        os.symlink(f"../d000/e000/f{i:07d}.dat" if i % 2 else f"dangling-{i}", os.path.join(root, "links", f"s{i}"))
    for i in range(20):
        os.link(os.path.join(root, "vm", f"blob{i % 6}.bin") if i < 6 else os.path.join(root, small_path(i, nsmall)),
                os.path.join(root, "links", f"h{i}"))
    modes = [0o600, 0o640, 0o755, 0o700, 0o444]
    for i, (dp, dn, fn) in enumerate(os.walk(root)):
        for j, name in enumerate(sorted(fn)):
            p = os.path.join(dp, name)
            if (i + j) % 7 == 0 and not os.path.islink(p):
                os.chmod(p, modes[(i + j) % len(modes)])


def scatter(path, frac, r):
    """Overwrite ~frac of the file in scattered 4 KiB pieces (in place), keep the size."""
    size = os.path.getsize(path)
    spots = max(1, int(size * frac / 4096))
    with open(path, "r+b") as f:
        for _ in range(spots):
            f.seek(r.randrange(0, max(1, size - 4096)))
            f.write(r.randbytes(4096))


def bump_mtime(path):
    st = os.lstat(path)
    os.utime(path, ns=(st.st_atime_ns, st.st_mtime_ns + 7_000_000_123), follow_symlinks=False)


def mutate(root, kind, seed):
    """The stage-to-stage change: ~1% scattered edits in big files, appends, a few small files
    rewritten, added and deleted (a whole directory too)."""
    r = random.Random(seed + "-mutate-" + kind)
    files, dirs = [], []
    for dp, dn, fn in os.walk(root):
        dirs.extend(os.path.join(dp, d) for d in dn)
        files.extend(os.path.join(dp, f) for f in fn if not os.path.islink(os.path.join(dp, f)))
    files.sort()
    dirs.sort()
    big = [f for f in files if os.path.getsize(f) >= 1 * MiB]
    small = [f for f in files if os.path.getsize(f) < 1 * MiB and "/links/" not in f]
    for i, f in enumerate(big):
        scatter(f, 0.01, r)
        if i == 0:
            with open(f, "ab") as fh:
                fh.write(r.randbytes(min(MiB, os.path.getsize(f) // 64)))
        bump_mtime(f)
    if small:
        k = max(1, len(small) // 100)
        for f in r.sample(small, k):  # rewritten (new content, maybe new size)
            with open(f, "wb") as fh:
                fh.write(r.randbytes(r.randint(100, 16000)))
            bump_mtime(f)
        for f in r.sample(small, max(1, len(small) // 200)):  # deleted
            if os.path.exists(f):
                os.unlink(f)
        leafdirs = sorted({os.path.dirname(f) for f in small})
        for i in range(k):  # added
            d = leafdirs[r.randrange(len(leafdirs))]
            with open(os.path.join(d, f"new{i:05d}.dat"), "wb") as fh:
                fh.write(r.randbytes(r.randint(100, 16000)))
        nd = os.path.join(root, "added-dir", "sub")
        os.makedirs(nd)
        for i in range(5):
            with open(os.path.join(nd, f"n{i}"), "wb") as fh:
                fh.write(r.randbytes(1000))
        if len(leafdirs) > 2:  # a whole directory deleted
            shutil.rmtree(leafdirs[-1])
    if kind == "mixed":
        links = os.path.join(root, "links")
        os.unlink(os.path.join(links, "s1"))
        os.symlink("retargeted", os.path.join(links, "s1"))
        for f in small[:5]:
            if os.path.exists(f):
                os.chmod(f, 0o664)  # metadata-only change


BASE_T = 1_700_000_000  # 2023-11-14: generated entries get deterministic times long in the past
RECENT = BASE_T + 10 * 86400


def normalize_times(root, offset_s):
    """Give every entry changed since RECENT a deterministic mtime in the past (with nanoseconds).

    Freshly generated trees would otherwise carry mtimes in the second the bench runs, and rsync
    treats directory mtimes within the same second as equal (it then leaves the target's time),
    which is an artefact of the harness, not of a real migration."""
    for dp, dn, fn in os.walk(root):
        for name in dn + fn + ([""] if dp == root else []):
            p = os.path.join(dp, name) if name else dp
            st = os.lstat(p)
            if st.st_mtime_ns // 10**9 < RECENT:
                continue
            h = int.from_bytes(hashlib.blake2b(os.path.relpath(p, root).encode(), digest_size=6).digest(), "big")
            t = (BASE_T + offset_s + h % 86400) * 10**9 + h % 10**9
            os.utime(p, ns=(t, t), follow_symlinks=False)


# ---------------------------------------------------------------- verification

def scan(root):
    out = {}

    def walk(rel):
        p = os.path.join(root, rel) if rel else root
        st = os.lstat(p)
        out[rel or "."] = st
        if os.path.isdir(p) and not os.path.islink(p):
            for e in os.scandir(p):
                walk(os.path.join(rel, e.name) if rel else e.name)

    walk("")
    return out


def same_content(a, b):
    with open(a, "rb") as fa, open(b, "rb") as fb:
        while True:
            x, y = fa.read(MiB), fb.read(MiB)
            if x != y:
                return False
            if not x:
                return True


def verify(src, dst, exact):
    """Every source entry at the target with the same type, mode, owner, size, mtime (ns, files
    and directories), symlink target, content and hard-link grouping. exact: nothing extra."""
    import stat as S
    a, b = scan(src), scan(dst)
    problems = []
    if exact:
        extra = sorted(set(b) - set(a))
        if extra:
            problems.append(f"{len(extra)} extra at target, e.g. {extra[:3]}")
    inode_map = {}
    for rel, sa in sorted(a.items()):
        sb = b.get(rel)
        if sb is None:
            problems.append(f"missing {rel}")
        elif S.S_IFMT(sa.st_mode) != S.S_IFMT(sb.st_mode):
            problems.append(f"type differs {rel}")
        elif S.S_ISLNK(sa.st_mode):
            if os.readlink(os.path.join(src, rel)) != os.readlink(os.path.join(dst, rel)):
                problems.append(f"symlink target differs {rel}")
        else:
            if S.S_IMODE(sa.st_mode) != S.S_IMODE(sb.st_mode):
                problems.append(f"mode {oct(S.S_IMODE(sa.st_mode))} != {oct(S.S_IMODE(sb.st_mode))} {rel}")
            if (sa.st_uid, sa.st_gid) != (sb.st_uid, sb.st_gid):
                problems.append(f"owner differs {rel}")
            if sa.st_mtime_ns != sb.st_mtime_ns:
                problems.append(f"mtime {sa.st_mtime_ns} != {sb.st_mtime_ns} {rel}")
            if S.S_ISREG(sa.st_mode):
                if sa.st_size != sb.st_size:
                    problems.append(f"size {sa.st_size} != {sb.st_size} {rel}")
                elif sa.st_nlink > 1 and sa.st_ino in inode_map:
                    if inode_map[sa.st_ino] != sb.st_ino:
                        problems.append(f"hard link not preserved {rel}")
                elif not same_content(os.path.join(src, rel), os.path.join(dst, rel)):
                    problems.append(f"content differs {rel}")
                if sa.st_nlink > 1:
                    inode_map.setdefault(sa.st_ino, sb.st_ino)
        if len(problems) > 20:
            break
    return problems


# ---------------------------------------------------------------- the bench

class Bench:
    def __init__(self, args):
        self.a = args
        self.procs = []
        self.mounted = None
        self.results = []  # one dict per run
        self.failures = []
        self.pod = None  # pod.CpuGroups while the pod set runs
        self.has_streams = False  # the ferry binary offers `push --streams`

    # ------------------------------------------------------------ setup
    def ensure_tools(self):
        missing = [c for c in APT_PACKAGES if not shutil.which(c)]
        if not os.path.exists("/usr/lib/squid/basic_ncsa_auth"):
            missing.append("squid")
        if missing and not self.a.no_install:
            pkgs = sorted({APT_PACKAGES[c] for c in missing})
            log(f"== installing {' '.join(pkgs)}")
            env = dict(os.environ, DEBIAN_FRONTEND="noninteractive")
            subprocess.run(["apt-get", "update", "-qq"], env=env, stdout=subprocess.DEVNULL)
            subprocess.run(["apt-get", "install", "-y", "-qq"] + pkgs, env=env, stdout=subprocess.DEVNULL)
            missing = [c for c in APT_PACKAGES if not shutil.which(c)]
            if not os.path.exists("/usr/lib/squid/basic_ncsa_auth"):
                missing.append("squid (basic_ncsa_auth)")
        if missing:
            raise BenchError(f"missing tools: {', '.join(missing)} (apt-get install rsync stunnel4 squid "
                             "apache2-utils haproxy e2fsprogs)")
        ferry = self.a.ferry
        if not os.path.exists(ferry):
            if self.a.ferry != os.path.join(REPO, "target/release/ferry"):
                raise BenchError(f"no ferry binary at {ferry}")
            log("== cargo build --release (no release binary yet)")
            subprocess.run(["cargo", "build", "--release", "--locked", "--bin", "ferry"], cwd=REPO, check=True)
        self.ferry = os.path.abspath(ferry)
        help_text = subprocess.run([self.ferry, "push", "--help"], capture_output=True, text=True).stdout
        self.has_streams = "--streams" in help_text
        if self.a.streams_rows and not self.has_streams:
            log("WARNING: --streams-rows: this ferry has no `push --streams`; only `ferry` rows")
        if "bound" in self.a.sets:
            self.null_mover = self.find_null_mover()

    def find_null_mover(self):
        """crates/net/examples/null_mover.rs, built beside the ferry binary (target/PROFILE/examples);
        built with that profile if missing (the test run builds the debug one)."""
        path = os.path.join(os.path.dirname(self.ferry), "examples", "null_mover")
        if not os.path.exists(path):
            profile = os.path.basename(os.path.dirname(self.ferry))
            if os.path.dirname(os.path.dirname(self.ferry)) != os.path.join(REPO, "target") or \
                    profile not in ("release", "debug"):
                raise BenchError(f"no null mover at {path} (set bound needs a ferry built in this repo)")
            log(f"== cargo build ({profile}) of the null mover")
            subprocess.run(["cargo", "build", "--locked", "-p", "ferry-net", "--example", "null_mover"] +
                           (["--release"] if profile == "release" else []), cwd=REPO, check=True)
        return path

    def tools(self, dsname):
        """The tools a dataset's phases run, in turn: Ferry as it comes (`auto` where the binary
        has several streams), Ferry with `--streams 1` (WAN sets, and every set with
        --streams-rows, when the binary has the option), rsync+stunnel."""
        s1 = self.has_streams and (dsname.startswith("wan-") or self.a.streams_rows)
        return ["ferry"] + (["ferry-s1"] if s1 else []) + ["rsync"]

    def side(self, side, argv):
        """argv started in the pod profile's group of `side` ("src" or "tgt") while that set runs."""
        return self.pod.wrap(side, argv) if self.pod else argv

    def pod_sample(self):
        return self.pod.sample() if self.pod else None

    def pod_used(self, before):
        return pod.CpuGroups.used(before, self.pod.sample()) if before else {}

    def start(self, name, argv, **kw):
        out = open(os.path.join(self.work, f"{name}.log"), "ab")
        d = Daemon(name, argv, stdout=kw.pop("stdout", out), stderr=out, **kw)
        out.close()
        self.procs.append(d)
        return d

    def setup(self):
        a = self.a
        self.work = os.path.abspath(a.work or f"/var/tmp/ferry-bench.{os.getpid()}")
        os.makedirs(self.work, exist_ok=True)
        log(f"== work dir {self.work}")
        W = self.work
        self.ports = {k: free_port() for k in ("squid", "router", "stunnel_srv", "rsyncd", "ferry",
                                               "stunnel_cli", "wan")}
        # certificates: one CA; the server cert names both routes; stunnel uses the same files
        if not os.path.exists(f"{W}/certs/server/tls.crt"):
            subprocess.run([self.ferry, "certs", "--out", f"{W}/certs", "--server-name", FERRY_SNI,
                            "--server-name", RSYNC_SNI], check=True, stdout=subprocess.DEVNULL)
        with open(f"{W}/stunnel-server.pem", "w") as f:
            f.write(open(f"{W}/certs/server/tls.crt").read() + open(f"{W}/certs/server/tls.key").read())
        with open(f"{W}/stunnel-client.pem", "w") as f:
            f.write(open(f"{W}/certs/client/tls.crt").read() + open(f"{W}/certs/client/tls.key").read())
        self.setup_target_fs()
        self.setup_squid()
        self.setup_haproxy()

    def setup_target_fs(self):
        a, W = self.a, self.work
        tgt = f"{W}/target"
        os.makedirs(tgt, exist_ok=True)
        if a.no_loop:
            log("WARNING: --no-loop: target on the work dir's filesystem, not a fresh journaled ext4")
            self.tgt = tgt
            return
        need = self.dataset_bytes() * 3.2 + 1024 * MiB
        files = self.dataset_files()
        need += files * 3 * 4096
        inodes = files * 3 + 200_000
        img = f"{W}/target.img"
        try:
            if os.path.exists(img):
                os.unlink(img)
            with open(img, "wb") as f:
                f.truncate(int(need))
            subprocess.run(["mkfs.ext4", "-q", "-F", "-N", str(inodes), "-O", "has_journal",
                            "-E", "lazy_itable_init=0,lazy_journal_init=0", img], check=True,
                           stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
            subprocess.run(["mount", "-o", "loop", img, tgt], check=True, stderr=subprocess.PIPE)
            self.mounted = tgt
            log(f"== target: journaled ext4 loop image {img} ({need / 2**30:.1f} GiB sparse, {inodes} inodes) on {tgt}")
        except (subprocess.CalledProcessError, OSError) as e:
            err = getattr(e, "stderr", b"") or b""
            log(f"WARNING: loop-mounted ext4 failed ({e} {err.decode(errors='replace').strip()}); "
                "the target is on the work dir's filesystem instead")
        self.tgt = tgt

    def setup_squid(self):
        W, p = self.work, self.ports
        d = f"{W}/squid"
        os.makedirs(d, exist_ok=True)
        subprocess.run(["htpasswd", "-b", "-c", f"{d}/passwd", PROXY_USER, PROXY_PASS], check=True,
                       stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        conf = f"""\
http_port 127.0.0.1:{p['squid']}
pid_filename {d}/squid.pid
cache_log {d}/cache.log
access_log stdio:{d}/access.log
cache deny all
cache_mem 8 MB
coredump_dir {d}
shutdown_lifetime 1 seconds
auth_param basic program /usr/lib/squid/basic_ncsa_auth {d}/passwd
auth_param basic children 2 startup=1
acl authenticated proxy_auth REQUIRED
acl bench_ports port {p['router']} {p['wan']}
acl CONNECT method CONNECT
http_access deny CONNECT !bench_ports
http_access allow authenticated
http_access deny all
"""
        open(f"{d}/squid.conf", "w").write(conf)
        subprocess.run(["chown", "-R", "proxy:proxy", d], check=False)
        self.squid = self.start("squid", ["squid", "-N", "-f", f"{d}/squid.conf"])
        wait_listen(p["squid"], self.squid.proc)

    def setup_haproxy(self):
        W, p = self.work, self.ports
        self.haproxy_sock = f"{W}/haproxy.sock"
        conf = f"""\
global
    maxconn 200
    stats socket {self.haproxy_sock} mode 600 level admin
defaults
    mode tcp
    timeout connect 5s
    timeout client 1h
    timeout server 1h
frontend router
    bind 127.0.0.1:{p['router']}
    tcp-request inspect-delay 5s
    tcp-request content accept if {{ req.ssl_hello_type 1 }}
    use_backend be_rsync if {{ req.ssl_sni -i {RSYNC_SNI} }}
    use_backend be_ferry if {{ req.ssl_sni -i {FERRY_SNI} }}
backend be_rsync
    server stunnel 127.0.0.1:{p['stunnel_srv']}
backend be_ferry
    server ferry 127.0.0.1:{p['ferry']}
"""
        open(f"{W}/haproxy.cfg", "w").write(conf)
        self.haproxy = self.start("haproxy", ["haproxy", "-db", "-f", f"{W}/haproxy.cfg"])
        wait_listen(p["router"], self.haproxy.proc)

    def haproxy_stat(self, backend):
        """(bytes in + out, current sessions) of a backend, from the stats socket."""
        row = self.haproxy_row(backend)
        return int(row["bin"]) + int(row["bout"]), int(row["scur"])

    def haproxy_bytes(self, backend):
        """(bytes in, bytes out) of a backend: each direction of the link separately."""
        row = self.haproxy_row(backend)
        return int(row["bin"]), int(row["bout"])

    def haproxy_row(self, backend):
        """The backend's row of HAProxy's `show stat`."""
        with socket.socket(socket.AF_UNIX) as s:
            s.connect(self.haproxy_sock)
            s.sendall(b"show stat\n")
            data = b""
            while True:
                chunk = s.recv(65536)
                if not chunk:
                    break
                data += chunk
        rows = csv.DictReader(io.StringIO(data.decode().lstrip("# ")))
        for row in rows:
            if row["pxname"] == backend and row["svname"] == "BACKEND":
                return row
        raise BenchError(f"haproxy has no backend {backend}")

    def start_wan(self):
        p = self.ports
        a = self.a
        self.wan = self.start("wanrelay", [sys.executable, os.path.join(HERE, "wanrelay.py"),
                                           "--listen", f"127.0.0.1:{p['wan']}", "--to", f"127.0.0.1:{p['router']}",
                                           "--delay-ms", str(a.wan_delay_ms), "--mbit", str(a.wan_mbit),
                                           "--shared-mbit", str(a.wan_shared_mbit), "--window-kib", str(a.wan_window_kib)])
        wait_listen(p["wan"], self.wan.proc)

    def teardown(self):
        signal.signal(signal.SIGTERM, signal.SIG_IGN)  # a second SIGTERM must not cut the cleanup short
        for d in reversed(self.procs):
            try:
                d.stop()
            except (OSError, ChildProcessError):
                pass
        if self.pod:
            self.pod.cleanup()
            self.pod = None
        if self.mounted:
            subprocess.run(["umount", self.mounted], check=False)
        if not self.a.keep and getattr(self, "work", None) and not self.a.work:
            shutil.rmtree(self.work, ignore_errors=True)

    # ------------------------------------------------------------ one measured run
    def infra(self):
        ds = [self.squid, self.haproxy]
        return sum(tree_cpu(d.pid) for d in ds)

    def settle(self, backend, rsyncd=None):
        deadline = time.time() + 15
        while time.time() < deadline:
            _, scur = self.haproxy_stat(backend)
            busy = rsyncd is not None and descendants(rsyncd.pid)
            if scur == 0 and not busy:
                return
            time.sleep(0.02)
        log(f"WARNING: {backend} still busy 15 s after the client exited")

    def run_ferry(self, src, tgt, delete, port, proxy=True, extra=()):
        """One push. proxy=False: straight to `port` (no squid; pass ferry serve's own port to skip
        the router too). extra: more `ferry push` arguments (e.g. --bwlimit)."""
        W = self.work
        serve = self.start("ferry-serve", self.side("tgt", [
            self.ferry, "serve", "--listen", f"127.0.0.1:{self.ports['ferry']}", "--tls-dir", f"{W}/certs/server",
            "--volume", f"vol={tgt}", "-q"]))
        wait_listen(self.ports["ferry"], serve.proc)
        route = ["--proxy", f"http://{PROXY_USER}:{PROXY_PASS}@127.0.0.1:{self.ports['squid']}"] if proxy \
            else ["--no-proxy", "*"]
        argv = [self.ferry, "push", src, f"ferry://127.0.0.1:{port}/vol", "--server-name", FERRY_SNI] + route + \
               ["--tls-dir", f"{W}/certs/client", "--json", "-q"] + (["--delete"] if delete else []) + list(extra)
        subprocess.run(["sync"])
        serve.mark()
        th0 = thread_cpu(serve.pid)
        poll = HwmPoller(serve.pid, children=False, threads=True)
        poll.start()
        dirs0 = self.haproxy_bytes("be_ferry")
        inf0 = self.infra()
        net0 = tree_cpu(self.wan.pid) if port == self.ports["wan"] else 0
        cg0 = self.pod_sample()
        wall, rc, out, err, ccpu, crss = run_client(self.side("src", argv), W)
        self.settle("be_ferry")
        cg = self.pod_used(cg0)
        poll.finish()
        tgt_threads = threads_used(th0, poll.threads)
        dirs1 = self.haproxy_bytes("be_ferry")
        inf1 = self.infra()
        net1 = tree_cpu(self.wan.pid) if port == self.ports["wan"] else 0
        scpu, srss = serve.stop()
        self.procs.remove(serve)
        summary = {}
        for line in out.decode(errors="replace").splitlines():
            try:
                ev = json.loads(line)
            except ValueError:
                continue
            if ev.get("event") == "summary":
                summary = ev
        ok = rc == 0
        if not ok:
            self.failures.append(f"ferry push exited {rc}: {err.decode(errors='replace')[-800:]}")
        return dict(tool="ferry", wall=wall, ok=ok, src_cpu=ccpu, tgt_cpu=scpu, infra_cpu=inf1 - inf0,
                    net_cpu=net1 - net0, src_rss=crss, tgt_rss=srss, tgt_anon=poll.anon, **wire_counts(dirs0, dirs1),
                    own_wire=summary.get("bytes_on_wire"), duration_s=summary.get("duration_s"),
                    comp_in=summary.get("bytes_before_compression"), comp_out=summary.get("bytes_after_compression"),
                    streams=summary.get("streams"), tgt_threads=tgt_threads, exit=rc, **cg)

    def run_rsync(self, src, tgt, delete, port, block=None):
        """One rsync through stunnel into module `tgt`. block: (options, name) to sync the one file
        or device `src` onto `name` in the module with those options (the `block` set)."""
        W, p = self.work, self.ports
        open(f"{W}/rsyncd.conf", "w").write(
            f"use chroot = no\nnumeric ids = yes\nlog file = {W}/rsyncd.log\n"
            f"[vol]\npath = {tgt}\nread only = false\nuid = root\ngid = root\n"
            # without chroot rsyncd munges symlinks by default; a volume copy wants them verbatim
            "munge symlinks = no\n"
            # rsyncd refuses --write-devices unless a module allows it
            + ("refuse options = !write-devices\n" if block else ""))
        rsyncd = self.start("rsyncd", self.side("tgt", ["rsync", "--daemon", "--no-detach", f"--config={W}/rsyncd.conf",
                                                        f"--port={p['rsyncd']}", "--address=127.0.0.1"]))
        open(f"{W}/stunnel-server.conf", "w").write(
            f"foreground = yes\npid =\ndebug = 3\n[rsync]\naccept = 127.0.0.1:{p['stunnel_srv']}\n"
            f"connect = 127.0.0.1:{p['rsyncd']}\ncert = {W}/stunnel-server.pem\n"
            f"CAfile = {W}/certs/server/ca.crt\nverifyChain = yes\n")
        open(f"{W}/stunnel-client.conf", "w").write(
            f"foreground = yes\npid =\ndebug = 3\n[rsync]\nclient = yes\naccept = 127.0.0.1:{p['stunnel_cli']}\n"
            f"connect = 127.0.0.1:{p['squid']}\nprotocol = connect\nprotocolHost = 127.0.0.1:{port}\n"
            f"protocolUsername = {PROXY_USER}\nprotocolPassword = {PROXY_PASS}\nprotocolAuthentication = basic\n"
            f"sni = {RSYNC_SNI}\ncert = {W}/stunnel-client.pem\nCAfile = {W}/certs/client/ca.crt\n"
            f"verifyChain = yes\ncheckHost = {RSYNC_SNI}\n")
        st_srv = self.start("stunnel-server", self.side("tgt", ["stunnel4", f"{W}/stunnel-server.conf"]))
        st_cli = self.start("stunnel-client", self.side("src", ["stunnel4", f"{W}/stunnel-client.conf"]))
        wait_listen(p["rsyncd"], rsyncd.proc)
        wait_listen(p["stunnel_srv"], st_srv.proc)
        wait_listen(p["stunnel_cli"], st_cli.proc)
        argv = ["rsync", "-aH", "--partial", "--numeric-ids", "--stats"] + (["--delete"] if delete else []) + \
               [src.rstrip("/") + "/", f"rsync://127.0.0.1:{p['stunnel_cli']}/vol/"]
        if block:
            options, name = block
            argv = ["rsync"] + options + [src, f"rsync://127.0.0.1:{p['stunnel_cli']}/vol/{name}"]
        subprocess.run(["sync"])
        for d in (rsyncd, st_srv, st_cli):
            d.mark()
        poll = HwmPoller(rsyncd.pid)
        poll.start()
        dirs0 = self.haproxy_bytes("be_rsync")
        inf0 = self.infra()
        net0 = tree_cpu(self.wan.pid) if port == self.ports["wan"] else 0
        cg0 = self.pod_sample()
        wall, rc, out, err, rcpu, rrss = run_client(self.side("src", argv), W)
        self.settle("be_rsync", rsyncd)
        cg = self.pod_used(cg0)
        children_rss = poll.finish()
        dirs1 = self.haproxy_bytes("be_rsync")
        inf1 = self.infra()
        net1 = tree_cpu(self.wan.pid) if port == self.ports["wan"] else 0
        dcpu, drss = rsyncd.stop()
        scpu, srss = st_srv.stop()
        ccpu, crss = st_cli.stop()
        for d in (rsyncd, st_srv, st_cli):
            self.procs.remove(d)
        txt = out.decode(errors="replace")
        sent = recv = None
        for line in txt.splitlines():
            if line.startswith("Total bytes sent:"):
                sent = int(line.split(":")[1].replace(",", ""))
            if line.startswith("Total bytes received:"):
                recv = int(line.split(":")[1].replace(",", ""))
        ok = rc == 0
        if not ok:
            self.failures.append(f"rsync exited {rc}: {err.decode(errors='replace')[-800:]}")
        return dict(tool="rsync", wall=wall, ok=ok, src_cpu=rcpu + ccpu, tgt_cpu=dcpu + scpu,
                    stunnel_cpu=ccpu + scpu, infra_cpu=inf1 - inf0, net_cpu=net1 - net0,
                    src_rss=rrss + crss, tgt_rss=drss + srss + children_rss, tgt_anon=poll.anon,
                    **wire_counts(dirs0, dirs1),
                    own_wire=(sent + recv) if sent is not None and recv is not None else None,
                    exit=rc, **cg)

    def run_local(self, kind, src, tgt):
        shutil.rmtree(tgt, ignore_errors=True)
        os.makedirs(os.path.dirname(tgt), exist_ok=True)
        subprocess.run(["sync"])
        t0 = time.monotonic()
        if kind == "cp -a":
            r = subprocess.run(["cp", "-a", src, tgt])
        else:
            os.makedirs(tgt)
            r = subprocess.run(f"tar -C {src} -cf - . | tar -C {tgt} -xpf -", shell=True)
        wall = time.monotonic() - t0
        problems = verify(src, tgt, exact=True) if r.returncode == 0 else [f"{kind} exited {r.returncode}"]
        if problems and kind == "cp -a":
            self.failures.append(f"local {kind}: {problems[:3]}")
        return wall

    # ------------------------------------------------------------ phases
    def measured(self, dsname, phase, tool, src, tgt, delete, exact, port, size, tag=None, **kw):
        """One run plus its verification, appended to the results (with the fields of `tag`);
        kw go to run_ferry / run_rsync."""
        if tool == "ferry-s1":
            kw["extra"] = list(kw.get("extra", ())) + ["--streams", "1"]
        fn = self.run_rsync if tool == "rsync" else self.run_ferry
        res = fn(src, tgt, delete, port, **kw)
        res["tool"] = tool
        problems = verify(src, tgt, exact) if self.a.verify and res["ok"] else []
        if problems:
            self.failures.append(f"{dsname}/{phase}/{tool}: verification failed: {problems[:5]}")
            log(f"   VERIFICATION FAILED {dsname}/{phase}/{tool}: {problems[:5]}")
        res.update(dataset=dsname, phase=phase, verified=not problems and res["ok"], size=size, **(tag or {}))
        self.results.append(res)
        log(f"   {dsname:11} {phase:9} {tool:8} {res['wall']:7.2f}s  cpu {res['src_cpu'] + res['tgt_cpu'] + res['infra_cpu']:6.2f}s"
            f"  rss {res['src_rss'] / 1024:6.1f}/{res['tgt_rss'] / 1024:6.1f} MiB (tgt anon {res['tgt_anon'] / 1024:6.1f})  wire {res['wire'] / 1e6:9.2f} MB"
            f"  {'ok' if res['verified'] else 'FAILED'}")
        return res

    def local_sync(self, src, dst, delete=True, ignore_existing=False):
        argv = ["rsync", "-aH", "--numeric-ids"] + (["--delete"] if delete else []) + \
               (["--ignore-existing"] if ignore_existing else []) + [src + "/", dst + "/"]
        subprocess.run(argv, check=True)

    def run_dataset(self, name, v1, v2, size, phases, pairs, port, floors=False):
        order = self.tools(name)
        tg = {t: f"{self.tgt}/{t}/{name}" for t in order}
        for phase in phases:
            for i in range(pairs):
                # Each tool goes first in turn: the first run of a round pays for what the
                # others' runs pushed out of the caches (a fixed order made one look slower).
                k = i % len(order)
                for tool in order[k:] + order[:k]:
                    t = tg[tool]
                    if phase == "initial":
                        shutil.rmtree(t, ignore_errors=True)
                        os.makedirs(t)
                        self.measured(name, phase, tool, v1, t, False, True, port, size)
                    elif phase == "nochange":
                        self.measured(name, phase, tool, v1, t, False, True, port, size)
                    elif phase == "delta":
                        if i > 0:
                            self.local_sync(v1, t)
                        self.measured(name, phase, tool, v2, t, False, False, port, size)
                    elif phase == "cutover":
                        if i > 0:
                            self.local_sync(v1, t, delete=False, ignore_existing=True)
                        self.measured(name, phase, tool, v2, t, True, True, port, size)
            if phase == "initial" and floors:
                for kind in ("cp -a", "tar|tar"):
                    for i in range(pairs):
                        w = self.run_local(kind, v1, f"{self.tgt}/local/{name}")
                        self.results.append(dict(tool=kind, dataset=name, phase="local", wall=w, size=size))
                        log(f"   {name:11} local     {kind:7} {w:7.2f}s")
                shutil.rmtree(f"{self.tgt}/local/{name}", ignore_errors=True)
        for t in tg.values():  # free the space for the next dataset
            shutil.rmtree(t, ignore_errors=True)

    def run_direct(self):
        """The large initial copy, Ferry straight to `ferry serve` vs through squid + HAProxy, alternating."""
        v1, _, size = self.make("large", "large", self.large_params())
        log(f"== direct vs proxy+router: large, {size / MiB:.0f} MiB")
        t = f"{self.tgt}/ferry/direct"
        routes = (("direct", self.ports["ferry"], False), ("chain", self.ports["router"], True))
        for i in range(self.a.pairs):
            for route, port, proxy in routes:
                fresh_dir(t)
                self.measured("large", route, "ferry", v1, t, False, True, port, size,
                              tag=dict(set="direct"), proxy=proxy)
        shutil.rmtree(t, ignore_errors=True)

    def run_bwlimit(self):
        """One incompressible file pushed through squid + HAProxy under `--bwlimit`; the achieved
        rate is reported, not enforced (a noisy machine must not fail the run), the copy is verified."""
        a = self.a
        v1, _, size = self.make("bwlimit", "bwlimit", dict(total_mb=a.bwlimit_mb, nfiles=1))
        limit = parse_rate(a.bwlimit_rate)
        log(f"== bwlimit: {size / MiB:.0f} MiB at --bwlimit {a.bwlimit_rate} ({limit} B/s)")
        t = f"{self.tgt}/ferry/bwlimit"
        for i in range(a.pairs):
            fresh_dir(t)
            r = self.measured("bwlimit", "initial", "ferry", v1, t, False, True, self.ports["router"], size,
                              tag=dict(set="bwlimit", limit=limit), extra=["--bwlimit", a.bwlimit_rate])
            rate = achieved_rate(r)
            if rate is not None:
                log(f"   bwlimit achieved {rate / 1e6:.2f} MB/s = {rate / limit:.3f}× the limit")
        shutil.rmtree(t, ignore_errors=True)

    def run_null(self, src, port):
        """The null mover (crates/net/examples/null_mover.rs) through squid + HAProxy: read, BLAKE3,
        TLS, proxy, router, TLS, BLAKE3, discard. Its sink stands where ferry serve does (be_ferry)."""
        W = self.work
        sink = self.start("null-sink", [self.null_mover, "sink", "--listen", f"127.0.0.1:{self.ports['ferry']}",
                                        "--tls-dir", f"{W}/certs/server"])
        wait_listen(self.ports["ferry"], sink.proc)
        files = sorted(os.path.join(d, f) for d, _, fs in os.walk(src) for f in fs)
        argv = [self.null_mover, "send", "--to", f"127.0.0.1:{port}", "--server-name", FERRY_SNI,
                "--proxy", f"http://{PROXY_USER}:{PROXY_PASS}@127.0.0.1:{self.ports['squid']}",
                "--tls-dir", f"{W}/certs/client"] + files
        subprocess.run(["sync"])
        sink.mark()
        wire0, _ = self.haproxy_stat("be_ferry")
        inf0 = self.infra()
        wall, rc, out, err, ccpu, crss = run_client(argv, W)
        self.settle("be_ferry")
        wire1, _ = self.haproxy_stat("be_ferry")
        inf1 = self.infra()
        scpu, srss = sink.stop()
        self.procs.remove(sink)
        ok = rc == 0 and out.startswith(b"ok ")
        if not ok:
            self.failures.append(f"null mover exited {rc}: {err.decode(errors='replace')[-800:]}")
        return dict(tool="null", wall=wall, ok=ok, verified=ok, src_cpu=ccpu, tgt_cpu=scpu,
                    infra_cpu=inf1 - inf0, src_rss=crss, tgt_rss=srss, wire=wire1 - wire0)

    def run_bound(self):
        """The large initial copy by Ferry, the null mover and rsync+stunnel through the same chain,
        in turn, each into an empty target: the bound and both movers' distance from it, side by side."""
        v1, _, size = self.make("large", "large", self.large_params())
        warm(v1)
        log(f"== bound: Ferry, the null mover and rsync+stunnel, large, {size / MiB:.0f} MiB")
        t = f"{self.tgt}/ferry/bound"
        for i in range(self.a.pairs):
            for tool in ("ferry", "rsync"):
                fresh_dir(t)
                self.measured("large", "initial", tool, v1, t, False, True, self.ports["router"], size,
                              tag=dict(set="bound"))
            res = self.run_null(v1, self.ports["router"])
            res.update(dataset="large", phase="initial", size=size, set="bound")
            self.results.append(res)
            log(f"   {'large':11} {'initial':9} {'null':5} {res['wall']:7.2f}s  cpu "
                f"{res['src_cpu'] + res['tgt_cpu'] + res['infra_cpu']:6.2f}s  {'ok' if res['ok'] else 'FAILED'}")
        shutil.rmtree(t, ignore_errors=True)

    def run_compress(self):
        """Ferry without and with `--compress` through squid + HAProxy, alternating, on the large
        (incompressible) dataset and on generated log-like text. The with/without wall ratio on
        incompressible data is reported against 1.10×, never enforced; every copy is verified."""
        a = self.a
        data = (("incompressible", "large", self.large_params()),
                ("compressible", "text", dict(total_mb=a.compress_mb, nfiles=4)))
        t = f"{self.tgt}/ferry/compress"
        for label, kind, p in data:
            v1, _, size = self.make(kind, kind, p)
            log(f"== compress: {kind} ({label}), {size / MiB:.0f} MiB, without and with --compress")
            for i in range(a.pairs):
                for phase, extra in (("plain", []), ("compress", ["--compress"])):
                    fresh_dir(t)
                    r = self.measured(kind, phase, "ferry", v1, t, False, True, self.ports["router"], size,
                                      tag=dict(set="compress", data=label, compress=bool(extra)), extra=extra)
                    if extra and r.get("comp_in") is not None:
                        log(f"   compress: {r['comp_in'] / 1e6:.2f} MB offered to zstd -> {r['comp_out'] / 1e6:.2f} MB sent")
        shutil.rmtree(t, ignore_errors=True)

    def run_pod(self):
        """Large and small initial copies with each side in its own 1-CPU group (pod.py), through
        squid + HAProxy, the tools in turn; the groups are removed after (teardown too, on failure)."""
        a = self.a
        log("== pod profile: each side limited to one CPU")
        self.pod = pod.CpuGroups(log, limit=a.pod_limit).setup()
        try:
            for name, kind, p in (("pod-large", "large", dict(total_mb=a.pod_large_mb, nfiles=a.large_files)),
                                  ("pod-small", "small", dict(nfiles=a.pod_small_files))):
                v1, _, size = self.make(name, kind, p)
                warm(v1)
                nfiles = sum(len(fn) for _, _, fn in os.walk(v1))
                log(f"== {name}: {nfiles} files, {size / MiB:.0f} MiB, {self.pod.mode}")
                order = self.tools(name)
                tg = {t: f"{self.tgt}/{t}/{name}" for t in order}
                for i in range(a.pairs):
                    for tool in order:
                        fresh_dir(tg[tool])
                        self.measured(name, "initial", tool, v1, tg[tool], False, True, self.ports["router"], size,
                                      tag=dict(set="pod", files=nfiles, limit=self.pod.mode))
                for t in tg.values():
                    shutil.rmtree(t, ignore_errors=True)
        finally:
            self.pod.cleanup()
            self.pod = None

    # ------------------------------------------------------------ datasets
    def large_params(self):
        return dict(total_mb=self.a.large_mb, nfiles=self.a.large_files)

    def datasets(self):
        a = self.a
        out = []
        if "large" in a.sets:
            out.append(("large", "large", self.large_params()))
        if "small" in a.sets:
            out.append(("small", "small", dict(nfiles=a.small_files)))
        if "mixed" in a.sets:
            out.append(("mixed", "mixed", dict(scale=a.mixed_scale)))
        if "wan" in a.sets:
            out.append(("wan-large", "large", dict(total_mb=a.wan_large_mb, nfiles=max(1, a.large_files // 2))))
            out.append(("wan-small", "small", dict(nfiles=a.wan_small_files)))
        if "scale" in a.sets:
            for n in a.scale:
                out.append((f"scale-{n}", "scale", dict(nfiles=n)))
        return out

    def dataset_bytes(self):
        b = 0
        for name, kind, p in self.datasets():
            if kind == "large":
                b = max(b, p["total_mb"] * MiB * 1.02)
            elif kind == "small":
                b = max(b, p["nfiles"] * 11000)
            elif kind == "mixed":
                b = max(b, 6 * 24 * MiB * p["scale"] + 2000 * p["scale"] * 11000)
            else:
                b = max(b, p["nfiles"] * 600)
        if "direct" in self.a.sets or "bound" in self.a.sets:
            b = max(b, self.a.large_mb * MiB * 1.02)
        if "bwlimit" in self.a.sets:
            b = max(b, self.a.bwlimit_mb * MiB * 1.02)
        if "compress" in self.a.sets:
            b = max(b, self.a.large_mb * MiB * 1.02, self.a.compress_mb * MiB * 1.02)
        if "block" in self.a.sets:  # the image case: Ferry's and rsync's disk.img at once
            b = max(b, self.a.block_mb * MiB * 2.2)
        if "pod" in self.a.sets:
            b = max(b, self.a.pod_large_mb * MiB * 1.02, self.a.pod_small_files * 11000)
        return b

    def dataset_files(self):
        n = 3000
        for name, kind, p in self.datasets():
            n = max(n, p.get("nfiles", 0) * 1.05 if kind != "large" else 0)
        if "pod" in self.a.sets:
            n = max(n, self.a.pod_small_files * 1.05)
        return int(n)

    def make(self, name, kind, p):
        """Generate v1 (and v2 = v1 + mutation) under work/src, reused across runs with the same key."""
        key = hashlib.sha1(json.dumps([kind, p, 2], sort_keys=True).encode()).hexdigest()[:10]
        base = f"{self.work}/src/{kind}-{key}"
        v1, v2 = f"{base}/v1", f"{base}/v2"
        if not os.path.exists(f"{base}/.done"):
            shutil.rmtree(base, ignore_errors=True)
            t0 = time.monotonic()
            seed = f"ferry-bench-{kind}"
            if kind in ("large", "bwlimit"):
                gen_large(v1, p["total_mb"], p["nfiles"], seed)
            elif kind == "small":
                gen_small(v1, p["nfiles"], seed)
            elif kind == "mixed":
                gen_mixed(v1, p["scale"], seed)
            elif kind == "text":
                gen_text(v1, p["total_mb"], p["nfiles"], seed)
            else:
                gen_small(v1, p["nfiles"], seed, tiny=True)
            normalize_times(v1, 0)
            if kind not in ("scale", "bwlimit", "text"):  # these have no second stage
                subprocess.run(["cp", "-a", v1, v2], check=True)
                mutate(v2, kind, seed)
                normalize_times(v2, 5 * 86400)
            open(f"{base}/.done", "w").close()
            log(f"== generated {name} in {time.monotonic() - t0:.1f}s")
        size = 0
        for dp, dn, fn in os.walk(v1):
            for f in fn:
                st = os.lstat(os.path.join(dp, f))
                size += st.st_size if st.st_nlink == 1 or True else 0
        return v1, (v2 if os.path.exists(v2) else None), size

    def run(self):
        a = self.a
        self.setup()
        if "wan" in a.sets:
            self.start_wan()
        else:
            self.wan = None
        for name, kind, p in self.datasets():
            v1, v2, size = self.make(name, kind, p)
            # The first measured run (Ferry's) must not pay cold reads that the others
            # (rsync's) then skip: a reused dataset starts out of the page cache.
            warm(v1)
            if v2:
                warm(v2)
            nfiles = sum(len(fn) for _, _, fn in os.walk(v1))
            log(f"== {name}: {nfiles} files, {size / MiB:.0f} MiB")
            if kind == "scale":
                self.run_dataset(name, v1, None, size, ["initial", "nochange"], a.scale_pairs, self.ports["router"])
            else:
                port = self.ports["wan"] if name.startswith("wan-") else self.ports["router"]
                self.run_dataset(name, v1, v2, size, a.phases, a.pairs, port,
                                 floors=(kind in ("large", "small") and not name.startswith("wan-")))
            self.results.append(dict(dataset=name, phase="info", files=nfiles, size=size))
        if "direct" in a.sets:
            self.run_direct()
        if "bound" in a.sets:
            self.run_bound()
        if "bwlimit" in a.sets:
            self.run_bwlimit()
        if "compress" in a.sets:
            self.run_compress()
        if "block" in a.sets:
            block.BlockSet(self, log).run()
        if "pod" in a.sets:
            self.run_pod()


# ---------------------------------------------------------------- report

def med(xs):
    xs = [x for x in xs if x is not None]
    return statistics.median(xs) if xs else None


def rng(xs, fmt):
    xs = [x for x in xs if x is not None]
    if not xs:
        return "-"
    if len(xs) == 1:
        return fmt(xs[0])
    return f"{fmt(statistics.median(xs))} ({fmt(min(xs))}–{fmt(max(xs))})"


def achieved_rate(r):
    """Bytes per second Ferry put on its connection: its own `bytes_on_wire` over its `duration_s`."""
    if r.get("own_wire") is None or not r.get("duration_s"):
        return None
    return r["own_wire"] / r["duration_s"]


def direct_table(rows):
    """Large initial copy: Ferry straight to ferry serve vs through squid + HAProxy."""
    f2 = lambda x: f"{x:.2f}"
    f1 = lambda x: f"{x:.1f}"
    d = [r for r in rows if r["phase"] == "direct"]
    c = [r for r in rows if r["phase"] == "chain"]
    ratios = [b["wall"] / a_["wall"] for a_, b in zip(d, c) if a_["wall"] > 0]
    out = ["| dataset | route | wall s | MB/s | CPU s tool | wire MB (tool's own count) | chain/direct wall | ok |",
           "|" + "---|" * 8]
    for name, rs in (("direct to ferry serve", d), ("squid + HAProxy", c)):
        if not rs:
            continue
        out.append(f"| {rs[0]['dataset']} initial | {name} | {rng([r['wall'] for r in rs], f2)} | "
                   f"{rng([r['size'] / r['wall'] / 1e6 for r in rs], f1)} | "
                   f"{rng([r['src_cpu'] + r['tgt_cpu'] for r in rs], f2)} | "
                   f"{rng([r['own_wire'] for r in rs], lambda x: f'{x / 1e6:.1f}')} | "
                   f"{rng(ratios, f2) if rs is c else ''} | {'yes' if all(r['verified'] for r in rs) else 'NO'} |")
    return "\n".join(out)


def bound_walls(rows):
    """Median wall time of each mover's verified runs in the bound set."""
    return {tool: med([r["wall"] for r in rows if r["tool"] == tool and r["verified"]])
            for tool in ("ferry", "rsync", "null")}


def bound_table(rows):
    """Large initial copy: Ferry and rsync+stunnel against the null mover (the bound of a verified
    encrypted copy), run in turn in one set."""
    f2 = lambda x: f"{x:.2f}"
    f1 = lambda x: f"{x:.1f}"
    by = {tool: [r for r in rows if r["tool"] == tool] for tool in ("ferry", "rsync", "null")}
    out = ["| dataset | mover | wall s | MB/s | CPU s tool | CPU s squid+haproxy | wall / null mover's | ok |",
           "|" + "---|" * 8]
    for name, tool in (("ferry", "ferry"), ("rsync+stunnel", "rsync"), ("null mover", "null")):
        rs = by[tool]
        if not rs:
            continue
        ratios = [a_["wall"] / b["wall"] for a_, b in zip(rs, by["null"]) if b["wall"] > 0]
        out.append(f"| {rs[0]['dataset']} initial | {name} | {rng([r['wall'] for r in rs], f2)} | "
                   f"{rng([r['size'] / r['wall'] / 1e6 for r in rs], f1)} | "
                   f"{rng([r['src_cpu'] + r['tgt_cpu'] for r in rs], f2)} | "
                   f"{rng([r['infra_cpu'] for r in rs], f2)} | "
                   f"{rng(ratios, f2) if tool != 'null' else ''} | {'yes' if all(r['verified'] for r in rs) else 'NO'} |")
    w = bound_walls(rows)
    if w["null"] and w["rsync"]:
        out.append("")
        out.append(f"The null mover is {w['rsync'] / w['null']:.2f}× faster than rsync+stunnel here (medians, same "
                   f"set): the most any mover that reads, hashes and encrypts every byte could reach through this "
                   f"chain on this machine; Ferry is {w['rsync'] / w['ferry']:.2f}×.")
    return "\n".join(out)


def bwlimit_table(rows):
    """--bwlimit: the configured limit against the achieved average rate; a verdict, never a failure."""
    limit = rows[0]["limit"]
    rates = [achieved_rate(r) for r in rows]
    ratios = [x / limit for x in rates if x is not None]
    within = [abs(x - 1) <= 0.10 for x in ratios]
    verdict = "-" if not ratios else ("yes" if abs(med(ratios) - 1) <= 0.10 else "no")
    if len(within) > 1:
        verdict += f" ({sum(within)}/{len(within)} runs)"
    out = ["| file MiB | limit B/s | runs | wire MB (bytes_on_wire) | duration_s | achieved B/s | achieved/limit | "
           "within 10% | ok |", "|" + "---|" * 9]
    out.append(f"| {rows[0]['size'] / MiB:.1f} | {limit} | {len(rows)} | "
               f"{rng([r['own_wire'] for r in rows], lambda x: f'{x / 1e6:.2f}')} | "
               f"{rng([r['duration_s'] for r in rows], lambda x: f'{x:.2f}')} | "
               f"{rng(rates, lambda x: f'{x:.0f}')} | {rng(ratios, lambda x: f'{x:.3f}')} | {verdict} | "
               f"{'yes' if all(r['verified'] for r in rows) else 'NO'} |")
    return "\n".join(out)


def compress_table(rows):
    """Without and with --compress, per data kind; the no-slowdown verdict is reported, never a failure."""
    f2 = lambda x: f"{x:.2f}"
    f1 = lambda x: f"{x:.1f}"
    mb = lambda x: f"{x / 1e6:.2f}"
    out = ["| data | MiB | --compress | wall s | MB/s | CPU s tool | wire MB (router) | wire MB (bytes_on_wire) | "
           "before → after compression MB | on/off wall | on/off wire | no slowdown (≤ 1.10×) | ok |",
           "|" + "---|" * 13]
    for label in dict.fromkeys(r["data"] for r in rows):
        off = [r for r in rows if r["data"] == label and not r["compress"]]
        on = [r for r in rows if r["data"] == label and r["compress"]]
        walls = [b["wall"] / a_["wall"] for a_, b in zip(off, on) if a_["wall"] > 0]
        wires = [b["own_wire"] / a_["own_wire"] for a_, b in zip(off, on) if a_["own_wire"] and b["own_wire"]]
        verdict = ""
        if label == "incompressible":
            verdict = "-" if not walls else ("yes" if med(walls) <= 1.10 else "no")
            if len(walls) > 1:
                verdict += f" ({sum(x <= 1.10 for x in walls)}/{len(walls)} pairs)"
        for rs in (off, on):
            if not rs:
                continue
            comp = ""
            if rs is on:
                comp = f"{rng([r['comp_in'] for r in rs], mb)} → {rng([r['comp_out'] for r in rs], mb)}"
            out.append(f"| {rs[0]['dataset']} ({label}) | {rs[0]['size'] / MiB:.1f} | {'yes' if rs is on else 'no'} | "
                       f"{rng([r['wall'] for r in rs], f2)} | {rng([r['size'] / r['wall'] / 1e6 for r in rs], f1)} | "
                       f"{rng([r['src_cpu'] + r['tgt_cpu'] for r in rs], f2)} | {rng([r['wire'] for r in rs], mb)} | "
                       f"{rng([r['own_wire'] for r in rs], mb)} | {comp} | "
                       f"{rng(walls, lambda x: f'{x:.2f}×') if rs is on else ''} | "
                       f"{rng(wires, lambda x: f'{x:.3f}×') if rs is on else ''} | {verdict if rs is on else ''} | "
                       f"{'yes' if all(r['verified'] for r in rs) else 'NO'} |")
    return "\n".join(out)


TOOL_NAMES = {"ferry": "ferry", "ferry-s1": "ferry --streams 1", "rsync": "rsync+stunnel"}


def per_gb(r, side):
    """A side's CPU seconds per GB (10^9 bytes) of the dataset's logical size in one run."""
    return r[f"{side}_cpu"] / (r["size"] / 1e9) if r.get("size") else None


def threads_lines(results):
    """Where `ferry serve`'s CPU goes on the small-file initial copies: CPU seconds per thread
    name (summed over threads of one name, median over runs), per 1000 files, polled every
    100 ms (a thread's last 100 ms before it ends are not seen)."""
    out = []
    for ds in dict.fromkeys(r["dataset"] for r in results):
        if not ("small" in ds or ds.startswith("scale-")):
            continue
        files = next((r.get("files") for r in results if r["dataset"] == ds and r.get("files")), None)
        for tool in ("ferry", "ferry-s1"):
            rs = [r for r in results if r["dataset"] == ds and r["phase"] == "initial" and r["tool"] == tool
                  and r.get("tgt_threads")]
            if not rs or not files:
                continue
            names = sorted({n for r in rs for n in r["tgt_threads"]},
                           key=lambda n: -med([r["tgt_threads"].get(n, 0.0) for r in rs]))
            parts = [f"{n} {med([r['tgt_threads'].get(n, 0.0) for r in rs]) / files * 1000:.3f}" for n in names]
            unseen = med([r["tgt_cpu"] - sum(r["tgt_threads"].values()) for r in rs])
            parts.append(f"not seen by thread (ended within 100 ms of a poll, or exit) {unseen / files * 1000:.3f}")
            out.append(f"`{TOOL_NAMES.get(tool, tool)} serve` CPU-s per 1000 files by thread, {ds} initial: "
                       + ", ".join(p for p in parts if not p.endswith(" 0.000")))
    return ([""] + out) if out else []


def report(results, args, bench):
    f3 = lambda x: f"{x:.3f}"
    f2 = lambda x: f"{x:.2f}"
    f1 = lambda x: f"{x:.1f}"
    mb = lambda x: f"{x / 1e6:.1f}"
    lines = []
    sets = {}  # the runs of the direct, bwlimit and compress sets get their own tables
    for r in results:
        if "set" in r:
            sets.setdefault(r["set"], []).append(r)
    results = [r for r in results if "set" not in r]
    info = {r["dataset"]: r for r in results if r.get("phase") == "info"}
    lines.append("| dataset | phase | tool | wall s | MB/s | CPU s all | CPU s tool | CPU s squid+haproxy | "
                 "src / tgt CPU-s/GB | src / tgt CPU-s per 1k files | "
                 "RSS MiB src | RSS MiB tgt | tgt anon MiB | wire MB (router) | wire MB (tool's own count) | rsync/tool wall | ok |")
    lines.append("|" + "---|" * 17)
    summary = {}
    for ds in dict.fromkeys(r["dataset"] for r in results):
        for phase in dict.fromkeys(r["phase"] for r in results if r["dataset"] == ds):
            if phase in ("info",):
                continue
            rows = [r for r in results if r["dataset"] == ds and r["phase"] == phase]
            if phase == "local":
                for tool in dict.fromkeys(r["tool"] for r in rows):
                    w = [r["wall"] for r in rows if r["tool"] == tool]
                    summary[(ds, "local", tool)] = med(w)
                    lines.append(f"| {ds} | local floor | {tool} | {rng(w, f2)} | {rng([rows[0]['size'] / x / 1e6 for x in w], f1)} "
                                 "| | | | | | | | | | | | |")
                continue
            rr = [r for r in rows if r["tool"] == "rsync"]
            files = info.get(ds, {}).get("files") if "small" in ds or ds.startswith("scale-") else None
            for tool in dict.fromkeys(r["tool"] for r in rows):
                rs = [r for r in rows if r["tool"] == tool]
                ratios = [b["wall"] / a_["wall"] for a_, b in zip(rs, rr) if a_["wall"] > 0] if tool != "rsync" else []
                tool = TOOL_NAMES.get(tool, tool)
                cpu_all = [r["src_cpu"] + r["tgt_cpu"] + r["infra_cpu"] for r in rs]
                cpu_tool = [r["src_cpu"] + r["tgt_cpu"] for r in rs]
                summary[(ds, phase, tool)] = dict(
                    wall=med([r["wall"] for r in rs]), cpu_all=med(cpu_all), cpu_tool=med(cpu_tool),
                    src_rss=med([r["src_rss"] for r in rs]), tgt_rss=med([r["tgt_rss"] for r in rs]),
                    wire=med([r["wire"] for r in rs]), wire_dir=med([r.get("wire_dir") for r in rs]),
                    net_cpu=med([r.get("net_cpu") for r in rs]), streams=med([r.get("streams") for r in rs]),
                    src_gb=med([per_gb(r, "src") for r in rs]), tgt_gb=med([per_gb(r, "tgt") for r in rs]),
                    ok=all(r["verified"] for r in rs),
                    ratio=med(ratios))
                per_k = ""
                if files:
                    per_k = (f"{rng([r['src_cpu'] / files * 1000 for r in rs], f3)} / "
                             f"{rng([r['tgt_cpu'] / files * 1000 for r in rs], f3)}")
                lines.append(
                    f"| {ds} | {phase} | {tool} | {rng([r['wall'] for r in rs], f2)} | "
                    f"{rng([r['size'] / r['wall'] / 1e6 for r in rs], f1)} | {rng(cpu_all, f2)} | {rng(cpu_tool, f2)} | "
                    f"{rng([r['infra_cpu'] for r in rs], f2)} | "
                    f"{rng([per_gb(r, 'src') for r in rs], f2)} / {rng([per_gb(r, 'tgt') for r in rs], f2)} | {per_k} | "
                    f"{rng([r['src_rss'] / 1024 for r in rs], f1)} | "
                    f"{rng([r['tgt_rss'] / 1024 for r in rs], f1)} | {rng([r.get('tgt_anon', 0) / 1024 for r in rs], f1)} | "
                    f"{rng([r['wire'] for r in rs], mb)} | "
                    f"{rng([r['own_wire'] for r in rs], mb)} | {rng(ratios, f2) if ratios else ''} | "
                    f"{'yes' if all(r['verified'] for r in rs) else 'NO'} |")
    lines += threads_lines(results + sets.get("pod", []))
    lines.append("")
    lines.append("Datasets: " + "; ".join(f"{k}: {v['files']} files, {v['size'] / MiB:.0f} MiB" for k, v in info.items()))
    lines.append("")
    if not results:  # only the direct, bwlimit and/or compress sets ran
        lines = []
    if "direct" in sets:
        lines += ["Ferry direct vs through the proxy and router (`direct` set):", "", direct_table(sets["direct"]), ""]
    if "bound" in sets:
        lines += ["Ferry and rsync+stunnel against the null mover (`bound` set, in turn: "
                  "`crates/net/examples/null_mover.rs` reads, hashes and encrypts the same files through the same "
                  "squid + HAProxy, and the far side decrypts, hashes and discards: no protocol, no writes):", "",
                  bound_table(sets["bound"]), ""]
    if "bwlimit" in sets:
        lines += [f"Ferry `--bwlimit {args.bwlimit_rate}` through the proxy and router (`bwlimit` set; achieved = "
                  "bytes_on_wire / duration_s; reported, never a failure):", "", bwlimit_table(sets["bwlimit"]), ""]
    if "compress" in sets:
        lines += ["Ferry without and with `--compress` through the proxy and router (`compress` set; on/off = "
                  "with/without per pair; the no-slowdown verdict is reported, never a failure):", "",
                  compress_table(sets["compress"]), ""]
    block_rows = []
    if "block" in sets:
        text, block_rows = block.table(sets["block"])
        lines += ["A block device and a disk image, Ferry (a block volume) and rsync+stunnel (`--copy-devices "
                  "--write-devices --inplace --no-whole-file --ignore-times`) through the proxy and router (`block` set; benches/block.py):",
                  "", text, ""]
    pod_rows = []
    if "pod" in sets:
        text, pod_rows = pod.table(sets["pod"], rng, med, lambda t: TOOL_NAMES.get(t, t))
        lines += ["Each side in its own 1-CPU group, through the proxy and router (`pod` set; benches/pod.py; CPU per "
                  "side from the group's accounting, rusage under affinity; throttled = periods in which the quota "
                  "ran out, and the time throttled):", "", text, ""]
    bound = bound_walls(sets["bound"]) if "bound" in sets else None
    lines.append(targets(summary, args, bound, list(block_rows) + pod_rows))
    return "\n".join(lines), summary


WAN_TARGETS = {("wan-large", "initial"): 1.8, ("wan-small", "initial"): 2.5}  # issue #16; else 2×


def wan_rates(a):
    """(the link's cap, one window-bound stream's rate), bytes/s, of the WAN relay's settings
    (None where not set). The cap is the shared one, else the per-connection one."""
    mbit = a.wan_shared_mbit or a.wan_mbit
    cap = mbit * 1e6 / 8 if mbit > 0 else None
    one = a.wan_window_kib * 1024 / (2 * a.wan_delay_ms / 1000) if a.wan_window_kib > 0 and a.wan_delay_ms > 0 else None
    if one and a.wan_mbit > 0:
        one = min(one, a.wan_mbit * 1e6 / 8)
    return cap, one


def wan_profile(a):
    """The WAN relay's settings in words (the report's header)."""
    parts = [f"WAN {a.wan_delay_ms:g} ms one way"]
    if a.wan_shared_mbit > 0:
        parts.append(f"{a.wan_shared_mbit:g} Mbit/s shared by all connections")
    if a.wan_mbit > 0:
        parts.append(f"{a.wan_mbit:g} Mbit/s per connection")
    if a.wan_window_kib > 0:
        _, one = wan_rates(a)
        parts.append(f"{a.wan_window_kib:g} KiB window per connection ({one / 1e6:.1f} MB/s a stream)")
    return ", ".join(parts)


def targets(s, args, bound=None, more=()):
    out = ["| target | measured | verdict |", "|---|---|---|"]

    def get(ds, phase, tool):
        return s.get((ds, phase, tool))

    def row(name, measured, ok):
        out.append(f"| {name} | {measured} | {'n/a' if ok is None else ('met' if ok else 'missed')} |")

    f, r = get("large", "initial", "ferry"), get("large", "initial", "rsync+stunnel")
    if f and r:
        cpu = f["cpu_tool"] / r["cpu_tool"] if r["cpu_tool"] else float("inf")
        row("large initial ≥ 2.3× faster, Ferry CPU ≤ 1/3 of rsync+stunnels",
            f"{f['ratio']:.2f}× faster; Ferry CPU {f['cpu_tool']:.2f}s = {cpu:.2f}× of {r['cpu_tool']:.2f}s",
            f["ratio"] >= 2.3 and cpu <= 1 / 3)
        if bound and bound["null"] and bound["rsync"] and bound["ferry"]:
            row("large initial: distance from the null mover (the measured bound, `bound` set)",
                f"Ferry's median time is {bound['ferry'] / bound['null']:.2f}× the null mover's; in that set the null "
                f"mover is {bound['rsync'] / bound['null']:.2f}× faster than rsync+stunnel, Ferry "
                f"{bound['rsync'] / bound['ferry']:.2f}×", None)
    f = get("small", "initial", "ferry")
    floors = [v for k, v in s.items() if k[0] == "small" and k[1] == "local" and v]
    if f and floors:
        row("small initial as fast as min(cp -a, tar|tar)", f"Ferry {f['wall']:.2f}s vs floor {min(floors):.2f}s",
            f["wall"] <= min(floors))
    f = get("small", "nochange", "ferry")
    if f:
        row("small no-change ≥ 5× faster", f"{f['ratio']:.2f}×", f["ratio"] >= 5)
    f, r = get("large", "delta", "ferry"), get("large", "delta", "rsync+stunnel")
    if f and r:
        row("large delta ≥ 2.5× faster, wire ≤ rsync's",
            f"{f['ratio']:.2f}×; wire {f['wire'] / 1e6:.1f} MB vs {r['wire'] / 1e6:.1f} MB",
            f["ratio"] >= 2.5 and f["wire"] <= r["wire"])
    f, f1 = get("large", "initial", "ferry"), get("large", "initial", "ferry --streams 1")
    if f and f1:
        row("large initial: CPU-s/GB (src + tgt) no higher than with `--streams 1` (#16)",
            f"auto {f['src_gb'] + f['tgt_gb']:.2f}, --streams 1 {f1['src_gb'] + f1['tgt_gb']:.2f}",
            f["src_gb"] + f["tgt_gb"] <= f1["src_gb"] + f1["tgt_gb"])
    cap, one = wan_rates(args)
    for ds in ("wan-large", "wan-small"):
        for ph in ("initial", "nochange", "delta", "cutover"):
            f, r = get(ds, ph, "ferry"), get(ds, ph, "rsync+stunnel")
            if not f:
                continue
            need = WAN_TARGETS.get((ds, ph), 2.0)
            measured = "; ".join(f"{name} {v['ratio']:.2f}× ({v['wall']:.2f} s"
                                 f"{'' if v.get('streams') is None else ', %g streams' % v['streams']})"
                                 for name in ("ferry", "ferry --streams 1") for v in [get(ds, ph, name)] if v)
            if r and f.get("wire_dir") and f["wire_dir"] > 1e6:
                # What no mover beats without sending fewer bytes in the busier direction: the
                # link's cap; and what one window-bound stream cannot beat: W / RTT.
                measured += f"; rsync {r['wall']:.2f} s; floors for Ferry's {f['wire_dir'] / 1e6:.1f} MB"
                if cap:
                    link = f["wire_dir"] / cap
                    measured += f": bytes / cap {link:.2f} s (at most {r['wall'] / link:.2f}× rsync)"
                if one:
                    win = f["wire_dir"] / one
                    measured += f", bytes / (W/RTT) {win:.2f} s (one stream's)"
            if f.get("net_cpu") is not None:
                measured += f"; relay CPU {f['net_cpu']:.2f} s"
            row(f"WAN {ds} {ph} ≥ {need:g}× faster", measured, f["ratio"] >= need)
    sc = sorted((int(k[0].split("-")[1]), v, s.get((k[0], "initial", "rsync+stunnel")))
                for k, v in s.items() if k[0].startswith("scale-") and k[1] == "initial" and k[2] == "ferry")
    if len(sc) >= 1:
        lo, hi = sc[0], sc[-1]
        flat = max(hi[1]["src_rss"] / lo[1]["src_rss"], hi[1]["tgt_rss"] / lo[1]["tgt_rss"])
        below = hi[2] and hi[1]["src_rss"] <= hi[2]["src_rss"] and hi[1]["tgt_rss"] <= hi[2]["tgt_rss"]
        pts = ", ".join(f"{n}: Ferry {v['src_rss'] / 1024:.1f}/{v['tgt_rss'] / 1024:.1f} MiB, rsync+stunnel "
                        f"{rs['src_rss'] / 1024:.1f}/{rs['tgt_rss'] / 1024:.1f} MiB" for n, v, rs in sc if rs)
        row(f"scale: peak RSS flat ({hi[0]} within 1.2× of {lo[0]}) and ≤ rsync+stunnel (src/tgt)",
            f"{flat:.2f}×; {pts}", (len(sc) > 1 and flat <= 1.2 and bool(below)) if len(sc) > 1 else None)
    for name, measured, ok in more:
        row(name, measured, ok)
    return "\n".join(out)


def main():
    p = argparse.ArgumentParser(description="Ferry vs rsync+stunnel through squid and HAProxy (see benches/README.md)")
    p.add_argument("--smoke", action="store_true", help="tiny datasets, 1 pair, every phase and profile (< 60 s)")
    p.add_argument("--quick", action="store_true", help="256 MiB large, 5k small, 1 pair, no WAN/scale")
    p.add_argument("--ferry", default=os.path.join(REPO, "target/release/ferry"),
                   help="ferry binary (default target/release/ferry, built if missing)")
    p.add_argument("--work", help="work dir (kept; default /var/tmp/ferry-bench.PID, removed unless --keep)")
    p.add_argument("--keep", action="store_true", help="keep the work dir (datasets are reused with --work)")
    p.add_argument("--pairs", type=int, default=3, help="alternating Ferry/rsync pairs per phase (default 3)")
    p.add_argument("--sets", default="large,small,mixed,wan,scale,direct,bound,bwlimit,compress,block,pod",
                   help="comma list of large,small,mixed,wan,scale,direct,bound,bwlimit,compress,block,pod (default all)")
    p.add_argument("--streams-rows", action="store_true",
                   help="also run `ferry --streams 1` in the large, small, mixed, scale and pod sets (the WAN set "
                        "always does), if the binary has the option")
    p.add_argument("--phases", default="initial,nochange,delta,cutover")
    p.add_argument("--large-mb", type=int, default=2048)
    p.add_argument("--large-files", type=int, default=8)
    p.add_argument("--small-files", type=int, default=30000)
    p.add_argument("--mixed-scale", type=float, default=1.0)
    p.add_argument("--wan-large-mb", type=int, default=256)
    p.add_argument("--wan-small-files", type=int, default=5000)
    p.add_argument("--wan-delay-ms", type=float, default=25.0)
    p.add_argument("--wan-mbit", type=float, default=0.0,
                   help="WAN cap per direction of each connection, Mbit/s (default 0: none; the profile before "
                        "#16 was 400 with no shared cap and no window)")
    p.add_argument("--wan-shared-mbit", type=float, default=1000.0,
                   help="WAN cap per direction shared by all connections, Mbit/s (default 1000; 0: none)")
    p.add_argument("--wan-window-kib", type=float, default=3072.0,
                   help="WAN TCP window per direction of each connection, KiB (default 3072: one stream "
                        "63 MB/s at 50 ms RTT, half the shared cap; 0: none)")
    p.add_argument("--pod-large-mb", type=int, help="the pod set's large dataset (default --large-mb)")
    p.add_argument("--pod-small-files", type=int, help="the pod set's small dataset (default --small-files)")
    p.add_argument("--pod-limit", choices=("auto", "affinity", "none"), default="auto",
                   help="pod set: a cgroup quota, else affinity (auto, the default); affinity (taskset) only; "
                        "or none (a control run: the same set without a limit)")
    p.add_argument("--scale", default="30000,300000,1000000", help="file counts of the scale profile")
    p.add_argument("--scale-pairs", type=int, default=1)
    p.add_argument("--bwlimit-mb", type=int, default=64, help="size of the bwlimit set's file (default 64)")
    p.add_argument("--bwlimit-rate", default="20M", help="its --bwlimit, Ferry's syntax (default 20M = 20 MiB/s)")
    p.add_argument("--compress-mb", type=int, default=64,
                   help="size of the compress set's log-like text, in 4 files (default 64)")
    p.add_argument("--block-mb", type=int, default=1024, help="size of the block set's device and image (default 1024)")
    p.add_argument("--no-verify", dest="verify", action="store_false")
    p.add_argument("--no-loop", action="store_true", help="do not loop-mount an ext4 image for the target")
    p.add_argument("--no-install", action="store_true", help="never apt-get install missing tools")
    p.add_argument("--out", help="write the Markdown report here (and the raw runs to OUT.json)")
    a = p.parse_args()
    if a.smoke:
        a.pairs, a.large_mb, a.large_files, a.small_files, a.mixed_scale = 1, 16, 2, 400, 0.05
        a.wan_large_mb, a.wan_small_files, a.scale, a.scale_pairs = 8, 200, "500,2000", 1
        a.bwlimit_mb, a.bwlimit_rate = 6, "3M"
        a.compress_mb = 8
        a.block_mb = 16
    if a.quick:
        a.pairs, a.large_mb, a.small_files, a.sets = 1, 256, 5000, "large,small,mixed,direct,bound,bwlimit,compress,block"
        a.block_mb = 256
    try:
        parse_rate(a.bwlimit_rate)
    except ValueError as e:
        p.error(f"--bwlimit-rate: {e}")
    a.sets = [x for x in a.sets.split(",") if x]
    a.phases = [x for x in a.phases.split(",") if x]
    a.scale = [int(x) for x in str(a.scale).split(",") if x]
    a.pod_large_mb = a.pod_large_mb or a.large_mb
    a.pod_small_files = a.pod_small_files or a.small_files
    if os.geteuid() != 0:
        log("WARNING: not root: no loop mount, and ownership checks may differ")
        a.no_loop = True
    bench = Bench(a)
    t0 = time.monotonic()

    def terminated(signum, frame):  # teardown (daemons, mount, the pod set's cgroups) on SIGTERM too
        raise KeyboardInterrupt(f"signal {signum}")

    signal.signal(signal.SIGTERM, terminated)
    try:
        bench.ensure_tools()
        bench.run()
    except BenchError as e:
        log(f"error: {e}")
        bench.teardown()
        return 2
    except BaseException:
        bench.teardown()
        raise
    bench.teardown()
    text, _ = report(bench.results, a, bench)
    built = time.strftime("%Y-%m-%d %H:%M:%S UTC", time.gmtime(os.path.getmtime(bench.ferry)))
    header = (f"ferry {bench.ferry} (built {built}; tree at git {git_rev()}), load average {os.getloadavg()[0]:.1f}, {os.cpu_count()} CPUs; "
              f"pairs={a.pairs}, target={'ext4 loop image' if bench.mounted else 'work dir filesystem'}, "
              f"{wan_profile(a)}; `push --streams`: {'yes' if bench.has_streams else 'no'}; "
              f"total {time.monotonic() - t0:.0f}s")
    print(header + "\n\n" + text)
    if a.out:
        open(a.out, "w").write(header + "\n\n" + text + "\n")
        json.dump(bench.results, open(a.out + ".json", "w"), indent=1)
    if bench.failures:
        log("FAILURES:\n  " + "\n  ".join(bench.failures))
        return 1
    return 0


def git_rev():
    r = subprocess.run(["git", "-C", REPO, "describe", "--always", "--dirty"], capture_output=True, text=True)
    return r.stdout.strip() or "?"


if __name__ == "__main__":
    sys.exit(main())
