#!/usr/bin/env python3
"""Benchmark harness for `supervisor` against tini-static, dumb-init, catatonit and the
shell loop. Driven by bench/run.sh; python3 standard library only. See docs/bench.md.

Every measurement interleaves the contenders (round-robin, shuffled order per round), repeats,
and reports median and spread. All waits have deadlines; every process we start is tracked and
killed (by pid) if it outlives its measurement.
"""

import argparse
import datetime
import fcntl
import json
import os
import platform
import random
import re
import select
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
MIB = 1024 * 1024

# ----------------------------------------------------------------------------- utilities


def log(*a):
    print("[bench %s]" % time.strftime("%H:%M:%S"), *a, file=sys.stderr, flush=True)


def pct(xs, q):
    """Percentile with linear interpolation (q in 0..100); None for empty input."""
    xs = sorted(xs)
    if not xs:
        return None
    if len(xs) == 1:
        return xs[0]
    k = (len(xs) - 1) * q / 100.0
    lo = int(k)
    hi = min(lo + 1, len(xs) - 1)
    return xs[lo] + (xs[hi] - xs[lo]) * (k - lo)


def summary(xs):
    if not xs:
        return {"n": 0}
    return {
        "n": len(xs),
        "min": min(xs),
        "p10": pct(xs, 10),
        "p25": pct(xs, 25),
        "median": pct(xs, 50),
        "p75": pct(xs, 75),
        "p90": pct(xs, 90),
        "p99": pct(xs, 99),
        "max": max(xs),
        "mean": statistics.fmean(xs),
    }


def fmt_us(ns):
    return "—" if ns is None else "%.0f µs" % (ns / 1e3) if abs(ns) < 1e6 else "%.2f ms" % (ns / 1e6)


def fmt_ms(ns):
    if ns is None:
        return "—"
    if abs(ns) >= 1e9:
        return "%.2f s" % (ns / 1e9)
    if abs(ns) >= 1e7:
        return "%.1f ms" % (ns / 1e6)
    return "%.3f ms" % (ns / 1e6)


def cpu_times():
    with open("/proc/stat") as f:
        parts = f.readline().split()[1:]
    vals = [int(x) for x in parts]
    idle = vals[3] + (vals[4] if len(vals) > 4 else 0)
    return sum(vals), idle


def loadavg():
    with open("/proc/loadavg") as f:
        return f.read().split()[:3]


class Phase:
    """Records wall time, load average and machine-wide CPU busy % around a phase."""

    def __init__(self, results, name):
        self.results, self.name = results, name

    def __enter__(self):
        log("phase", self.name)
        self.t0 = time.monotonic()
        self.la0 = loadavg()
        self.c0 = cpu_times()
        return self

    def __exit__(self, et, ev, tb):
        for pid, state, cmd in reap_strays():
            self.results.setdefault("leaks", []).append(
                "after %s: pid %d (%s) %s" % (self.name, pid, state, cmd[:160]))
        tot1, idle1 = cpu_times()
        dt, di = tot1 - self.c0[0], idle1 - self.c0[1]
        self.results.setdefault("load", {})[self.name] = {
            "loadavg_before": self.la0,
            "loadavg_after": loadavg(),
            "machine_cpu_busy_pct": round(100.0 * (dt - di) / dt, 1) if dt else None,
            "wall_s": round(time.monotonic() - self.t0, 1),
        }
        if ev is not None and not isinstance(ev, KeyboardInterrupt):
            log("phase %s failed: %r" % (self.name, ev))
            import traceback

            traceback.print_exc()
            self.results.setdefault("errors", {})[self.name] = repr(ev)
            return True
        return False


# processes started by the harness that may outlive a single call
TRACKED = set()


def popen(argv, **kw):
    kw.setdefault("stdin", subprocess.DEVNULL)
    kw.setdefault("start_new_session", True)
    p = subprocess.Popen(argv, **kw)
    TRACKED.add(p)
    return p


def wait_exit(p, timeout):
    """Wait for Popen p with a deadline using a pidfd (precise). Returns exit time or None."""
    try:
        fd = os.pidfd_open(p.pid)
    except ProcessLookupError:
        p.wait()
        return time.monotonic_ns()
    try:
        r, _, _ = select.select([fd], [], [], timeout)
        t = time.monotonic_ns()
        if not r:
            return None
        p.wait()
        TRACKED.discard(p)
        return t
    finally:
        os.close(fd)


def kill_proc(p):
    """SIGKILL p's process group (it was started in its own session) and p itself."""
    if p.poll() is None:
        for target in (lambda: os.killpg(p.pid, signal.SIGKILL), lambda: p.kill()):
            try:
                target()
            except (ProcessLookupError, PermissionError):
                pass
        try:
            p.wait(timeout=10)
        except subprocess.TimeoutExpired:
            pass
    TRACKED.discard(p)


def set_child_subreaper():
    """Orphans of everything we start re-parent to us, so leaks can be found and killed."""
    import ctypes

    libc = ctypes.CDLL(None, use_errno=True)
    return libc.prctl(36, 1, 0, 0, 0) == 0  # PR_SET_CHILD_SUBREAPER


def reap_strays():
    """Kill and reap children no Popen owns. Returns [(pid, state, cmdline)] of the live ones."""
    me, owned = os.getpid(), {p.pid for p in TRACKED}
    live = []
    for pid in os.listdir("/proc"):
        if not pid.isdigit():
            continue
        try:
            with open("/proc/%s/stat" % pid) as f:
                rest = f.read().rsplit(")", 1)[1].split()
            if int(rest[1]) != me or int(pid) in owned:
                continue
            with open("/proc/%s/cmdline" % pid, "rb") as f:
                cmd = f.read().replace(b"\0", b" ").decode(errors="replace").strip()
        except (OSError, IndexError, ValueError):
            continue
        if rest[0] not in "ZX":
            live.append((int(pid), rest[0], cmd))
            try:
                os.kill(int(pid), signal.SIGKILL)
            except OSError:
                pass
        deadline = time.monotonic() + 5
        while time.monotonic() < deadline:
            try:
                if os.waitpid(int(pid), os.WNOHANG)[0]:
                    break
            except ChildProcessError:
                break
            time.sleep(0.01)
    return live


def wait_path(path, timeout, proc=None):
    deadline = time.monotonic() + timeout
    while not os.path.exists(path):
        if time.monotonic() > deadline:
            return False
        if proc is not None and proc.poll() is not None:
            return False
        time.sleep(0.002)
    return True


def read_int(path):
    try:
        with open(path) as f:
            return int(f.read().split()[0])
    except (OSError, ValueError, IndexError):
        return None


def marker_text():
    now = datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")
    return json.dumps(
        {"version": 1, "exit_code": 0, "reason": "exited", "signal": None,
         "started_at": now, "finished_at": now, "duration_ms": 1}) + "\n"


def place_marker(done_path):
    tmp = os.path.join(os.path.dirname(done_path), ".done.tmp")
    with open(tmp, "w") as f:
        f.write(marker_text())
    t0 = time.monotonic_ns()
    os.rename(tmp, done_path)
    return t0


def proc_task_stats(pid):
    """CPU ns (schedstat, all threads), context switches (all threads), ticks, threads."""
    out = {"ctxsw": 0, "vol": 0, "invol": 0, "sched_ns": 0, "threads": 0, "wchan": []}
    for tid in os.listdir("/proc/%d/task" % pid):
        base = "/proc/%d/task/%s/" % (pid, tid)
        try:
            with open(base + "status") as f:
                for line in f:
                    if line.startswith("voluntary_ctxt_switches"):
                        out["vol"] += int(line.split()[1])
                    elif line.startswith("nonvoluntary_ctxt_switches"):
                        out["invol"] += int(line.split()[1])
            with open(base + "schedstat") as f:
                out["sched_ns"] += int(f.read().split()[0])
            with open(base + "wchan") as f:
                out["wchan"].append(f.read().strip())
            out["threads"] += 1
        except OSError:
            pass
    out["ctxsw"] = out["vol"] + out["invol"]
    with open("/proc/%d/stat" % pid) as f:
        fields = f.read().rsplit(")", 1)[1].split()
    # fields[0] is state (field 3); utime is field 14 -> index 11
    out["utime"], out["stime"], out["cutime"], out["cstime"] = (int(x) for x in fields[11:15])
    return out


def fs_type(path):
    """Filesystem type of the mount holding path (markers are written there)."""
    best, typ = "", "?"
    with open("/proc/self/mountinfo") as f:
        for line in f:
            left, right = line.split(" - ", 1)
            mp = left.split()[4]
            if (path == mp or path.startswith(mp.rstrip("/") + "/")) and len(mp) >= len(best):
                best, typ = mp, right.split()[0]
    return typ


def elf_info(path):
    """(static, stripped) from the ELF headers: static = no PT_INTERP, stripped = no .symtab."""
    import struct

    with open(path, "rb") as f:
        data = f.read()
    if data[:4] != b"\x7fELF" or data[4] != 2:
        return None, None
    e_phoff, e_shoff = struct.unpack_from("<QQ", data, 0x20)
    e_phentsize, e_phnum, e_shentsize, e_shnum = struct.unpack_from("<HHHH", data, 0x36)
    static = True
    for i in range(e_phnum):
        (p_type,) = struct.unpack_from("<I", data, e_phoff + i * e_phentsize)
        if p_type == 3:  # PT_INTERP
            static = False
    stripped = True
    for i in range(e_shnum):
        (sh_type,) = struct.unpack_from("<I", data, e_shoff + i * e_shentsize + 4)
        if sh_type == 2:  # SHT_SYMTAB
            stripped = False
    return static, stripped


# ----------------------------------------------------------------------------- harness


class Bench:
    def __init__(self, args):
        self.a = args
        self.quick = args.quick
        self.sup = os.path.abspath(args.bin)
        self.tmp = tempfile.mkdtemp(prefix="supbench.", dir=args.tmpdir)
        self.res = {"errors": {}}
        self.bk = None
        self.perf_ok = False

    # -- setup ---------------------------------------------------------------
    def setup(self):
        src = os.path.join(HERE, "benchkit.c")
        self.bk = os.path.join(self.tmp, "benchkit")
        subprocess.run(["gcc", "-O2", "-o", self.bk, src], check=True)
        self.peers = {}
        for name, cands in (("tini-static", ["tini-static"]), ("dumb-init", ["dumb-init"]),
                            ("catatonit", ["catatonit"]), ("tini", ["tini"])):
            for c in cands:
                p = shutil.which(c)
                if p:
                    self.peers[name] = p
                    break
        try:
            q = subprocess.run(["perf", "stat", "-x,", "-e", "context-switches", "true"],
                               capture_output=True, text=True, timeout=20)
            self.perf_ok = q.returncode == 0 and "not supported" not in q.stderr
        except (OSError, subprocess.TimeoutExpired):
            self.perf_ok = False
        ver = subprocess.run([self.sup, "--version"], capture_output=True, text=True, timeout=10)
        cpu = "?"
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    cpu = line.split(":", 1)[1].strip()
                    break
        with open("/proc/meminfo") as f:
            mem = f.readline().split()[1]
        # what the rest of the machine is doing: CPU busy share over 3 s before we start
        c0 = cpu_times()
        time.sleep(3)
        c1 = cpu_times()
        busy_before = round(100.0 * ((c1[0] - c0[0]) - (c1[1] - c0[1])) / max(1, c1[0] - c0[0]), 1)
        self.res["meta"] = {
            "date": datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%d %H:%M:%S UTC"),
            "mode": "quick" if self.quick else "full",
            "host": platform.node(),
            "nproc": os.cpu_count(),
            "cpu_model": cpu,
            "mem_total_mib": int(mem) // 1024,
            "kernel": platform.release(),
            "os": self._os_release(),
            "loadavg_start": loadavg(),
            "machine_cpu_busy_pct_before_run": busy_before,
            "supervisor_bin": self.sup,
            "supervisor_version": (ver.stdout or ver.stderr).strip().splitlines()[0:1],
            "supervisor_source": self.a.bin_source,
            "peers": {k: {"path": v, "version": self._peer_version(k, v)}
                      for k, v in self.peers.items()},
            "perf_available": self.perf_ok,
            "scratch_dir": self.tmp,
            "scratch_fs": fs_type(self.tmp),
        }

    @staticmethod
    def _os_release():
        try:
            with open("/etc/os-release") as f:
                for line in f:
                    if line.startswith("PRETTY_NAME="):
                        return line.split("=", 1)[1].strip().strip('"')
        except OSError:
            pass
        return "?"

    @staticmethod
    def _peer_version(name, path):
        try:
            pkg = {"tini-static": "tini", "tini": "tini"}.get(name, name)
            q = subprocess.run(["dpkg-query", "-W", "-f", "${Version}", pkg],
                               capture_output=True, text=True, timeout=10)
            return q.stdout.strip() or "?"
        except (OSError, subprocess.TimeoutExpired):
            return "?"

    def n(self, full, quick):
        return quick if self.quick else full

    def mkd(self, *parts):
        d = os.path.join(self.tmp, *parts)
        os.makedirs(d, exist_ok=True)
        return d

    # Wrappers: argv prefix placed in front of a command.
    def wrappers(self, done_dir=None, include_done=True):
        w = {"supervisor main": [self.sup, "main", "--"]}
        if include_done:
            w["supervisor main --done-file"] = [self.sup, "main", "--done-file",
                                                os.path.join(done_dir, "done%N"), "--"]
        if "tini-static" in self.peers:
            w["tini-static"] = [self.peers["tini-static"], "--"]
        if "dumb-init" in self.peers:
            w["dumb-init"] = [self.peers["dumb-init"]]
        if "catatonit" in self.peers:
            w["catatonit"] = [self.peers["catatonit"], "--"]
        return w

    # -- 5. binary size --------------------------------------------------------
    def bench_size(self):
        out = {}
        cands = {"supervisor": self.sup}
        cands.update({k: v for k, v in self.peers.items()})
        for name, path in cands.items():
            st, sp = elf_info(path)
            row = {"path": path, "bytes": os.path.getsize(path), "static": st, "stripped": sp}
            if sp is False and shutil.which("strip"):
                tmp = os.path.join(self.tmp, "stripped-" + name)
                subprocess.run(["strip", "-o", tmp, path], check=False)
                if os.path.exists(tmp):
                    row["bytes_after_strip"] = os.path.getsize(tmp)
            out[name] = row
        self.res["size"] = out

    # -- 1. start-up overhead --------------------------------------------------
    def bench_startup(self):
        rounds, per = self.n(30, 8), self.n(40, 15)
        samples, rounds_med, failures, cpus = {}, {}, {}, {}
        for r in range(rounds):
            d = self.mkd("startup", str(r))
            conts = {"/bin/true (baseline)": []}
            conts.update(self.wrappers(d))
            order = list(conts)
            random.shuffle(order)
            for name in order:
                argv = [self.bk, "spawnloop", str(per), "10000", "--"] + conts[name] + ["/bin/true"]
                q = subprocess.run(argv, capture_output=True, text=True, timeout=per * 12 + 30)
                rows = [l.split() for l in q.stdout.splitlines()]
                rows = [r for r in rows if len(r) == 2 and r[0].isdigit()]
                xs = [int(r[0]) for r in rows]
                cpus.setdefault(name, []).extend(int(r[1]) for r in rows)
                if not xs:
                    raise RuntimeError("%s: every run timed out" % name)
                samples.setdefault(name, []).extend(xs)
                rounds_med.setdefault(name, []).append(statistics.median(xs))
                m = re.search(r"failures (\d+)", q.stderr)
                failures[name] = failures.get(name, 0) + (int(m.group(1)) if m else per)
            shutil.rmtree(d, ignore_errors=True)
        base = samples["/bin/true (baseline)"]
        base_cpu = statistics.median(cpus["/bin/true (baseline)"])
        base_rounds = rounds_med["/bin/true (baseline)"]
        out = {"rounds": rounds, "runs_per_round": per, "contenders": {}}
        for name in ["/bin/true (baseline)"] + list(self.wrappers(self.tmp)):
            if name not in samples:
                continue
            xs = samples[name]
            per_round_over = [m - b for m, b in zip(rounds_med[name], base_rounds)]
            out["contenders"][name] = {
                "wall": summary(xs),
                "overhead_median_ns": statistics.median(xs) - statistics.median(base),
                "cpu": summary(cpus[name]),
                "cpu_overhead_median_ns": statistics.median(cpus[name]) - base_cpu,
                "overhead_per_round": summary(per_round_over),
                "nonzero_exits": failures[name],
                "raw_wall_ns": xs,
            }
        tini = out["contenders"].get("tini-static")
        for name, c in out["contenders"].items():
            if tini and tini["overhead_median_ns"] > 0:
                c["ratio_to_tini"] = c["overhead_median_ns"] / tini["overhead_median_ns"]
        self.res["startup"] = out

    # -- 7. signal forwarding --------------------------------------------------
    def bench_signal(self):
        rounds, per = self.n(10, 4), self.n(10, 5)
        lat, exitlat, fails = {}, {}, {}
        broken = set()
        for r in range(rounds):
            d = self.mkd("signal", str(r))
            conts = {k: v for k, v in self.wrappers(d).items() if k not in broken}
            order = list(conts)
            random.shuffle(order)
            for name in order:
                sd = self.mkd("signal", str(r), re.sub(r"\W+", "_", name))
                argv = ([self.bk, "sigbench", str(per), "1000", "5000", sd, "--"] + conts[name]
                        + [self.bk, "child", "%R", "%O"])
                q = subprocess.run(argv, capture_output=True, text=True, timeout=per * 12 + 30)
                good = 0
                for line in q.stdout.splitlines():
                    f = line.split()
                    if f[0] == "ok":
                        lat.setdefault(name, []).append(int(f[1]))
                        exitlat.setdefault(name, []).append(int(f[2]))
                        good += 1
                    else:
                        fails.setdefault(name, []).append(" ".join(f[1:]))
                if not good:
                    broken.add(name)  # every run failed: do not spend more rounds on it
            shutil.rmtree(d, ignore_errors=True)
        out = {"signal": "SIGTERM", "rounds": rounds, "runs_per_round": per, "contenders": {}}
        for name in self.wrappers(self.tmp):
            out["contenders"][name] = {
                "handler_latency": summary(lat.get(name, [])),
                "exit_latency": summary(exitlat.get(name, [])),
                "failures": fails.get(name, []),
                "raw_handler_latency_ns": lat.get(name, []),
            }
        self.res["signal"] = out

    # -- 2. marker-to-exit latency ---------------------------------------------
    def sidecar_argv(self, extra=()):
        return ([self.sup, "sidecar", "--wait-file", "%D/done"] + list(extra)
                + ["--", self.bk, "child", "%D/ready", "%D/stopped"])

    @staticmethod
    def shell_loop_argv(bk, period):
        script = ('%s child "$1/ready" "$1/stopped" & p=$!; '
                  'while ! test -f "$1/done"; do sleep %s; done; '
                  'kill -TERM $p; wait $p' % (bk, period))
        return ["sh", "-c", script, "sh", "%D"]

    def _parse_marker(self, text, store, name):
        for line in text.splitlines():
            f = line.split()
            c = store.setdefault(name, {"exit": [], "daemon_signaled": [], "codes": {},
                                        "daemon_alive": 0, "failures": []})
            if f and f[0] == "ok":
                c["exit"].append(int(f[1]))
                if int(f[2]) >= 0:
                    c["daemon_signaled"].append(int(f[2]))
                c["codes"][f[3]] = c["codes"].get(f[3], 0) + 1
                if f[4] == "daemon-alive":
                    c["daemon_alive"] += 1
                if len(f) > 5 and f[5] == "term-blocked":
                    c["term_blocked"] = c.get("term_blocked", 0) + 1
            elif f:
                c["failures"].append(" ".join(f[1:]))

    def bench_marker(self):
        rounds = self.n(10, 5)
        per_lease, per_nolease = self.n(20, 20), self.n(5, 2)
        smax = self.n(255000, 105000)
        store = {}
        conts = {
            "supervisor sidecar (lease held, like a real main)": (self.sidecar_argv(), 1, per_lease),
            "supervisor sidecar (marker only, no lease file)": (self.sidecar_argv(), 0, per_nolease),
        }
        broken = set()
        for r in range(rounds):
            order = [k for k in conts if k not in broken]
            random.shuffle(order)
            for name in order:
                argv_t, lease, per = conts[name]
                d = self.mkd("marker", str(r), "lease%d" % lease)
                argv = ([self.bk, "markerbench", str(per), "5000", str(smax), "10000", str(lease), d,
                         "--"] + argv_t)
                q = subprocess.run(argv, capture_output=True, text=True, timeout=per * 25 + 30)
                before = len(store.get(name, {}).get("exit", []))
                self._parse_marker(q.stdout, store, name)
                if len(store[name]["exit"]) == before:
                    broken.add(name)  # every run failed: do not spend more rounds on it
                shutil.rmtree(d, ignore_errors=True)
        # shell loops: seconds-scale, so run their samples concurrently (they only sleep)
        shells = {"shell loop (sleep 5)": (5, self.n(12, 4)),
                  "shell loop (sleep 1)": (1, self.n(20, 8))}
        procs = []
        for name, (period, count) in shells.items():
            for i in range(count):
                d = self.mkd("marker", "shell%d" % period, str(i))
                argv = ([self.bk, "markerbench", "1", "10000", str(period * 1000000 + 10000),
                         str(period * 1000 + 10000), "1", d, "--"]
                        + self.shell_loop_argv(self.bk, period))
                procs.append((name, popen(argv, stdout=subprocess.PIPE, text=True)))
        for name, p in procs:
            try:
                so, _ = p.communicate(timeout=60)
                self._parse_marker(so, store, name)
            except subprocess.TimeoutExpired:
                kill_proc(p)
                store.setdefault(name, {"exit": [], "daemon_signaled": [], "codes": {},
                                        "daemon_alive": 0, "failures": []})["failures"].append(
                    "harness-timeout")
            TRACKED.discard(p)
        out = {"settle_before_marker_us": [5000, smax], "contenders": {}}
        for name in list(conts) + list(shells):
            if name not in store:
                continue
            c = store[name]
            out["contenders"][name] = {
                "runs": len(c["exit"]),
                "marker_to_exit": summary(c["exit"]),
                "marker_to_daemon_signaled": summary(c["daemon_signaled"]),
                "exit_codes": c["codes"],
                "daemon_alive_after_exit": c["daemon_alive"],
                "daemon_inherited_term_blocked": c.get("term_blocked", 0),
                "failures": c["failures"],
                "raw_marker_to_exit_ns": c["exit"],
            }
        self.res["marker"] = out

    # -- 4. memory (VmHWM at exit) ---------------------------------------------
    def _hwm_run(self, argv, stop, d):
        """Run argv under `benchkit hwm`; stop is None (exits by itself), 'marker' or 'term'."""
        p = popen([self.bk, "hwm", "--"] + argv, stdout=subprocess.PIPE, text=True)
        try:
            first = p.stdout.readline().split()
            pid = int(first[1])
            if stop:
                if not wait_path(os.path.join(d, "ready"), 10, p):
                    raise RuntimeError("not ready")
                time.sleep(0.05)
                if stop == "marker":
                    place_marker(os.path.join(d, "done"))
                else:
                    os.kill(pid, signal.SIGTERM)
            so, _ = p.communicate(timeout=20)
        except Exception:
            kill_proc(p)
            raise
        TRACKED.discard(p)
        line = so.strip().splitlines()[-1].split()
        fields = dict(x.split("=") for x in line[2:])
        fields = {k: int(v) for k, v in fields.items()}
        fields["exit"] = int(line[1])
        return fields

    def bench_memory(self):
        reps = self.n(5, 2)
        child = lambda d: [self.bk, "child", os.path.join(d, "ready")]
        cases = {
            "supervisor main --done-file -- /bin/true":
                (lambda d: [self.sup, "main", "--done-file", d + "/done", "--", "/bin/true"], None),
            "supervisor main -- /bin/true": (lambda d: [self.sup, "main", "--", "/bin/true"], None),
            "supervisor main --done-file, stopped by SIGTERM":
                (lambda d: [self.sup, "main", "--done-file", d + "/done", "--"] + child(d), "term"),
            "supervisor sidecar, stopped by marker":
                (lambda d: [self.sup, "sidecar", "--wait-file", d + "/done", "--"] + child(d),
                 "marker"),
        }
        for name, w in self.wrappers(self.tmp, include_done=False).items():
            if name.startswith("supervisor"):
                continue
            cases["%s -- /bin/true" % name] = (lambda d, w=w: w + ["/bin/true"], None)
            cases["%s, stopped by SIGTERM" % name] = (lambda d, w=w: w + child(d), "term")
        data = {}
        for r in range(reps):
            order = list(cases)
            random.shuffle(order)
            for name in order:
                d = self.mkd("mem", str(r), re.sub(r"\W+", "_", name))
                mk, stop = cases[name]
                try:
                    data.setdefault(name, []).append(self._hwm_run(mk(d), stop, d))
                except Exception as e:  # noqa: BLE001 - record and continue
                    data.setdefault(name, []).append({"error": repr(e)})
        out = {"reps": reps, "contenders": {}}
        for name in cases:
            rows = data.get(name, [])
            ok = [x for x in rows if "VmHWM" in x]
            out["contenders"][name] = {
                "vmhwm_kib": summary([x["VmHWM"] for x in ok]),
                "rss_anon_at_exit_kib": summary([x.get("RssAnon", 0) for x in ok]),
                "rss_file_at_exit_kib": summary([x.get("RssFile", 0) for x in ok]),
                "threads_at_exit": sorted({x.get("Threads", 0) for x in ok}),
                "raw": rows,
                "exit_codes": sorted({x["exit"] for x in ok}),
                "errors": [x["error"] for x in rows if "error" in x],
            }
        self.res["memory"] = out

    # -- 6. reaping throughput ---------------------------------------------------
    def bench_reap(self):
        n, reps = self.n(10000, 2000), self.n(5, 1)
        conts = {"reference: blocking wait() loop": [self.bk, "init", "--"]}
        conts.update(self.wrappers(self.tmp, include_done=False))
        data = {}
        for r in range(reps):
            order = list(conts)
            random.shuffle(order)
            for name in order:
                resf = os.path.join(self.mkd("reap"), "r%d_%s" % (r, re.sub(r"\W+", "_", name)))
                argv = (["unshare", "--pid", "--fork", "--mount-proc"] + conts[name]
                        + [self.bk, "reap", str(n), resf])
                p = popen(argv, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
                if wait_exit(p, 180) is None:
                    kill_proc(p)
                    data.setdefault(name, []).append({"error": "timeout"})
                    continue
                try:
                    with open(resf) as f:
                        cnt, create_ns, reap_ns, left = (int(x) for x in f.read().split())
                    data.setdefault(name, []).append(
                        {"orphans": cnt, "create_ns": create_ns, "reap_ns": reap_ns,
                         "not_reaped": left, "per_s": cnt / (reap_ns / 1e9)})
                except (OSError, ValueError):
                    data.setdefault(name, []).append({"error": "no result (exit %s)" % p.returncode})
        out = {"orphans_per_run": n, "reps": reps, "contenders": {}}
        for name in conts:
            rows = data.get(name, [])
            ok = [x for x in rows if "per_s" in x and x["not_reaped"] == 0]
            out["contenders"][name] = {
                "reaped_per_s": summary([x["per_s"] for x in ok]),
                "reap_ns": summary([x["reap_ns"] for x in ok]),
                "create_ns": summary([x["create_ns"] for x in ok]),
                "raw": rows,
                "errors": [x.get("error", "not reaped: %s" % x.get("not_reaped"))
                           for x in rows if x not in ok],
            }
        self.res["reap"] = out

    # -- 3. idle cost ------------------------------------------------------------
    def bench_idle(self):
        secs = self.a.idle if self.a.idle is not None else self.n(60, 10)
        cont = {}

        def child(d):
            return [self.bk, "child", os.path.join(d, "ready")]

        def add(name, mk, stop, lease=False):
            d = self.mkd("idle", re.sub(r"\W+", "_", name))
            cont[name] = {"argv": mk(d), "stop": stop, "dir": d, "lease": lease}

        add("supervisor sidecar (waiting for marker)",
            lambda d: [self.sup, "sidecar", "--wait-file", d + "/done", "--"] + child(d), "marker")
        add("supervisor sidecar (waiting, main's lease held)",
            lambda d: [self.sup, "sidecar", "--wait-file", d + "/done", "--"] + child(d), "marker",
            lease=True)
        add("supervisor main --done-file (CMD running)",
            lambda d: [self.sup, "main", "--done-file", d + "/done", "--"] + child(d), "term")
        for name, w in self.wrappers(self.tmp, include_done=False).items():
            if not name.startswith("supervisor"):
                add(name, lambda d, w=w: w + child(d), "term")
        for period in (5, 1):
            add("shell loop (sleep %d)" % period,
                lambda d, period=period: [a.replace("%D", d)
                                          for a in self.shell_loop_argv(self.bk, period)], "marker")
        try:
            for name, c in cont.items():
                if c["lease"]:  # like a running main: an exclusive flock on <done>.lease
                    c["lease_f"] = open(os.path.join(c["dir"], "done.lease"), "w")
                    fcntl.flock(c["lease_f"], fcntl.LOCK_EX)
                c["log"] = open(os.path.join(c["dir"], "log"), "w")
                c["p"] = popen(c["argv"], stdout=c["log"], stderr=subprocess.STDOUT)
            for name, c in cont.items():
                if not wait_path(os.path.join(c["dir"], "ready"), 10, c["p"]):
                    c["error"] = "not ready (exit %s)" % c["p"].poll()
            time.sleep(0.5)
            perf = {}
            if self.perf_ok:
                # attach perf first (attaching can itself cost a wake-up), then open our window
                for name, c in cont.items():
                    if "error" in c:
                        continue
                    pf = os.path.join(c["dir"], "perf.csv")
                    perf[name] = (popen(["perf", "stat", "-x,", "-o", pf, "-e",
                                         "context-switches,task-clock", "-p", str(c["p"].pid),
                                         "--", "sleep", str(secs + 1.0)],
                                        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL), pf)
            time.sleep(0.5)
            for name, c in cont.items():
                if "error" not in c:
                    c["a"] = proc_task_stats(c["p"].pid)
            time.sleep(secs)
            for name, c in cont.items():
                if "error" in c:
                    continue
                if c["p"].poll() is not None:
                    c["error"] = "exited during idle window (exit %s)" % c["p"].returncode
                    continue
                c["b"] = proc_task_stats(c["p"].pid)
            for name, (pp, pf) in perf.items():
                if wait_exit(pp, 15) is None:
                    kill_proc(pp)
                    continue
                try:
                    with open(pf) as f:
                        for line in f:
                            parts = line.strip().split(",")
                            if len(parts) > 2 and parts[2] == "context-switches":
                                cont[name]["perf_ctxsw"] = int(parts[0]) if parts[0].isdigit() else 0
                            if len(parts) > 2 and parts[2] == "task-clock":
                                cont[name]["perf_task_clock_ms"] = float(parts[0])
                except (OSError, ValueError):
                    pass
        finally:
            for name, c in cont.items():
                p = c.get("p")
                if p is None:
                    continue
                if p.poll() is None:
                    try:
                        if c["stop"] == "marker":
                            place_marker(os.path.join(c["dir"], "done"))
                            if c.get("lease_f"):
                                c["lease_f"].close()
                        else:
                            os.kill(p.pid, signal.SIGTERM)
                    except OSError:
                        pass
            for name, c in cont.items():
                p = c.get("p")
                if p is None:
                    continue
                if wait_exit(p, 15) is None:
                    c["stop_error"] = "did not stop within 15 s"
                    kill_proc(p)
                c["log"].close()
                if c.get("lease_f"):
                    c["lease_f"].close()
        out = {"seconds": secs, "contenders": {}}
        for name, c in cont.items():
            row = {}
            if "a" in c and "b" in c:
                a, b = c["a"], c["b"]
                row = {
                    "wakeups": b["ctxsw"] - a["ctxsw"],
                    "voluntary": b["vol"] - a["vol"],
                    "nonvoluntary": b["invol"] - a["invol"],
                    "cpu_ns_own_threads": b["sched_ns"] - a["sched_ns"],
                    "cpu_ticks_reaped_children": (b["cutime"] + b["cstime"]) - (a["cutime"] + a["cstime"]),
                    "threads": b["threads"],
                    "wchan": sorted(set(b["wchan"])),
                }
                row["wakeups_per_min"] = row["wakeups"] * 60.0 / secs
                row["cpu_ns_total"] = row["cpu_ns_own_threads"] + row["cpu_ticks_reaped_children"] * 1e9 / os.sysconf("SC_CLK_TCK")
            for k in ("perf_ctxsw", "perf_task_clock_ms", "error", "stop_error"):
                if k in c:
                    row[k] = c[k]
            out["contenders"][name] = row
        self.res["idle"] = out

    # -- 8. real dockerd -----------------------------------------------------------
    @staticmethod
    def _docker_ping(sock):
        s = socket.socket(socket.AF_UNIX)
        s.settimeout(1)
        try:
            s.connect(sock)
            s.sendall(b"GET /_ping HTTP/1.0\r\nHost: docker\r\n\r\n")
            data = s.recv(4096)
            return b" 200 " in data.split(b"\r\n", 1)[0] + b" "
        except OSError:
            return False
        finally:
            s.close()

    def _umount_under(self, d):
        mounts = []
        with open("/proc/self/mountinfo") as f:
            for line in f:
                mp = line.split()[4].replace("\\040", " ")
                if mp == d or mp.startswith(d + "/"):
                    mounts.append(mp)
        for mp in sorted(mounts, key=len, reverse=True):
            subprocess.run(["umount", "-l", mp], capture_output=True)
        return mounts

    def _leftovers(self, needle):
        found = []
        for pid in os.listdir("/proc"):
            if not pid.isdigit() or int(pid) == os.getpid():
                continue
            try:
                with open("/proc/%s/cmdline" % pid, "rb") as f:
                    cmd = f.read().replace(b"\0", b" ").decode(errors="replace")
            except OSError:
                continue
            if needle in cmd:
                found.append((int(pid), cmd.strip()))
        return found

    def bench_dockerd(self):
        dockerd = shutil.which("dockerd")
        if not dockerd:
            self.res["dockerd"] = {"skipped": "dockerd not found"}
            return
        reps = self.n(8, 2)
        modes = ["bare dockerd, SIGTERM to its pid", "bare dockerd, SIGTERM to its process group",
                 "supervisor sidecar -- dockerd, marker"]
        data, problems = {}, []
        seq = 0
        for r in range(reps):
            order = list(modes)
            random.shuffle(order)
            for mode in order:
                seq += 1
                d = self.mkd("dk", str(seq))
                sock = d + "/docker.sock"
                dargs = [dockerd, "--iptables=false", "--ip6tables=false", "--bridge=none",
                         "--storage-driver=vfs", "--data-root=" + d + "/data",
                         "--exec-root=" + d + "/exec", "--pidfile=" + d + "/docker.pid",
                         "-H", "unix://" + sock]
                lease = None
                if mode.startswith("supervisor"):
                    lease = open(d + "/done.lease", "w")
                    fcntl.flock(lease, fcntl.LOCK_EX)
                    argv = [self.sup, "sidecar", "--wait-file", d + "/done", "--"] + dargs
                else:
                    argv = dargs
                logf = open(d + "/log", "w")
                p = popen(argv, stdout=logf, stderr=subprocess.STDOUT)
                try:
                    t_start = time.monotonic()
                    ok = False
                    while time.monotonic() - t_start < 60 and p.poll() is None:
                        if self._docker_ping(sock):
                            ok = True
                            break
                        time.sleep(0.02)
                    if not ok:
                        data.setdefault(mode, []).append({"error": "dockerd not ready (exit %s)" % p.poll()})
                        continue
                    ready_s = time.monotonic() - t_start
                    time.sleep(0.3)
                    if mode.startswith("supervisor"):
                        t0 = place_marker(d + "/done")
                        lease.close()
                        lease = None
                    else:
                        t0 = time.monotonic_ns()
                        if "group" in mode:
                            os.killpg(p.pid, signal.SIGTERM)
                        else:
                            os.kill(p.pid, signal.SIGTERM)
                    t1 = wait_exit(p, 60)
                    if t1 is None:
                        data.setdefault(mode, []).append({"error": "did not exit within 60 s"})
                        continue
                    data.setdefault(mode, []).append(
                        {"stop_ns": t1 - t0, "ready_s": ready_s, "exit": p.returncode})
                finally:
                    if lease:
                        lease.close()
                    kill_proc(p)
                    logf.close()
                    time.sleep(0.2)
                    left = self._leftovers(d)
                    for pid, cmd in left:
                        problems.append("leftover after %s: %d %s" % (mode, pid, cmd[:120]))
                        try:
                            os.kill(pid, signal.SIGKILL)
                        except OSError:
                            pass
                    mnts = self._umount_under(d)
                    if mnts:
                        problems.append("unmounted %d leftover mounts after %s" % (len(mnts), mode))
                    shutil.rmtree(d, ignore_errors=True)
        out = {"reps": reps, "contenders": {}, "problems": problems}
        for mode in modes:
            rows = data.get(mode, [])
            ok = [x for x in rows if "stop_ns" in x]
            out["contenders"][mode] = {
                "stop": summary([x["stop_ns"] for x in ok]),
                "ready_s": summary([x["ready_s"] for x in ok]),
                "exit_codes": sorted({x["exit"] for x in ok}),
                "errors": [x["error"] for x in rows if "error" in x],
                "raw": rows,
            }
        b = out["contenders"].get(modes[0], {}).get("stop", {})
        s = out["contenders"].get(modes[2], {}).get("stop", {})
        if b.get("n") and s.get("n"):
            out["added_ns"] = s["median"] - b["median"]
            out["bare_iqr_ns"] = b["p75"] - b["p25"]
        self.res["dockerd"] = out

    # -- targets ---------------------------------------------------------------------
    def targets(self):
        t = []
        R = self.res

        def add(name, target, measured, ok):
            t.append({"target": name, "goal": target, "measured": measured,
                      "result": "n/a" if ok is None else ("pass" if ok else "MISS")})

        st = R.get("startup", {}).get("contenders", {})
        tini = st.get("tini-static", {}).get("overhead_median_ns")
        tini_cpu = st.get("tini-static", {}).get("cpu_overhead_median_ns")
        for name in ("supervisor main", "supervisor main --done-file"):
            m = st.get(name, {}).get("overhead_median_ns")
            mc = st.get(name, {}).get("cpu_overhead_median_ns")
            add("start-up overhead (wall), %s" % name,
                "≤ tini-static (%s; CPU %s)" % (fmt_us(tini), fmt_us(tini_cpu)),
                "%s (CPU %s)" % (fmt_us(m), fmt_us(mc)),
                None if m is None or tini is None else m <= tini)
        mk = R.get("marker", {}).get("contenders", {})
        for name, c in mk.items():
            if name.startswith("supervisor"):
                p90 = c["marker_to_exit"].get("p90")
                bad = c["daemon_alive_after_exit"] or c["failures"]
                add("marker-to-exit p90, %s" % name, "≤ 2 ms", fmt_ms(p90),
                    None if p90 is None else (p90 <= 2e6 and not bad))
        idle = R.get("idle", {})
        for name, c in idle.get("contenders", {}).items():
            if name.startswith("supervisor"):
                w = c.get("wakeups")
                add("idle wake-ups in %s s, %s" % (idle.get("seconds"), name), "0",
                    "—" if w is None else str(w), None if w is None else w == 0)
        mem = R.get("memory", {}).get("contenders", {})
        for name, c in mem.items():
            if name.startswith("supervisor"):
                m = c["vmhwm_kib"].get("max")
                add("peak RSS (VmHWM, max of reps), %s" % name, "≤ 1536 KiB",
                    "—" if m is None else "%d KiB" % m, None if m is None else m <= 1536)
        sz = R.get("size", {}).get("supervisor")
        if sz:
            add("binary size (static, stripped)", "≤ 1 MiB (1048576 B)",
                "%d B (%s, %s)" % (sz["bytes"], "static" if sz["static"] else "DYNAMIC",
                                   "stripped" if sz["stripped"] else "NOT stripped"),
                sz["bytes"] <= MIB and bool(sz["static"]) and bool(sz["stripped"]))
        rp = R.get("reap", {}).get("contenders", {}).get("supervisor main")
        if rp:
            m = rp["reaped_per_s"].get("median")
            add("orphans reaped per second (median)", "≥ 10,000/s",
                "—" if m is None else "%.0f/s" % m, None if m is None else (m >= 10000 and not rp["errors"]))
        sg = R.get("signal", {}).get("contenders", {})
        for name in ("supervisor main", "supervisor main --done-file"):
            c = sg.get(name)
            if c:
                m = c["handler_latency"].get("median")
                add("signal forwarding (median), %s" % name, "≤ 0.2 ms", fmt_us(m),
                    None if m is None else (m <= 2e5 and not c["failures"]))
        dk = R.get("dockerd", {})
        if "added_ns" in dk:
            add("delay added to dockerd shutdown (median sidecar − median bare)",
                "not measurable (≤ IQR of bare, %s)" % fmt_ms(dk["bare_iqr_ns"]),
                fmt_ms(dk["added_ns"]), dk["added_ns"] <= max(dk["bare_iqr_ns"], 0))
        R["targets"] = t

    # -- report ----------------------------------------------------------------------
    def markdown(self):
        R = self.res
        m = R["meta"]
        L = []
        L.append("# supervisor benchmark results (%s run)\n" % m["mode"])
        L.append("- Date: %s" % m["date"])
        L.append("- Machine: %s, %d CPUs (nproc), %s MiB RAM, kernel %s, %s" % (
            m["cpu_model"], m["nproc"], m["mem_total_mib"], m["kernel"], m["os"]))
        L.append("- Load: machine CPU busy %s%% in the 3 s before the run (other users of this shared "
                 "machine); load average at start %s, at end %s" % (
                     m["machine_cpu_busy_pct_before_run"], " ".join(m["loadavg_start"]),
                     " ".join(m.get("loadavg_end", []))))
        L.append("- supervisor: `%s` (%s; %s)" % (m["supervisor_bin"], " ".join(m["supervisor_version"]) or "?",
                                              m["supervisor_source"] or "binary given"))
        L.append("- Peers: " + ", ".join("%s %s" % (k, v["version"]) for k, v in m["peers"].items()))
        L.append("- Command: `%s`; wall time %s s" % (m.get("command", "bench/run.sh"), m.get("wall_s")))
        L.append("- Scratch directory (markers, leases, sockets): %s on %s" % (m["scratch_dir"], m["scratch_fs"]))
        L.append("")
        L.append("## Targets\n")
        L.append("| target | goal | measured | result |")
        L.append("|---|---|---|---|")
        for t in R.get("targets", []):
            L.append("| %s | %s | %s | %s |" % (t["target"], t["goal"], t["measured"], t["result"]))
        L.append("")

        st = R.get("startup")
        if st:
            L.append("## 1. Start-up overhead (`X /bin/true` − `/bin/true`)\n")
            L.append("%d rounds × %d runs per contender, order shuffled every round. Overhead = "
                     "median of all runs − median of the baseline; spread = p10–p90 of the per-round "
                     "overheads. CPU overhead = median user+system time of X and the `/bin/true` it reaped (wait4 "
                     "rusage) − the baseline's: it does not grow when the machine is busy, wall time does.\n"
                     % (st["rounds"], st["runs_per_round"]))
            L.append("| contender | median wall | overhead | per-round overhead p10–p90 | ratio to tini-static | CPU overhead | non-zero exits |")
            L.append("|---|---|---|---|---|---|---|")
            for name, c in st["contenders"].items():
                pr = c["overhead_per_round"]
                L.append("| %s | %s | %s | %s – %s | %s | %s | %d |" % (
                    name, fmt_us(c["wall"]["median"]), fmt_us(c["overhead_median_ns"]),
                    fmt_us(pr["p10"]), fmt_us(pr["p90"]),
                    "%.2f" % c["ratio_to_tini"] if "ratio_to_tini" in c else "—",
                    fmt_us(c["cpu_overhead_median_ns"]), c["nonzero_exits"]))
            L.append("")

        mk = R.get("marker")
        if mk:
            L.append("## 2. Marker-to-exit latency (marker renamed into place → sidecar process exited)\n")
            L.append("Random settle %d–%d ms between daemon ready and marker. `daemon signaled` = "
                     "marker → the daemon's SIGTERM handler ran. Shell-loop samples run concurrently "
                     "(they only sleep) and are fewer.\n" % (mk["settle_before_marker_us"][0] // 1000,
                                                              mk["settle_before_marker_us"][1] // 1000))
            L.append("| contender | runs | p50 | p90 | p99 | max | daemon signaled p50 | daemon alive after exit | failures |")
            L.append("|---|---|---|---|---|---|---|---|---|")
            for name, c in mk["contenders"].items():
                s = c["marker_to_exit"]
                L.append("| %s | %d | %s | %s | %s | %s | %s | %d | %s |" % (
                    name, c["runs"], fmt_ms(s.get("p50", s.get("median"))), fmt_ms(s.get("p90")),
                    fmt_ms(s.get("p99")), fmt_ms(s.get("max")),
                    fmt_ms(c["marker_to_daemon_signaled"].get("median")),
                    c["daemon_alive_after_exit"], len(c["failures"]) or "0"))
            L.append("")

        idle = R.get("idle")
        if idle:
            L.append("## 3. Idle cost over %s s (after 1 s settle; all contenders idle concurrently)\n"
                     % idle["seconds"])
            L.append("Wake-ups = voluntary + non-voluntary context switches summed over all threads "
                     "(/proc/PID/task/*/status). CPU = schedstat run time of all threads + reaped "
                     "children's CPU ticks. perf columns (`perf stat -p`, a window 1 s longer, opened "
                     "0.5 s earlier) count the process and the children it spawns (the shell loop's "
                     "`sleep`s).\n")
            L.append("| contender | wake-ups | per minute | CPU time | threads | perf ctx-switches | perf task-clock | blocked in |")
            L.append("|---|---|---|---|---|---|---|---|")
            for name, c in idle["contenders"].items():
                if "wakeups" not in c:
                    L.append("| %s | error: %s | | | | | | |" % (name, c.get("error")))
                    continue
                L.append("| %s | %d | %.1f | %s | %d | %s | %s | %s |" % (
                    name, c["wakeups"], c["wakeups_per_min"], fmt_ms(c["cpu_ns_total"]), c["threads"],
                    c.get("perf_ctxsw", "—"),
                    "%.2f ms" % c["perf_task_clock_ms"] if "perf_task_clock_ms" in c else "—",
                    ", ".join(c["wchan"])))
            L.append("")

        mem = R.get("memory")
        if mem:
            L.append("## 4. Peak RSS (VmHWM, read at the process's ptrace exit-stop)\n")
            L.append("%d reps each. RssAnon/RssFile are the values at exit (file = mapped binary/"
                     "libc pages).\n" % mem["reps"])
            L.append("| contender | VmHWM median | VmHWM max | RssAnon at exit | RssFile at exit | threads | exit codes |")
            L.append("|---|---|---|---|---|---|---|")
            for name, c in mem["contenders"].items():
                h = c["vmhwm_kib"]
                if not h.get("n"):
                    L.append("| %s | error: %s | | | | | |" % (name, "; ".join(c["errors"])))
                    continue
                L.append("| %s | %d KiB | %d KiB | %d KiB | %d KiB | %s | %s |" % (
                    name, h["median"], h["max"], c["rss_anon_at_exit_kib"]["median"],
                    c["rss_file_at_exit_kib"]["median"], ",".join(map(str, c["threads_at_exit"])),
                    ",".join(map(str, c["exit_codes"]))))
            L.append("")

        sz = R.get("size")
        if sz:
            L.append("## 5. Binary size\n")
            L.append("| binary | bytes | MiB | static | stripped |")
            L.append("|---|---|---|---|---|")
            for name, c in sz.items():
                extra = " (%d after strip)" % c["bytes_after_strip"] if "bytes_after_strip" in c else ""
                L.append("| %s | %d%s | %.2f | %s | %s |" % (name, c["bytes"], extra, c["bytes"] / MIB,
                                                         c["static"], c["stripped"]))
            L.append("")

        rp = R.get("reap")
        if rp:
            L.append("## 6. Reaping throughput as PID 1 (`unshare --pid --fork --mount-proc`)\n")
            L.append("%d orphans (forked by a process that then exits, so re-parented to PID 1), "
                     "parked on a pipe, released at once; time until the last one is reaped "
                     "(kill(pid, 0) == ESRCH). The reference PID 1 is a bare blocking wait() loop: "
                     "what this machine allows. The rate swings widely between runs for every PID 1 "
                     "(the exits compete for the same CPUs). %d reps.\n"
                     % (rp["orphans_per_run"], rp["reps"]))
            L.append("| PID 1 | orphans reaped/s (median) | min–max | reap time median | errors |")
            L.append("|---|---|---|---|---|")
            for name, c in rp["contenders"].items():
                s = c["reaped_per_s"]
                if not s.get("n"):
                    L.append("| %s | — | — | — | %s |" % (name, "; ".join(c["errors"])))
                    continue
                L.append("| %s | %.0f | %.0f – %.0f | %s | %s |" % (
                    name, s["median"], s["min"], s["max"], fmt_ms(c["reap_ns"]["median"]),
                    "; ".join(c["errors"]) or "none"))
            L.append("")

        sg = R.get("signal")
        if sg:
            L.append("## 7. Signal forwarding latency (kill(X, SIGTERM) → child's handler runs)\n")
            L.append("%d rounds × %d runs per contender, order shuffled. `exit` = until X itself "
                     "exited.\n" % (sg["rounds"], sg["runs_per_round"]))
            L.append("| contender | runs | p50 | p90 | p99 | exit p50 | failures |")
            L.append("|---|---|---|---|---|---|---|")
            for name, c in sg["contenders"].items():
                h = c["handler_latency"]
                L.append("| %s | %d | %s | %s | %s | %s | %s |" % (
                    name, h.get("n", 0), fmt_us(h.get("median")), fmt_us(h.get("p90")),
                    fmt_us(h.get("p99")), fmt_us(c["exit_latency"].get("median")),
                    len(c["failures"]) or "0"))
            L.append("")

        dk = R.get("dockerd")
        if dk:
            L.append("## 8. Real dockerd as the sidecar's daemon\n")
            if "skipped" in dk:
                L.append("Skipped: %s\n" % dk["skipped"])
            else:
                L.append("%d reps per mode, interleaved. Stop = SIGTERM (or marker rename) → process "
                         "exited.\n" % dk["reps"])
                L.append("| mode | runs | stop p50 | min – max | dockerd ready after | exit codes | errors |")
                L.append("|---|---|---|---|---|---|---|")
                for name, c in dk["contenders"].items():
                    s = c["stop"]
                    L.append("| %s | %d | %s | %s – %s | %s | %s | %s |" % (
                        name, s.get("n", 0), fmt_ms(s.get("median")), fmt_ms(s.get("min")),
                        fmt_ms(s.get("max")),
                        "%.2f s" % c["ready_s"]["median"] if c["ready_s"].get("n") else "—",
                        ",".join(map(str, c["exit_codes"])), "; ".join(c["errors"]) or "none"))
                if "added_ns" in dk:
                    L.append("\nAdded by the sidecar: %s (median sidecar − median bare; bare IQR %s)."
                             % (fmt_ms(dk["added_ns"]), fmt_ms(dk["bare_iqr_ns"])))
                if dk["problems"]:
                    L.append("\nProblems: " + "; ".join(dk["problems"]))
                L.append("")

        L.append("## Load during each phase\n")
        L.append("The load average lags by minutes and is inflated by the reaping phase's own burst of "
                 "10,000 runnable processes (also a previous run's); the CPU-busy column is the share "
                 "of all CPUs' time that was not idle during the phase, the benchmark's own work "
                 "included.\n")
        L.append("| phase | wall | loadavg before | loadavg after | machine CPU busy (incl. the bench) |")
        L.append("|---|---|---|---|---|")
        for name, l in R.get("load", {}).items():
            busy = l["machine_cpu_busy_pct"]
            L.append("| %s | %s s | %s | %s | %s |" % (name, l["wall_s"], " ".join(l["loadavg_before"]),
                                                   " ".join(l["loadavg_after"]),
                                                   "—" if busy is None else "%s%%" % busy))
        L.append("")
        if R.get("errors"):
            L.append("## Errors\n")
            for k, v in R["errors"].items():
                L.append("- %s: `%s`" % (k, v))
            L.append("")
        L.append("## Leaked processes\n")
        L.append("The harness is a child subreaper; after every phase it looks for live processes "
                 "re-parented to it.\n")
        if R.get("leaks"):
            for x in R["leaks"]:
                L.append("- %s" % x)
        else:
            L.append("None.")
        L.append("")
        return "\n".join(L)

    # -- run -------------------------------------------------------------------------
    def run(self):
        t0 = time.monotonic()
        self.setup()
        phases = [("size", self.bench_size), ("startup", self.bench_startup),
                  ("signal", self.bench_signal), ("marker", self.bench_marker),
                  ("memory", self.bench_memory), ("idle", self.bench_idle),
                  ("dockerd", self.bench_dockerd),
                  # last: its exit storm of 10,000 runnable processes inflates the load average
                  ("reap", self.bench_reap)]
        only = set(self.a.only.split(",")) if self.a.only else None
        for name, fn in phases:
            if only and name not in only:
                continue
            with Phase(self.res, name):
                fn()
        self.res["meta"]["loadavg_end"] = loadavg()
        self.res["meta"]["wall_s"] = round(time.monotonic() - t0, 1)
        self.res["meta"]["command"] = self.a.command
        self.targets()

    def cleanup(self):
        for p in list(TRACKED):
            kill_proc(p)
        for pid, state, cmd in reap_strays():
            self.res.setdefault("leaks", []).append("at exit: pid %d (%s) %s" % (pid, state, cmd[:160]))
        for pid, cmd in self._leftovers(self.tmp):  # escaped re-parenting (e.g. setsid + double fork)
            self.res.setdefault("leaks", []).append("at exit, not our child: pid %d %s" % (pid, cmd[:160]))
            try:
                os.kill(pid, signal.SIGKILL)
            except OSError:
                pass
        self._umount_under(self.tmp)
        if not self.a.keep_tmp:
            shutil.rmtree(self.tmp, ignore_errors=True)


def main():
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--bin", help="supervisor binary to measure (required unless --render-only)")
    ap.add_argument("--render-only", action="store_true",
                    help="only rewrite OUT/NAME.md from an existing OUT/NAME.json")
    ap.add_argument("--bin-source", default="", help="free text: where the binary came from")
    ap.add_argument("--quick", action="store_true", help="fewer runs and a 10 s idle window")
    ap.add_argument("--idle", type=float, default=None, help="idle window in seconds")
    ap.add_argument("--only", default="", help="comma list of phases: size,startup,signal,"
                    "marker,memory,reap,idle,dockerd")
    ap.add_argument("--out", default=os.path.join(HERE, "results"), help="output directory")
    ap.add_argument("--name", default="latest", help="output basename (NAME.md, NAME.json)")
    ap.add_argument("--tmpdir", default=None, help="parent of the scratch directory")
    ap.add_argument("--keep-tmp", action="store_true")
    ap.add_argument("--command", default="bench/run.sh", help=argparse.SUPPRESS)
    a = ap.parse_args()
    if a.render_only:
        b = Bench.__new__(Bench)
        with open(os.path.join(a.out, a.name + ".json")) as f:
            b.res = json.load(f)
        path = os.path.join(a.out, a.name + ".md")
        with open(path + ".tmp", "w") as f:
            f.write(b.markdown() + "\n")
        os.rename(path + ".tmp", path)
        log("rewrote %s" % path)
        return
    if not a.bin:
        ap.error("--bin is required")
    if os.geteuid() != 0:
        sys.exit("bench: must run as root (unshare --pid, dockerd)")
    if not set_child_subreaper():
        log("warning: PR_SET_CHILD_SUBREAPER failed; leak detection is weaker")
    b = Bench(a)

    def on_signal(sig, frame):
        raise KeyboardInterrupt

    signal.signal(signal.SIGTERM, on_signal)
    try:
        b.run()
    finally:
        b.cleanup()
    os.makedirs(a.out, exist_ok=True)
    md = b.markdown()
    for ext, text in (("json", json.dumps(b.res, indent=1, sort_keys=False)), ("md", md)):
        path = os.path.join(a.out, "%s.%s" % (a.name, ext))
        with open(path + ".tmp", "w") as f:
            f.write(text + "\n")
        os.rename(path + ".tmp", path)
    print(md)
    log("wrote %s/%s.{md,json}" % (a.out, a.name))


if __name__ == "__main__":
    main()
