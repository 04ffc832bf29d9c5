"""The pod profile of benches/bench.py (`--sets pod`): each side in its own 1-CPU group.

MTC's transfer pods run each side under a CPU limit of one core. Here each side's processes
(Ferry: `push` | `serve`; rsync+stunnel: the rsync client and the stunnel client | the stunnel
server and the rsync daemon) start inside their own cgroup with a quota of one CPU; squid and
HAProxy stay outside (the network). Three ways, the first that works:

* cgroup v2, when a cgroup2 mount lists `cpu` in `cgroup.controllers`: `+cpu` in the parent's
  `cgroup.subtree_control`, `cpu.max` = `100000 100000`; accounting and throttling from `cpu.stat`;
* cgroup v1 (this machine: `cpu` and `cpuacct` separate hierarchies): `cpu.cfs_quota_us` =
  `cpu.cfs_period_us` = 100000, the same groups under `cpuacct` for `cpuacct.usage`; throttling
  from `cpu.stat`;
* affinity (no cgroup can be made, e.g. in a container): `taskset -c 0` | `taskset -c 1`, so
  `available_parallelism` says 1 too. Not a quota: a side can use all of its core, nothing
  throttles, CPU comes from the rusage the bench measures anyway;
* none, with a warning, if taskset cannot pin either: the set still runs (a CI smoke must not
  fail for want of a cgroup), unlimited, and its table says so.

A side starts as `sh -c 'echo $$ > GROUP/cgroup.procs && ... && exec "$@"' sh ARGV...` (its
children inherit the group). The groups are `ferry-bench.PID/{src,tgt}`; `cleanup()` (also run
by the bench's teardown on failure, Ctrl-C or SIGTERM) moves anything left to the root and
removes them, and `setup()` first removes empty groups left by bench runs that are gone.
"""

import os
import shutil
import subprocess

PERIOD_US = 100_000
SIDES = ("src", "tgt")


def mounts():
    """(fstype, super options, mount point) of every cgroup mount, from /proc/self/mountinfo."""
    out = []
    with open("/proc/self/mountinfo") as f:
        for line in f:
            left, right = line.split(" - ", 1)
            fstype, _, sopts = right.split()[:3]
            if fstype in ("cgroup", "cgroup2"):
                out.append((fstype, set(sopts.split(",")), left.split()[4]))
    return out


def write(path, text):
    with open(path, "w") as f:
        f.write(text)


def read_kv(path):
    out = {}
    try:
        with open(path) as f:
            for line in f:
                k, _, v = line.partition(" ")
                out[k] = int(v)
    except (OSError, ValueError):
        pass
    return out


class CpuGroups:
    """One 1-CPU group per side: `wrap(side, argv)` starts argv inside it, `sample()` reads what
    both groups used so far (diff two samples with `used`)."""

    def __init__(self, log, limit="auto"):
        self.log = log
        self.mode = None  # "cgroup v2", "cgroup v1", "affinity" or "none" (neither works: no limit)
        self.dirs = {}  # side -> [group dirs a process joins] (v1: cpu and cpuacct)
        self.made = []  # dirs we created, parents first
        self.name = f"ferry-bench.{os.getpid()}"
        self.limit = limit  # "auto" (cgroup, else affinity), "affinity" or "none" (a control run)

    # ------------------------------------------------------------ setup
    def setup(self):
        if self.limit == "none":
            self.mode = "none"
            self.log("   pod: --pod-limit none: the sides run without a CPU limit (a control run)")
            return self
        if self.limit == "auto":
            for how in (self.setup_v2, self.setup_v1):
                try:
                    if how() and self.probe():
                        return self
                except OSError as e:
                    self.log(f"   pod: {how.__name__[6:]} failed: {e}")
                self.cleanup()
        self.mode = "affinity"
        cpus = sorted(os.sched_getaffinity(0))
        self.cpus = {"src": cpus[0], "tgt": cpus[1 % len(cpus)]}
        if not shutil.which("taskset") or subprocess.run(self.wrap("tgt", ["true"])).returncode != 0:
            self.mode = "none"
            self.log("WARNING: pod: neither a cgroup nor taskset works here: the sides run without a CPU limit")
            return self
        self.log(f"   pod: affinity (taskset: src on CPU {self.cpus['src']}, tgt on CPU "
                 f"{self.cpus['tgt']}), not a quota")
        return self

    def setup_v2(self):
        for fstype, _, mnt in mounts():
            if fstype != "cgroup2":
                continue
            try:
                controllers = open(f"{mnt}/cgroup.controllers").read().split()
            except OSError:
                continue
            if "cpu" not in controllers:
                continue
            self.remove_stale([mnt])
            if "cpu" not in open(f"{mnt}/cgroup.subtree_control").read().split():
                write(f"{mnt}/cgroup.subtree_control", "+cpu")
            parent = f"{mnt}/{self.name}"
            self.mkdir(parent)
            write(f"{parent}/cgroup.subtree_control", "+cpu")
            for side in SIDES:
                d = f"{parent}/{side}"
                self.mkdir(d)
                write(f"{d}/cpu.max", f"{PERIOD_US} {PERIOD_US}")
                self.dirs[side] = [d]
            self.mode = "cgroup v2"
            return True
        return False

    def setup_v1(self):
        cpu = acct = None
        for fstype, opts, mnt in mounts():
            if fstype == "cgroup" and "cpu" in opts and cpu is None:
                cpu = mnt
            if fstype == "cgroup" and "cpuacct" in opts and acct is None:
                acct = mnt
        if cpu is None:
            return False
        roots = [cpu] + ([acct] if acct and os.path.realpath(acct) != os.path.realpath(cpu) else [])
        self.remove_stale(roots)
        for root in roots:
            self.mkdir(f"{root}/{self.name}")
            for side in SIDES:
                self.mkdir(f"{root}/{self.name}/{side}")
        for side in SIDES:
            d = f"{cpu}/{self.name}/{side}"
            write(f"{d}/cpu.cfs_period_us", str(PERIOD_US))
            write(f"{d}/cpu.cfs_quota_us", str(PERIOD_US))
            self.dirs[side] = [f"{root}/{self.name}/{side}" for root in roots]
        self.acct = {side: f"{acct}/{self.name}/{side}" if acct else None for side in SIDES}
        self.mode = "cgroup v1"
        return True

    def mkdir(self, d):
        os.mkdir(d)
        self.made.append(d)

    def probe(self):
        """A process started through wrap() lands in the group (else the writes silently failed)."""
        for side in SIDES:
            r = subprocess.run(self.wrap(side, ["cat", "/proc/self/cgroup"]), capture_output=True, text=True)
            if r.returncode != 0 or f"/{self.name}/{side}" not in r.stdout:
                self.log(f"   pod: a process did not join {self.dirs[side][0]} ({r.stderr.strip() or r.stdout.strip()})")
                return False
        self.log(f"   pod: {self.mode}, one CPU per side ({', '.join(self.dirs['src'] + self.dirs['tgt'])})")
        return True

    def remove_stale(self, roots):
        """Groups of earlier bench runs that are gone (their PID no longer exists), if empty."""
        for root in roots:
            for name in os.listdir(root):
                if not name.startswith("ferry-bench.") or name == self.name:
                    continue
                pid = name.rsplit(".", 1)[1]
                if pid.isdigit() and not os.path.exists(f"/proc/{pid}"):
                    for side in SIDES:
                        try:
                            os.rmdir(f"{root}/{name}/{side}")
                        except OSError:
                            pass
                    try:
                        os.rmdir(f"{root}/{name}")
                    except OSError:
                        pass

    # ------------------------------------------------------------ use
    def wrap(self, side, argv):
        if self.mode == "none":
            return list(argv)
        if self.mode == "affinity":
            return ["taskset", "-c", str(self.cpus[side])] + list(argv)
        joins = " && ".join(f"echo $$ > {d}/cgroup.procs" for d in self.dirs[side])
        return ["sh", "-c", f'{joins} && exec "$@"; exit 125', "sh"] + list(argv)

    def sample(self):
        """Per side: CPU seconds used by the group, periods, throttled periods, seconds throttled
        (all None under affinity)."""
        out = {}
        for side in SIDES:
            if self.mode == "cgroup v2":
                st = read_kv(f"{self.dirs[side][0]}/cpu.stat")
                out[side] = dict(cpu=st.get("usage_usec", 0) / 1e6, periods=st.get("nr_periods"),
                                 throttled=st.get("nr_throttled"), throttled_s=st.get("throttled_usec", 0) / 1e6)
            elif self.mode == "cgroup v1":
                st = read_kv(f"{self.dirs[side][0]}/cpu.stat")
                usage = None
                if self.acct[side]:
                    try:
                        usage = int(open(f"{self.acct[side]}/cpuacct.usage").read()) / 1e9
                    except (OSError, ValueError):
                        pass
                out[side] = dict(cpu=usage, periods=st.get("nr_periods"), throttled=st.get("nr_throttled"),
                                 throttled_s=st.get("throttled_time", 0) / 1e9)
            else:
                out[side] = dict(cpu=None, periods=None, throttled=None, throttled_s=None)
        return out

    @staticmethod
    def used(before, after):
        """Result fields for one run: cg_src_cpu, src_periods, src_throttled, src_throttled_s, ..."""
        out = {}
        for side in SIDES:
            for k in ("cpu", "periods", "throttled", "throttled_s"):
                a, b = before[side][k], after[side][k]
                out[f"cg_{side}_{k}"] = None if a is None or b is None else b - a
        return out

    # ------------------------------------------------------------ cleanup
    def cleanup(self):
        """Move anything left in our groups to the root of its hierarchy, then remove them."""
        for d in reversed(self.made):
            root = os.path.dirname(os.path.dirname(d)) if os.path.basename(d) in SIDES else os.path.dirname(d)
            try:
                pids = open(f"{d}/cgroup.procs").read().split()
            except OSError:
                pids = []
            for pid in pids:
                try:
                    write(f"{root}/cgroup.procs", pid)
                except OSError:
                    pass
            try:
                os.rmdir(d)
            except OSError as e:
                self.log(f"WARNING: could not remove cgroup {d}: {e}")
        self.made = []
        self.dirs = {}


# ---------------------------------------------------------------- report

def side_cpu(r, side):
    """A side's CPU seconds in one run: its group's accounting, else the bench's rusage."""
    cg = r.get(f"cg_{side}_cpu")
    return cg if cg is not None else r[f"{side}_cpu"]


def table(rows, rng, med, display):
    """The pod set's table and its targets rows ((name, measured, met), ...). `rng`, `med` and
    `display` (tool -> shown name) come from bench.py."""
    f2 = lambda x: f"{x:.2f}"
    f1 = lambda x: f"{x:.1f}"
    out = ["| dataset | tool | CPU limit | wall s | MB/s | rsync/tool wall | src CPU-s/GB | tgt CPU-s/GB | "
           "src / tgt CPU-s per 1k files | src throttled periods (time), median | tgt throttled periods (time), median | ok |",
           "|" + "---|" * 12]
    more = []
    for ds in dict.fromkeys(r["dataset"] for r in rows):
        rs_ds = [r for r in rows if r["dataset"] == ds]
        rsync = [r for r in rs_ds if r["tool"] == "rsync"]
        for tool in dict.fromkeys(r["tool"] for r in rs_ds):
            rs = [r for r in rs_ds if r["tool"] == tool]
            ratios = [b["wall"] / a_["wall"] for a_, b in zip(rs, rsync) if a_["wall"] > 0] if tool != "rsync" else []
            gb = rs[0]["size"] / 1e9
            files = rs[0].get("files") or 0
            per_k = ""
            if "small" in ds and files:
                per_k = (f"{rng([side_cpu(r, 'src') / files * 1000 for r in rs], lambda x: f'{x:.3f}')} / "
                         f"{rng([side_cpu(r, 'tgt') / files * 1000 for r in rs], lambda x: f'{x:.3f}')}")

            def throttled(side):
                n = [r.get(f"cg_{side}_throttled") for r in rs]
                s = [r.get(f"cg_{side}_throttled_s") for r in rs]
                if all(x is None for x in n):
                    return "n/a"
                return f"{med(n):.0f} ({med(s):.2f} s), most {max(x for x in n if x is not None):.0f}"

            out.append(f"| {ds} initial | {display(tool)} | {rs[0].get('limit', '?')} | {rng([r['wall'] for r in rs], f2)} | "
                       f"{rng([r['size'] / r['wall'] / 1e6 for r in rs], f1)} | {rng(ratios, f2) if ratios else ''} | "
                       f"{rng([side_cpu(r, 'src') / gb for r in rs], f2)} | {rng([side_cpu(r, 'tgt') / gb for r in rs], f2)} | "
                       f"{per_k} | {throttled('src')} | {throttled('tgt')} | "
                       f"{'yes' if all(r['verified'] for r in rs) else 'NO'} |")
            if tool == "ferry" and ratios:
                more.append((f"pod profile (1 CPU per side, {rs[0].get('limit', '?')}) {ds} initial ≥ 1.5× (#16)",
                             f"{med(ratios):.2f}×", med(ratios) >= 1.5))
    return "\n".join(out), more
