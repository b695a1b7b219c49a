#!/usr/bin/env python3
"""Benchmark harness for `supervisor` against tini-static, dumb-init, catatonit, the shell
loops it replaces and minimal C references. Driven by bench/run.sh; python3 standard library,
plus matplotlib for the plots (skipped, and said to be, without it). See docs/bench.md.

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
# contender names other code refers to (targets, plots, the README table)
SUP_LEASE = "supervisor sidecar (lease held, like a real main)"
SUP_MARKER = "supervisor sidecar (marker only, no lease file)"
REF_LEASE = "C waiter: blocked flock (lease held)"
REF_INOTIFY = "C waiter: inotify, instance kept past its exit (marker only)"
DEATH_DAEMON = "sidecar's daemon SIGKILLed"
DEATH_SIDECAR = "sidecar supervisor SIGKILLed (lease released, no marker)"
GATE_CHAIN = "sidecar --ready-when tcp -> --ready-file -> main --wait-for file:"
GATE_FILE = "supervisor main --wait-for file:"  # == Bench.gate_name("file", "supervisor")
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


# ----------------------------------------------------------------------------- one helper run
# Each function runs one benchkit helper (bench/benchkit.c) on one contender and parses what it
# prints; the phases of Bench interleave them, and so does bench/before-after.py.

PEERS = ("tini-static", "dumb-init", "catatonit")


def build_benchkit(scratch):
    bk = os.path.join(scratch, "benchkit")
    subprocess.run(["gcc", "-O2", "-o", bk, os.path.join(HERE, "benchkit.c")], check=True)
    return bk


def find_peers():
    """{name: path} of the PID-1 tools on PATH (tini, dynamic, is listed for its size only)."""
    found = {}
    for name in PEERS + ("tini",):
        p = shutil.which(name)
        if p:
            found[name] = p
    return found


def peer_wrappers(peers):
    """The argv prefix that puts each peer found in front of a command."""
    w = {}
    for name, tail in (("tini-static", ["--"]), ("dumb-init", []), ("catatonit", ["--"])):
        if name in peers:
            w[name] = [peers[name]] + tail
    return w


def best_peer(values):
    """(name, value) of the peer with the smallest value, or None."""
    got = [(values[k], k) for k in PEERS if values.get(k) is not None]
    if not got:
        return None
    v, k = min(got)
    return k, v


def run_spawnloop(bk, argv, per):
    """`benchkit spawnloop`: PREFIX /bin/true `per` times. ([wall ns], [cpu ns], failures)."""
    q = subprocess.run([bk, "spawnloop", str(per), "10000", "--"] + argv + ["/bin/true"],
                       capture_output=True, text=True, timeout=per * 12 + 30)
    rows = [l.split() for l in q.stdout.splitlines()]
    rows = [r for r in rows if len(r) == 2 and r[0].isdigit()]
    m = re.search(r"failures (\d+)", q.stderr)
    return [int(r[0]) for r in rows], [int(r[1]) for r in rows], int(m.group(1)) if m else per


def run_sigbench(bk, argv, per, d):
    """`benchkit sigbench` in directory d: SIGTERM to PREFIX `benchkit child`, `per` times.
    ([(handler ns, exit ns, exit-after-child ns or -1)], [failure lines])."""
    q = subprocess.run([bk, "sigbench", str(per), "1000", "5000", d, "--"] + argv
                       + [bk, "child", "%R", "%O"], capture_output=True, text=True,
                       timeout=per * 12 + 30)
    ok, fails = [], []
    for line in q.stdout.splitlines():
        f = line.split()
        if f and f[0] == "ok":
            ok.append((int(f[1]), int(f[2]), int(f[3])))
        elif f:
            fails.append(" ".join(f[1:]))
    return ok, fails


def new_marker_store():
    return {"exit": [], "daemon_signaled": [], "codes": {}, "daemon_alive": 0, "failures": [],
            "first_exit": []}


def parse_marker(text, store, name):
    """Add `benchkit markerbench`'s lines to store[name]."""
    for line in text.splitlines():
        f = line.split()
        c = store.setdefault(name, new_marker_store())
        if f and f[0] == "ok":
            c["exit"].append(int(f[1]))
            if int(f[2]) >= 0:
                c["daemon_signaled"].append(int(f[2]))
            c["codes"][f[3]] = c["codes"].get(f[3], 0) + 1
            if f[4] == "daemon-alive":
                c["daemon_alive"] += 1
            if "term-blocked" in f:
                c["term_blocked"] = c.get("term_blocked", 0) + 1
            if "first-exited" in f:
                c["first_exit"].append(int(f[f.index("first-exited") + 1]))
        elif f:
            c["failures"].append(" ".join(f[1:]))


def run_markerbench(bk, argv, per, settle, lease, d, store, name):
    """`benchkit markerbench` in directory d (lease: 0 none, 1 held, 2 released without a
    marker), `per` runs into store[name]; returns how many succeeded."""
    q = subprocess.run([bk, "markerbench", str(per), str(settle[0]), str(settle[1]), "10000",
                        str(lease), d, "--"] + argv, capture_output=True, text=True,
                       timeout=per * 25 + 30)
    before = len(store.get(name, {}).get("exit", []))
    parse_marker(q.stdout, store, name)
    return len(store[name]["exit"]) - before


def run_hwm(bk, argv, stop, d):
    """Run argv under `benchkit hwm`; stop is None (exits by itself), 'marker' or 'term'.
    Returns the exit-stop's /proc fields (VmHWM, RssAnon, RssFile, Threads: KiB) and 'exit'."""
    # unbuffered: readline takes only the first line, and communicate() gets the rest (a
    # buffered reader could take both lines at once, which communicate(timeout=) never sees)
    p = popen([bk, "hwm", "--"] + argv, stdout=subprocess.PIPE, bufsize=0)
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
    line = so.decode().strip().splitlines()[-1].split()
    fields = dict(x.split("=") for x in line[2:])
    fields = {k: int(v) for k, v in fields.items()}
    fields["exit"] = int(line[1])
    return fields


def run_reap(bk, argv, n, resf, mode="reap"):
    """PREFIX as PID 1 of a new PID namespace reaping n orphans, result file resf: `benchkit
    reap` (mode "reap": n running orphans exit at once) or `benchkit zombies` (mode "zombies": n
    orphans already zombies handed over at once). {orphans, create_ns, reap_ns, not_reaped,
    per_s} or {error}."""
    p = popen(["unshare", "--pid", "--fork", "--mount-proc"] + argv + [bk, mode, str(n), resf],
              stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    if wait_exit(p, 180) is None:
        kill_proc(p)
        return {"error": "timeout"}
    try:
        with open(resf) as f:
            cnt, create_ns, reap_ns, left = (int(x) for x in f.read().split())
    except (OSError, ValueError):
        return {"error": "no result (exit %s)" % p.returncode}
    return {"orphans": cnt, "create_ns": create_ns, "reap_ns": reap_ns, "not_reaped": left,
            "per_s": cnt / (reap_ns / 1e9)}


# ----------------------------------------------------------------------------- plots


def write_plots(R, outdir, prefix="", fmt="svg"):
    """SVG plots of every latency distribution (ECDFs: the whole distribution, tails included),
    the supervisor beside the peers, the C references and the shell loops. Returns
    {name: file} of what was written, or {"skipped": why} when matplotlib is missing."""
    try:
        import matplotlib

        matplotlib.use("svg")
        import matplotlib.pyplot as plt
    except ImportError as e:
        return {"skipped": "matplotlib not importable (%s); bench/run.sh installs it" % e}
    # text stays text (small files, fonts of the viewer); ids do not change from run to run
    plt.rcParams.update({"svg.hashsalt": "supervisor-bench", "svg.fonttype": "none",
                         "font.size": 8, "axes.titlesize": 9, "legend.fontsize": 7})
    written = {}
    m = R.get("meta", {})
    foot = "%s run, %s; %s, %s CPUs, kernel %s" % (m.get("mode"), m.get("date"), m.get("cpu_model"),
                                                  m.get("nproc"), m.get("kernel"))

    # one colour family per kind of contender, the same in every panel
    families = {"shell": ["#555555", "#999999", "#bbbbbb"],
                "ref": ["#2ca02c", "#98df8a", "#1b7a1b"],
                "peer": ["#ff7f0e", "#d62728", "#8c564b", "#e377c2"],
                "sup": ["#1f77b4", "#9467bd", "#17becf", "#08306b"]}

    def family(name):
        if name.startswith("shell"):
            return "shell", {"lw": 1.0, "ls": "--"}
        if name.startswith("C waiter"):
            return "ref", {"lw": 1.1, "ls": ":"}
        if name.startswith(PEERS) or name.startswith("/bin/true"):
            return "peer", {"lw": 1.0}
        return "sup", {"lw": 1.8}

    def ecdf(ax, series, unit, title, goal=None, log=True):
        scale = {"µs": 1e3, "ms": 1e6}[unit]
        drawn, used = 0, {}
        for name, xs in series:
            if not xs:
                continue
            fam, kw = family(name)
            kw["color"] = families[fam][used.get(fam, 0) % len(families[fam])]
            used[fam] = used.get(fam, 0) + 1
            n = len(xs)
            xs = sorted(x / scale for x in xs)
            ys = [(i + 1) / n for i in range(n)]
            if n > 400:  # 400 steps draw the same curve in a fraction of the file
                keep = sorted({round(i * (n - 1) / 399) for i in range(400)})
                xs, ys = [xs[i] for i in keep], [ys[i] for i in keep]
            ax.step([xs[0]] + xs, [0.0] + ys, where="post", label="%s (n=%d)" % (name, n),
                    **kw)
            drawn += 1
        if goal is not None:
            ax.axvline(goal[0], color="#d62728", lw=0.8, ls="-.")
            ax.text(goal[0], 0.99, goal[1] + " ", color="#d62728", rotation=90, va="top",
                    ha="right", fontsize=7)
        if log:
            ax.set_xscale("log")
        ax.set_xlabel(unit)
        ax.set_ylabel("fraction of runs ≤ x")
        ax.set_ylim(0, 1.02)
        ax.grid(True, which="major", alpha=0.3)
        ax.set_title(title)
        if drawn:
            ax.legend(loc="lower right")
        return drawn

    def save(fig, name):
        fig.text(0.01, 0.005, foot, fontsize=6, color="grey")
        fig.tight_layout(rect=(0, 0.02, 1, 1))
        path = os.path.join(outdir, prefix + name)
        if fmt != "svg":  # a raster copy to look at (--render-only --plot-format png)
            path = path[:-3] + fmt
        fig.savefig(path, format=fmt, metadata={"Date": None} if fmt == "svg" else None)
        plt.close(fig)
        written[name] = os.path.basename(path)

    gt = R.get("gates", {}).get("contenders", {})
    if gt:
        fig, axes = plt.subplots(2, 3, figsize=(13, 7.5))
        panels = [("tcp", "tcp: listening → CMD started", (100, "goal p90 100 ms")),
                  ("unix", "unix socket: listening → CMD started", (100, "goal p90 100 ms")),
                  ("http", "http: answering 200 → CMD started", (100, "goal p90 100 ms")),
                  ("file", "file: renamed in → CMD started", (4, "goal p90 4 ms"))]
        for ax, (kind, title, goal) in zip(axes.flat, panels):
            ser = [(n, c["raw_ready_to_cmd_started_ns"]) for n, c in gt.items()
                   if c["kind"] == kind and n != GATE_CHAIN]
            ecdf(ax, ser, "ms", title, goal)
        ax = axes.flat[4]
        c = gt.get(GATE_CHAIN)
        ecdf(ax, [("sidecar → ready file → main", c["raw_ready_to_cmd_started_ns"] if c else []),
                  (Bench.gate_name("tcp", "shell loop") + ", one hop",
                   gt.get(Bench.gate_name("tcp", "shell loop"), {}).get("raw_ready_to_cmd_started_ns", []))],
             "ms", "chain: daemon listening → main's CMD started", (100, "goal p90 100 ms"))
        ax = axes.flat[5]
        pr = R.get("gates", {}).get("probe_rate", {})
        if pr and "skipped" not in pr:
            for kind, v in pr.items():
                for who, ls in (("supervisor", "-"), ("shell loop", "--")):
                    ys = v.get(who, {}).get("per_second", [])
                    if ys:
                        ax.plot(range(1, len(ys) + 1), ys, ls=ls, marker="o", ms=3,
                                label="%s %s" % (who, kind))
            ax.set_xlabel("second of the wait")
            ax.set_ylabel("connect() calls")
            ax.set_title("probe rate while waiting (syscall tracepoint)")
            ax.grid(True, alpha=0.25)
            ax.legend(loc="upper right")
        else:
            ax.axis("off")
        save(fig, "gates.svg")

    mk = R.get("marker", {}).get("contenders", {})
    if mk:
        fig, axes = plt.subplots(1, 2, figsize=(13, 4.5))
        lease = [(n, c["raw_marker_to_exit_ns"]) for n, c in mk.items()
                 if "marker only" not in n]
        nolease = [(n, c["raw_marker_to_exit_ns"]) for n, c in mk.items()
                   if "marker only" in n or n.startswith("shell")]
        ecdf(axes[0], lease, "ms", "marker → sidecar exited, main's lease held",
             (5, "goal p99 5 ms"))
        ecdf(axes[1], nolease, "ms", "marker → sidecar exited, no lease file (inotify only)",
             (5, "goal p99 5 ms"))
        save(fig, "marker.svg")

    dt, ch = R.get("death", {}).get("contenders", {}), R.get("chain", {}).get("contenders", {})
    if dt or ch:
        fig, axes = plt.subplots(1, 2, figsize=(13, 4.5))
        ecdf(axes[0], [(n, c["raw_to_cmd_signalled_ns"]) for n, c in dt.items()], "ms",
             "sidecar death → main's CMD signalled (--requires)", (10, "goal p90 10 ms"))
        ser = []
        for n, c in ch.items():
            ser.append(("sidecar A exited (main's marker → A)", c.get("raw_marker_to_first_exit_ns", [])))
            ser.append(("sidecar B exited (→ A's marker → B)", c["raw_marker_to_exit_ns"]))
        if mk.get(SUP_LEASE):
            ser.append(("one sidecar, for comparison", mk[SUP_LEASE]["raw_marker_to_exit_ns"]))
        ecdf(axes[1], ser, "ms", "chain stop: main's marker → sidecars exited")
        save(fig, "dependencies.svg")

    st = R.get("startup", {}).get("contenders", {})
    sg = R.get("signal", {}).get("contenders", {})
    if st or sg:
        fig, axes = plt.subplots(1, 3, figsize=(15, 4.5))
        ecdf(axes[0], [(n, c.get("raw_wall_ns", [])) for n, c in st.items()], "µs",
             "start-up: X /bin/true, wall time per run")
        ecdf(axes[1], [(n, c.get("raw_handler_latency_ns", [])) for n, c in sg.items()], "µs",
             "SIGTERM to X → child's handler ran")
        ecdf(axes[2], [(n, c.get("raw_exit_latency_ns", [])) for n, c in sg.items()], "µs",
             "SIGTERM to X → X exited")
        save(fig, "startup-signal.svg")
    return written


# ----------------------------------------------------------------------------- README table


def readme_table(R):
    """The README's benchmark section body, from one run's results (bench/results/
    readme-table.md): what the README shows is this text, pasted or include-checked."""
    m = R.get("meta", {})
    T = R.get("targets", [])

    def verdict(name, goal=None, family=False):
        """The result of the target row `name` (optionally followed by " (..." or ": ..."), or
        with family=True of every row whose name starts with it."""
        rows = [t for t in T if t["target"] == name or t["target"].startswith((name + " (", name + ":"))
                or (family and t["target"].startswith(name))]
        if not rows:
            return ""
        res = [t["result"] for t in rows]
        word = "pass" if all(r == "pass" for r in res) else (
            "**MISS**" if "MISS" in res else "; ".join(sorted(set(res))))
        return "%s: %s" % (goal or rows[0]["goal"], word)

    def num(v):
        return "%.0f" % v if v >= 100 else "%.1f" % v if v >= 10 else "%.2f" % v

    def ms3(s_, keys=("median", "p90", "p99")):
        vals = [s_.get(k) for k in keys]
        if any(v is None for v in vals):
            return "—"
        if max(vals) >= 1e9:
            return " / ".join(num(v / 1e9) for v in vals) + " s"
        return " / ".join(num(v / 1e6) for v in vals) + " ms"

    def us(v):
        return "—" if v is None else "{:,.0f} µs".format(v / 1e3)

    L = []
    L.append("Latest full run: %s, %s, %s CPUs, %s MiB, kernel %s, %s; scratch files on %s; "
             "machine CPU busy %s%% before the run (load average %s). Generated by "
             "`bench/bench.py` from [bench/results/latest.json](bench/results/latest.json) "
             "(`bench/results/readme-table.md`)." % (
                 m.get("date", "?")[:10], m.get("cpu_model"), m.get("nproc"),
                 m.get("mem_total_mib"), m.get("kernel"), m.get("os"), m.get("scratch_fs"),
                 m.get("machine_cpu_busy_pct_before_run"), " ".join(m.get("loadavg_start", []))))
    L.append("")
    L.append("| measurement | supervisor | tini-static | dumb-init | catatonit | shell loop / reference | target |")
    L.append("| --- | --- | --- | --- | --- | --- | --- |")

    def row(what, sup, peers, other, target):
        L.append("| %s | %s | %s | %s |" % (what, sup, " | ".join(peers), other) + " %s |" % target)

    st = R.get("startup", {})
    sc = st.get("contenders", {})
    if sc:
        def peer_cells(key):
            return [("%s (%.2f×)" % (us(sc[p]["overhead_median_ns"]), sc[p]["ratio_to_best_peer"])
                     if p in sc and "ratio_to_best_peer" in sc[p] else "—") for p in PEERS]
        n = st.get("rounds", 0) * st.get("runs_per_round", 0)
        for name, what in (("supervisor main", "start-up overhead (`X /bin/true` − `/bin/true`, "
                                                "median of %d)" % n),
                           ("supervisor main --done-file", "… with `--done-file` (lease + marker)"),
                           ("supervisor main --termination-log", "… with `--termination-log`")):
            c = sc.get(name)
            if not c:
                continue
            row(what, "%s (%.2f×)" % (us(c["overhead_median_ns"]), c.get("ratio_to_best_peer", 0)),
                peer_cells("overhead") if name == "supervisor main" else ["", "", ""], "—",
                verdict("start-up overhead (wall), %s" % name, "≤ best peer")
                if "termination" not in name else "reported")
    sg = R.get("signal", {}).get("contenders", {})
    if sg:
        for key, what, prefix in (
                ("handler_latency", "signal forwarding (kill → child's handler, p50)",
                 "signal forwarding (median), supervisor main"),
                ("exit_latency", "SIGTERM → X exited (p50)",
                 "SIGTERM → supervisor exited (median), supervisor main"),
                ("exit_after_child", "child exited → X exited (p50; X's own exit path)",
                 "child exited → supervisor exited (after TERM) (median), supervisor main")):
            c = sg.get("supervisor main", {}).get(key, {})
            d = sg.get("supervisor main --done-file", {}).get(key, {})
            t = sg.get("supervisor main --termination-log", {}).get(key, {})
            sup = us(c.get("median"))
            if key != "handler_latency":
                sup += "; %s with `--done-file`; %s with `--termination-log`" % (
                    us(d.get("median")), us(t.get("median")))
            row(what, sup, [us(sg.get(p, {}).get(key, {}).get("median")) for p in PEERS], "—",
                verdict(prefix))
    gt = R.get("gates", {}).get("contenders", {})
    for kind in ("tcp", "unix", "http", "file"):
        c = gt.get(Bench.gate_name(kind, "supervisor"))
        sh = gt.get(Bench.gate_name(kind, "shell loop"))
        if not c:
            continue
        row("`--wait-for %s`: ready → CMD started (p50 / p90 / p99, %d runs)"
            % (kind, c["ready_to_cmd_started"].get("n", 0)),
            ms3(c["ready_to_cmd_started"]), ["—"] * 3,
            "%s (`until …; do sleep 1; done`)" % ms3(sh["ready_to_cmd_started"]) if sh else "—",
            verdict("readiness gate %s" % kind))
    c = gt.get(GATE_CHAIN)
    if c:
        row("sidecar `--ready-when tcp` → `--ready-file` → main `--wait-for file:` (end to end)",
            ms3(c["ready_to_cmd_started"]), ["—"] * 3, "—", verdict("readiness chain"))
    pr = R.get("gates", {}).get("probe_rate", {})
    if pr and "skipped" not in pr:
        row("probes while a gate waits (connect() calls per second)",
            ", ".join("%s %.0f/s" % (k, v["supervisor"]["steady_per_s"]) for k, v in pr.items()
                      if v.get("supervisor", {}).get("steady_per_s") is not None),
            ["—"] * 3, "shell loop: 1 attempt/s", verdict("probe rate", family=True))
    mk = R.get("marker", {}).get("contenders", {})
    sh1, sh5 = mk.get("shell loop (sleep 1)"), mk.get("shell loop (sleep 5)")
    for name, what, ref in ((SUP_LEASE, "marker → sidecar exited (p50 / p90 / p99, lease held)",
                             REF_LEASE),
                            (SUP_MARKER, "… marker only (no lease file)", REF_INOTIFY),
                            ("supervisor sidecar (main vanished: lease released, no marker)",
                             "main vanished (lease released, no marker) → sidecar exited", None)):
        c = mk.get(name)
        if not c:
            continue
        other = []
        if ref and mk.get(ref):
            other.append("C waiter %s" % ms3(mk[ref]["marker_to_exit"]))
        dn = mk.get("C waiter: dnotify, exits at once (marker only)")
        if name == SUP_MARKER and dn:
            other.append("C waiter on dnotify %s" % ms3(dn["marker_to_exit"]))
        if name == SUP_LEASE and sh1 and sh5:
            other.append("shell loop %s (sleep 1), %s (sleep 5)" % (
                ms3(sh1["marker_to_exit"], ("median", "p90")), ms3(sh5["marker_to_exit"], ("median", "p90"))))
        if ref is None:
            other.append("shell loop: never")
        row(what + ", %d runs" % c["runs"], ms3(c["marker_to_exit"]), ["—"] * 3,
            "; ".join(other) or "—", verdict("marker → sidecar exited p99, %s" % name, "p99 ≤ 5 ms") +
            ("; " + verdict("marker → sidecar exited p90 vs the %s" % ref, "p90 ≤ 1.5× C waiter")
             if ref else "") if ref else verdict("marker → sidecar exited p90, %s" % name))
    for name, c in R.get("chain", {}).get("contenders", {}).items():
        row("chain stop: main's marker → sidecar A exited → sidecar B exited (p50 / p90)",
            "A %s, B %s" % (ms3(c.get("marker_to_first_exit", {}), ("median", "p90")),
                            ms3(c["marker_to_exit"], ("median", "p90"))),
            ["—"] * 3, "—", "reported")
    dt = R.get("death", {})
    for name, c in dt.get("contenders", {}).items():
        row("%s → main's CMD signalled (p50 / p90, `--requires`)" % name,
            ms3(c["to_cmd_signalled"], ("median", "p90")), ["—"] * 3,
            "without `--requires`: never (the Job's deadline)",
            verdict("sidecar death → main's CMD signalled p90, %s" % name, "p90 ≤ 10 ms"))
    idle = R.get("idle", {})
    ic = idle.get("contenders", {})
    if ic:
        sup = [c.get("wakeups") for n, c in ic.items() if n.startswith("supervisor")]
        row("idle wake-ups in %s s (all supervisor cases)" % idle.get("seconds"),
            "0" if sup and all(x == 0 for x in sup) else ", ".join(map(str, sup)),
            [str(ic.get(p, {}).get("wakeups", "—")) for p in PEERS],
            ", ".join("%s (%s)" % (ic[n].get("wakeups"), n[len("shell loop ("):-1])
                      for n in ic if n.startswith("shell loop")), verdict("idle wake-ups", family=True))
    mem = R.get("memory", {}).get("contenders", {})
    if mem:
        sup = [c["vmhwm_kib"].get("max") for n, c in mem.items() if n.startswith("supervisor")
               and c["vmhwm_kib"].get("n")]
        row("peak RSS (VmHWM)", "{:,}–{:,} KiB".format(min(sup), max(sup)) if sup else "—",
            ["{:,} KiB".format(mem["%s -- /bin/true" % p]["vmhwm_kib"]["max"])
             if mem.get("%s -- /bin/true" % p, {}).get("vmhwm_kib", {}).get("n") else "—"
             for p in PEERS], "—", verdict("peak RSS", family=True))
    sz = R.get("size", {})
    if sz.get("supervisor"):
        row("binary size (static, stripped)", "{:,} B".format(sz["supervisor"]["bytes"]),
            ["{:,} B{}".format(sz[p]["bytes"], "" if sz[p]["static"] else " (dynamic)")
             if p in sz else "—" for p in PEERS], "—", verdict("binary size", family=True))
    for key, what in (("reap", "orphans reaped per second as PID 1 (%s running orphans exit "
                                "at once, median of %s)"),
                      ("reap_zombies", "… the reaper alone (%s orphans already zombies, handed "
                                       "over at once, median of %s)")):
        rp = R.get(key, {})
        if not rp.get("contenders"):
            continue
        rc = rp["contenders"]

        def rate(n):
            v = rc.get(n, {}).get("reaped_per_s", {}).get("median")
            return "—" if v is None else "{:,.0f}".format(v)
        row(what % ("{:,}".format(rp["orphans_per_run"]), rp["reps"]), rate("supervisor main"),
            [rate(p) for p in PEERS], "bare wait() loop %s" % rate("reference: blocking wait() loop"),
            verdict("orphans reaped", family=True) if key == "reap" else "—")
    dk = R.get("dockerd", {})
    if "added_ns" in dk:
        row("delay added to a real dockerd's shutdown",
            "%.2f ms (bare IQR %.1f ms)" % (dk["added_ns"] / 1e6, dk["bare_iqr_ns"] / 1e6),
            ["—"] * 3, "—", verdict("delay added to dockerd", family=True))
    L.append("")
    plots = R.get("plots", {})
    names = {"gates.svg": "Readiness gates", "marker.svg": "Marker to exit",
             "dependencies.svg": "Sidecar death and chain stops",
             "startup-signal.svg": "Start-up and signals"}
    shown = [f for f in names if f in plots]
    if shown:
        L.append("Distributions (ECDF, log scale; dashed: shell loops, dotted: C references):")
        L.append("")
        for f in shown:
            L.append("![%s](bench/results/%s)" % (names[f], os.path.basename(plots[f])))
        L.append("")
    return "\n".join(L)


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
        self.bk = build_benchkit(self.tmp)
        self.peers = find_peers()
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
    def wrappers(self, done_dir=None, include_done=True, include_termlog=False):
        w = {"supervisor main": [self.sup, "main", "--"]}
        if include_done:
            w["supervisor main --done-file"] = [self.sup, "main", "--done-file",
                                                os.path.join(done_dir, "done%N"), "--"]
        # the Kubernetes termination message, written on the exit path into an existing, empty
        # file per run, as the kubelet's (see empty_termlogs). Not the same file for every run:
        # truncating a file that has content costs a synchronous discard on ext4 mounted with
        # -o discard (3-4 ms here), which no container start pays
        if include_termlog:
            w["supervisor main --termination-log"] = [self.sup, "main", "--termination-log",
                                                      os.path.join(done_dir, "termlog%N"), "--"]
        w.update(peer_wrappers(self.peers))
        return w

    @staticmethod
    def empty_termlogs(d, count):
        """D/termlog0..: the empty files the kubelet mounts at /dev/termination-log."""
        for i in range(count):
            open(os.path.join(d, "termlog%d" % i), "w").close()

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
            conts.update(self.wrappers(d, include_termlog=True))
            self.empty_termlogs(d, per)
            order = list(conts)
            random.shuffle(order)
            for name in order:
                xs, cpu, failed = run_spawnloop(self.bk, conts[name], per)
                cpus.setdefault(name, []).extend(cpu)
                if not xs:
                    raise RuntimeError("%s: every run timed out" % name)
                samples.setdefault(name, []).extend(xs)
                rounds_med.setdefault(name, []).append(statistics.median(xs))
                failures[name] = failures.get(name, 0) + failed
            shutil.rmtree(d, ignore_errors=True)
        base = samples["/bin/true (baseline)"]
        base_cpu = statistics.median(cpus["/bin/true (baseline)"])
        base_rounds = rounds_med["/bin/true (baseline)"]
        out = {"rounds": rounds, "runs_per_round": per, "contenders": {}}
        for name in ["/bin/true (baseline)"] + list(self.wrappers(self.tmp, include_termlog=True)):
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
        best = best_peer({k: c["overhead_median_ns"] for k, c in out["contenders"].items()})
        for name, c in out["contenders"].items():
            if tini and tini["overhead_median_ns"] > 0:
                c["ratio_to_tini"] = c["overhead_median_ns"] / tini["overhead_median_ns"]
            if best and best[1] > 0:
                c["ratio_to_best_peer"] = c["overhead_median_ns"] / best[1]
        out["best_peer"] = best[0] if best else None
        self.res["startup"] = out

    # -- 7. signal forwarding --------------------------------------------------
    def bench_signal(self):
        rounds, per = self.n(20, 4), self.n(10, 5)
        lat, exitlat, afterlat, fails = {}, {}, {}, {}
        broken = set()
        for r in range(rounds):
            d = self.mkd("signal", str(r))
            conts = {k: v for k, v in self.wrappers(d, include_termlog=True).items()
                     if k not in broken}
            order = list(conts)
            random.shuffle(order)
            self.empty_termlogs(d, per)
            for name in order:
                sd = self.mkd("signal", str(r), re.sub(r"\W+", "_", name))
                ok, failed = run_sigbench(self.bk, conts[name], per, sd)
                for handler, exit_, after in ok:
                    lat.setdefault(name, []).append(handler)
                    exitlat.setdefault(name, []).append(exit_)
                    if after >= 0:
                        afterlat.setdefault(name, []).append(after)
                fails.setdefault(name, []).extend(failed)
                if not ok:
                    broken.add(name)  # every run failed: do not spend more rounds on it
            shutil.rmtree(d, ignore_errors=True)
        out = {"signal": "SIGTERM", "rounds": rounds, "runs_per_round": per, "contenders": {}}
        for name in self.wrappers(self.tmp, include_termlog=True):
            out["contenders"][name] = {
                "handler_latency": summary(lat.get(name, [])),
                "exit_latency": summary(exitlat.get(name, [])),
                "exit_after_child": summary(afterlat.get(name, [])),
                "failures": fails.get(name, []),
                "raw_handler_latency_ns": lat.get(name, []),
                "raw_exit_latency_ns": exitlat.get(name, []),
                "raw_exit_after_child_ns": afterlat.get(name, []),
            }
        for key in ("exit_latency", "exit_after_child"):
            best = best_peer({k: c[key].get("median") for k, c in out["contenders"].items()})
            out["best_peer_" + key] = best[0] if best else None
            for c in out["contenders"].values():
                if best and best[1] and c[key].get("median") is not None:
                    c[key + "_ratio_to_best_peer"] = c[key]["median"] / best[1]
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

    def _markerbench(self, conts, rounds, settle, phase):
        """Interleaved markerbench rounds; conts: name -> (argv, lease mode, runs per round)."""
        store, broken = {}, set()
        for r in range(rounds):
            order = [k for k in conts if k not in broken]
            random.shuffle(order)
            for name in order:
                argv_t, lease, per = conts[name]
                if not per:
                    continue
                d = self.mkd(phase, str(r), re.sub(r"\W+", "_", name)[:40])
                if not run_markerbench(self.bk, argv_t, per, settle, lease, d, store, name):
                    broken.add(name)  # every run failed: do not spend more rounds on it
                shutil.rmtree(d, ignore_errors=True)
        return store

    @staticmethod
    def _marker_rows(store, names):
        out = {}
        for name in names:
            if name not in store:
                continue
            c = store[name]
            out[name] = {
                "runs": len(c["exit"]),
                "marker_to_exit": summary(c["exit"]),
                "marker_to_daemon_signaled": summary(c["daemon_signaled"]),
                "exit_codes": c["codes"],
                "daemon_alive_after_exit": c["daemon_alive"],
                "daemon_inherited_term_blocked": c.get("term_blocked", 0),
                "failures": c["failures"],
                "raw_marker_to_exit_ns": c["exit"],
            }
            if c["first_exit"]:
                out[name]["marker_to_first_exit"] = summary(c["first_exit"])
                out[name]["raw_marker_to_first_exit_ns"] = c["first_exit"]
        return out

    # settle between the daemon's readiness and the marker: random, so that a polling
    # implementation cannot hide behind a fixed phase, and long enough that the start-up of the
    # sidecar (threads, watches being retired) is over, as it is in a real pod
    def marker_settle(self):
        return (20000, 100000) if not self.quick else (5000, 55000)

    def bench_marker(self):
        rounds = self.n(10, 2)
        per_sup, per_ref, per_naive, per_vanish = self.n(20, 20), self.n(10, 10), self.n(3, 5), \
            self.n(5, 5)
        settle = self.marker_settle()
        child = [self.bk, "child", "%D/ready", "%D/stopped"]
        conts = {
            SUP_LEASE: (self.sidecar_argv(), 1, per_sup),
            SUP_MARKER: (self.sidecar_argv(), 0, per_sup),
            "supervisor sidecar (main vanished: lease released, no marker)":
                (self.sidecar_argv(), 2, per_vanish),
            REF_LEASE: ([self.bk, "waiter", "lease", "%D/done", "--"] + child, 1, per_ref),
            REF_INOTIFY: ([self.bk, "waiter", "inotify-held", "%D/done", "--"] + child, 0, per_ref),
            "C waiter: inotify, exits holding its watch (marker only)":
                ([self.bk, "waiter", "inotify", "%D/done", "--"] + child, 0, per_naive),
            "C waiter: dnotify, exits at once (marker only)":
                ([self.bk, "waiter", "dnotify", "%D/done", "--"] + child, 0, per_ref),
        }
        store = self._markerbench(conts, rounds, settle, "marker")
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
                parse_marker(so, store, name)
            except subprocess.TimeoutExpired:
                kill_proc(p)
                store.setdefault(name, new_marker_store())["failures"].append("harness-timeout")
            TRACKED.discard(p)
        self.res["marker"] = {"settle_before_marker_us": list(settle),
                              "contenders": self._marker_rows(store, list(conts) + list(shells))}

    # -- 2b. chain stops -----------------------------------------------------------
    def bench_chain(self):
        """main -> sidecar A (--done-file) -> sidecar B (--wait-file A's marker)."""
        rounds, per = self.n(10, 2), self.n(5, 5)
        settle = self.marker_settle()
        b = [self.sup, "sidecar", "--wait-file", "%D/a.done", "--",
             self.bk, "child", "%D/ready", "%D/stopped"]
        a = [self.sup, "sidecar", "--wait-file", "%D/done", "--done-file", "%D/a.done", "--",
             self.bk, "child", "%D/ready2"]
        name = "main's marker -> sidecar A (--done-file) -> sidecar B"
        store = self._markerbench({name: (b + ["++"] + a, 1, per)}, rounds, settle, "chain")
        self.res["chain"] = {"settle_before_marker_us": list(settle),
                             "contenders": self._marker_rows(store, [name])}

    # -- 9. sidecar death -> main's command signalled ---------------------------------
    def bench_death(self):
        rounds, per = self.n(10, 2), self.n(10, 10)
        sidecar = [self.sup, "sidecar", "--done-file", "%D/side.done", "--",
                   self.bk, "child", "%D/dready"]
        cmd = ["--", self.bk, "child", "%D/cready", "%D/cstopped"]
        main_req = [self.sup, "main", "--requires", "%D/side.done"] + cmd
        conts = {DEATH_DAEMON: ("daemon", main_req), DEATH_SIDECAR: ("sidecar", main_req)}
        data, fails, exits, codes = {}, {}, {}, {}
        for r in range(rounds):
            order = list(conts)
            random.shuffle(order)
            for name in order:
                mode, main = conts[name]
                d = self.mkd("death", str(r), mode)
                argv = ([self.bk, "deathbench", str(per), "20000", "70000", mode, "5000", d, "--"]
                        + sidecar + ["++"] + main)
                q = subprocess.run(argv, capture_output=True, text=True, timeout=per * 30 + 30)
                for line in q.stdout.splitlines():
                    f = line.split()
                    if f and f[0] == "ok" and int(f[1]) >= 0:
                        data.setdefault(name, []).append(int(f[1]))
                        exits.setdefault(name, []).append(int(f[2]))
                        codes.setdefault(name, {}).setdefault(f[3], 0)
                        codes[name][f[3]] += 1
                    elif f:
                        fails.setdefault(name, []).append(" ".join(f))
                shutil.rmtree(d, ignore_errors=True)
        # the same failures without --requires: nothing tells the main; it runs on
        window = self.n(2000, 1000)
        without, procs = {}, []
        for mode, label in (("daemon", DEATH_DAEMON), ("sidecar", DEATH_SIDECAR)):
            d = self.mkd("death", "without", mode)
            argv = ([self.bk, "deathbench", "1", "20000", "70000", mode, str(window), d, "--"]
                    + sidecar + ["++", self.sup, "main"] + cmd)
            procs.append((label, popen(argv, stdout=subprocess.PIPE, text=True)))
        for label, p in procs:
            try:
                so, _ = p.communicate(timeout=window / 1000 + 30)
            except subprocess.TimeoutExpired:
                kill_proc(p)
                so = "harness-timeout"
            TRACKED.discard(p)
            without[label] = so.strip()
        out = {"window_ms_without_requires": window, "contenders": {}, "without_requires": without}
        for name in conts:
            out["contenders"][name] = {
                "to_cmd_signalled": summary(data.get(name, [])),
                "to_main_exited": summary(exits.get(name, [])),
                "main_exit_codes": codes.get(name, {}),
                "failures": fails.get(name, []),
                "raw_to_cmd_signalled_ns": data.get(name, []),
            }
        self.res["death"] = out

    # -- 10. readiness gates ---------------------------------------------------------
    # kind -> (the supervisor's target, the shell loop's test): the shell loops are what
    # people write in a script or an init container instead
    GATE_KINDS = {
        "tcp": ("tcp://127.0.0.1:%P", "nc -z 127.0.0.1 %P"),
        "unix": ("unix:%D/sock", "nc -zU %D/sock"),
        "http": ("http://127.0.0.1:%P/ready", "curl -fso /dev/null http://127.0.0.1:%P/ready"),
        "file": ("file:%D/ready.flag", "test -e %D/ready.flag"),
    }

    @staticmethod
    def gate_name(kind, who):
        if who == "supervisor":
            return "supervisor main --wait-for %s" % ("%s://" % kind if kind in ("tcp", "http")
                                                       else kind + ":")
        return "shell loop (%s, sleep 1)" % kind

    def gate_contenders(self):
        """name -> (kind, argv, runs, delay range in µs)."""
        stamp = ["--", self.bk, "stamp", "%D/started"]
        net_delay = (200000, 1200000)  # one shell-loop period, so its phase is sampled evenly
        sup_n, chain_n, shell_n = self.n(60, 15), self.n(40, 10), self.n(16, 4)
        c = {}
        for kind, (target, test) in self.GATE_KINDS.items():
            shell = ["sh", "-c", "until %s; do sleep 1; done; exec %s stamp %%D/started"
                     % (test, self.bk)]
            c[self.gate_name(kind, "shell loop")] = (kind, shell, shell_n, net_delay)
            if kind == "file":
                # inotify, no polling: the delay only has to let the supervisor start
                c[self.gate_name(kind, "supervisor")] = (
                    kind, [self.sup, "main", "--wait-for", target] + stamp, self.n(100, 30),
                    (20000, 220000))
            else:
                c[self.gate_name(kind, "supervisor")] = (
                    kind, [self.sup, "main", "--wait-for", target] + stamp, sup_n, net_delay)
        c[GATE_CHAIN] = ("tcp", [self.sup, "main", "--wait-for", "file:%D/side.ready"] + stamp
                         + ["++", self.sup, "sidecar", "--ready-when", "tcp://127.0.0.1:%P",
                            "--ready-file", "%D/side.ready", "--", self.bk, "child", "%D/dready"],
                         chain_n, net_delay)
        return c

    def _gate_job(self, name, kind, argv, count, delay, d):
        netns = "1" if kind in ("tcp", "http", "unix") else "0"
        q = subprocess.run([self.bk, "gatebench", str(count), str(delay[0]), str(delay[1]), kind,
                            netns, d, "--"] + argv,
                           capture_output=True, text=True, timeout=count * 20 + 30)
        rows = []
        for line in q.stdout.splitlines():
            f = line.split()
            if f and f[0] == "ok":
                rows.append({"lat": int(f[1]), "connects": int(f[2]), "wait": int(f[3]),
                             "code": int(f[4])})
            elif f:
                rows.append({"fail": " ".join(f[1:])})
        if q.returncode != 0 and not rows:
            rows.append({"fail": "benchkit exit %d: %s" % (q.returncode, q.stderr.strip()[:200])})
        shutil.rmtree(d, ignore_errors=True)
        return name, rows

    def bench_gates(self):
        import concurrent.futures

        conts = self.gate_contenders()
        # network gates wait hundreds of ms per run, almost all of it asleep: run them in
        # concurrent lanes (each in a network namespace of its own, so its ports and TCP counters
        # are its own), chunked and shuffled so that every contender meets the same neighbours
        jobs, k = [], 0
        for name, (kind, argv, runs, delay) in conts.items():
            if name == GATE_FILE:
                continue
            chunks = 4 if runs >= 8 else 1
            for i in range(chunks):
                n = runs // chunks + (1 if i < runs % chunks else 0)
                if n:
                    k += 1
                    jobs.append((name, kind, argv, n, delay, self.mkd("gate", "j%d" % k)))
        random.shuffle(jobs)
        rows = {}
        with concurrent.futures.ThreadPoolExecutor(max_workers=8) as ex:
            for name, got in ex.map(lambda j: self._gate_job(*j), jobs):
                rows.setdefault(name, []).extend(got)
        # the file gate measures inotify -> spawn, a few ms: alone, so no neighbour's work is in it
        kind, argv, runs, delay = conts[GATE_FILE]
        rows.setdefault(GATE_FILE, []).extend(
            self._gate_job(GATE_FILE, kind, argv, runs, delay, self.mkd("gate", "file"))[1])
        out = {"contenders": {}, "probe_rate": self.probe_rate()}
        for name, (kind, argv, runs, delay) in conts.items():
            ok = [x for x in rows.get(name, []) if "lat" in x]
            rate = [x["connects"] / (x["wait"] / 1e9) for x in ok
                    if kind in ("tcp", "http") and x["connects"] >= 0 and x["wait"] > 0]
            out["contenders"][name] = {
                "kind": kind,
                "delay_us": list(delay),
                "ready_to_cmd_started": summary([x["lat"] for x in ok]),
                "connects_per_s_per_run": summary(rate),
                "exit_codes": sorted({x["code"] for x in ok}),
                "failures": [x["fail"] for x in rows.get(name, []) if "fail" in x],
                "raw_ready_to_cmd_started_ns": [x["lat"] for x in ok],
            }
        self.res["gates"] = out

    def probe_rate(self):
        """connect() calls per second while a gate waits on a target that never comes, counted
        by the kernel's syscall tracepoint (perf stat -I: per-second counts)."""
        if not self.perf_ok:
            return {"skipped": "perf not available"}
        secs = self.n(4, 3)
        procs, out = [], {}
        for kind, target, shell in (
                ("tcp", "tcp://127.0.0.1:%d", "nc -z 127.0.0.1 %d"),
                ("unix", "unix:%s/none.sock", "nc -zU %s/none.sock"),
                ("http", "http://127.0.0.1:%d/ready", "curl -fso /dev/null http://127.0.0.1:%d/ready")):
            d = self.mkd("probe", kind)
            arg = d if kind == "unix" else 1  # port 1: nothing listens there
            for who, cmd in (("supervisor", [self.sup, "main", "--wait-for", target % arg,
                                             "--wait-timeout", "%ds" % secs, "--", "true"]),
                             ("shell loop", ["timeout", str(secs), "sh", "-c",
                                             "until %s; do sleep 1; done" % (shell % arg)])):
                f = os.path.join(d, who.replace(" ", "_") + ".csv")
                p = popen(["perf", "stat", "-I", "1000", "-x,", "-o", f, "-e",
                           "syscalls:sys_enter_connect", "--"] + cmd,
                          stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
                procs.append((kind, who, f, p))
        for kind, who, f, p in procs:
            if wait_exit(p, secs + 15) is None:
                kill_proc(p)
                out.setdefault(kind, {})[who] = {"error": "timeout"}
                continue
            counts = []
            try:
                with open(f) as fh:
                    for line in fh:
                        parts = line.strip().split(",")
                        if len(parts) > 3 and "sys_enter_connect" in parts[3]:
                            counts.append(int(float(parts[1])) if parts[1].replace(".", "").isdigit() else 0)
            except OSError as e:
                out.setdefault(kind, {})[who] = {"error": repr(e)}
                continue
            counts = counts[:secs]  # perf prints a last, partial interval at the exit
            steady = counts[1:] if len(counts) > 1 else counts
            out.setdefault(kind, {})[who] = {
                "per_second": counts,
                "first_second": counts[0] if counts else None,
                "steady_per_s": statistics.fmean(steady) if steady else None,
            }
        return out

    # -- 4. memory (VmHWM at exit) ---------------------------------------------
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
                    data.setdefault(name, []).append(run_hwm(self.bk, mk(d), stop, d))
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
        for mode, key in (("reap", "reap"), ("zombies", "reap_zombies")):
            data = {}
            for r in range(reps):
                order = list(conts)
                random.shuffle(order)
                for name in order:
                    resf = os.path.join(self.mkd("reap"), "%s%d_%s" % (
                        mode, r, re.sub(r"\W+", "_", name)))
                    data.setdefault(name, []).append(run_reap(self.bk, conts[name], n, resf, mode))
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
            self.res[key] = out

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
            lease="done.lease")
        add("supervisor main --done-file (CMD running)",
            lambda d: [self.sup, "main", "--done-file", d + "/done", "--"] + child(d), "term")
        add("supervisor main --requires (CMD running, sidecar's lease held)",
            lambda d: [self.sup, "main", "--requires", d + "/side.done", "--"] + child(d), "term",
            lease="side.done.lease")
        for name, w in self.wrappers(self.tmp, include_done=False).items():
            if not name.startswith("supervisor"):
                add(name, lambda d, w=w: w + child(d), "term")
        for period in (5, 1):
            add("shell loop (sleep %d)" % period,
                lambda d, period=period: [a.replace("%D", d)
                                          for a in self.shell_loop_argv(self.bk, period)], "marker")
        try:
            for name, c in cont.items():
                if c["lease"]:  # like a running writer: an exclusive flock on <done>.lease
                    c["lease_f"] = open(os.path.join(c["dir"], c["lease"]), "w")
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

        def ratio(a, b):
            return None if a is None or not b else a / b

        # -- start-up (issue 17 goal 3: ≤ 1.0× the best peer, with --done-file too)
        stp = R.get("startup", {})
        st = stp.get("contenders", {})
        bp = stp.get("best_peer")
        best = st.get(bp, {}).get("overhead_median_ns") if bp else None
        for name in ("supervisor main", "supervisor main --done-file"):
            m = st.get(name, {}).get("overhead_median_ns")
            mc = st.get(name, {}).get("cpu_overhead_median_ns")
            r = ratio(m, best)
            add("start-up overhead (wall), %s" % name,
                "≤ 1.0× the best peer (%s %s)" % (bp, fmt_us(best)),
                "%s (%s×; CPU %s)" % (fmt_us(m), "—" if r is None else "%.2f" % r, fmt_us(mc)),
                None if r is None else r <= 1.0)
        tl, plain = (st.get("supervisor main --termination-log", {}).get("overhead_median_ns"),
                     st.get("supervisor main", {}).get("overhead_median_ns"))
        if tl is not None and plain is not None:
            add("termination message's cost at start-up (--termination-log − plain, medians)",
                "reported", fmt_us(tl - plain), None)
        # -- SIGTERM -> supervisor exited (issue 17 goal 3)
        sgp = R.get("signal", {})
        sg = sgp.get("contenders", {})
        for key, what in (("exit_latency", "SIGTERM → supervisor exited"),
                          ("exit_after_child", "child exited → supervisor exited (after TERM)")):
            bp = sgp.get("best_peer_" + key)
            if not bp:
                continue
            best = sg[bp][key].get("median")
            for name in ("supervisor main", "supervisor main --done-file"):
                c = sg.get(name)
                if not c or c[key].get("median") is None:
                    continue
                m = c[key]["median"]
                add("%s (median), %s" % (what, name),
                    "≤ 1.0× the best peer (%s %s)" % (bp, fmt_us(best)),
                    "%s (%.2f×)" % (fmt_us(m), m / best), m <= best and not c["failures"])
        tl, plain = (sg.get("supervisor main --termination-log", {}).get("exit_latency", {}).get("median"),
                     sg.get("supervisor main", {}).get("exit_latency", {}).get("median"))
        if tl is not None and plain is not None:
            add("termination message's cost on the exit path (SIGTERM → exit, --termination-log − "
                "plain, medians)", "reported", fmt_us(tl - plain), None)
        for name in ("supervisor main", "supervisor main --done-file"):
            c = sg.get(name)
            if c:
                m = c["handler_latency"].get("median")
                add("signal forwarding (median), %s" % name, "≤ 0.2 ms", fmt_us(m),
                    None if m is None else (m <= 2e5 and not c["failures"]))
        # -- marker -> sidecar exited (issue 17 goal 2)
        mk = R.get("marker", {}).get("contenders", {})
        for name, ref in ((SUP_LEASE, REF_LEASE), (SUP_MARKER, REF_INOTIFY)):
            c = mk.get(name)
            if not c:
                continue
            bad = bool(c["daemon_alive_after_exit"] or c["failures"])
            s_ = c["marker_to_exit"]
            p99 = s_.get("p99")
            add("marker → sidecar exited p99, %s (%d runs)" % (name, c["runs"]), "≤ 5 ms",
                fmt_ms(p99), None if p99 is None else (p99 <= 5e6 and not bad))
            rp90 = mk.get(ref, {}).get("marker_to_exit", {}).get("p90")
            r = ratio(s_.get("p90"), rp90)
            add("marker → sidecar exited p90 vs the %s" % ref,
                "≤ 1.5× (%s)" % fmt_ms(rp90),
                "%s (%s×)" % (fmt_ms(s_.get("p90")), "—" if r is None else "%.2f" % r),
                None if r is None else (r <= 1.5 and not bad))
        for name, c in mk.items():
            if name.startswith("supervisor") and name not in (SUP_LEASE, SUP_MARKER):
                p90 = c["marker_to_exit"].get("p90")
                bad = c["daemon_alive_after_exit"] or c["failures"]
                add("marker → sidecar exited p90, %s" % name, "≤ 2 ms", fmt_ms(p90),
                    None if p90 is None else (p90 <= 2e6 and not bad))
        for name, c in R.get("chain", {}).get("contenders", {}).items():
            s_, a_ = c["marker_to_exit"], c.get("marker_to_first_exit", {})
            add("chain stop: %s exited (p50 / p90)" % name, "reported",
                "B %s / %s; A %s / %s" % (fmt_ms(s_.get("median")), fmt_ms(s_.get("p90")),
                                          fmt_ms(a_.get("median")), fmt_ms(a_.get("p90"))),
                False if c["failures"] or c["daemon_alive_after_exit"] else None)
        # -- sidecar death -> main's CMD signalled (issue 14)
        dt = R.get("death", {})
        for name, c in dt.get("contenders", {}).items():
            s_ = c["to_cmd_signalled"]
            p90 = s_.get("p90")
            add("sidecar death → main's CMD signalled p90, %s (%d runs)" % (name, s_.get("n", 0)),
                "≤ 10 ms", "%s (p50 %s)" % (fmt_ms(p90), fmt_ms(s_.get("median"))),
                None if p90 is None else (p90 <= 10e6 and not c["failures"]
                                          and set(c["main_exit_codes"]) == {"122"}))
        if dt.get("without_requires"):
            w = dt["without_requires"]
            unnoticed = all(v.startswith("unnoticed") and "cmd-running" in v for v in w.values())
            add("the same deaths without --requires", "never noticed: CMD runs on to the job's deadline",
                "CMD still running %d ms after each death" % dt["window_ms_without_requires"]
                if unnoticed else "; ".join("%s: %s" % kv for kv in w.items()), None)
        # -- readiness gates (issue 17 goal 1)
        gt = R.get("gates", {}).get("contenders", {})
        for kind in ("tcp", "unix", "http"):
            sup, sh = gt.get(self.gate_name(kind, "supervisor")), gt.get(self.gate_name(kind, "shell loop"))
            if not sup:
                continue
            p90 = sup["ready_to_cmd_started"].get("p90")
            sp90 = (sh or {}).get("ready_to_cmd_started", {}).get("p90")
            r = ratio(sp90, p90)
            add("readiness gate %s: listening → CMD started p90 (%d runs)"
                % (kind, sup["ready_to_cmd_started"].get("n", 0)),
                "≤ 100 ms and ≥ 8× better than the shell loop",
                "%s (shell loop %s: %s×)" % (fmt_ms(p90), fmt_ms(sp90), "—" if r is None else "%.1f" % r),
                None if p90 is None or r is None else (p90 <= 100e6 and r >= 8 and not sup["failures"]))
        c = gt.get(GATE_FILE)
        if c:
            p90 = c["ready_to_cmd_started"].get("p90")
            add("readiness gate file: renamed in → CMD started p90 (%d runs)"
                % c["ready_to_cmd_started"].get("n", 0), "≤ 4 ms",
                "%s (p99 %s)" % (fmt_ms(p90), fmt_ms(c["ready_to_cmd_started"].get("p99"))),
                None if p90 is None else (p90 <= 4e6 and not c["failures"]))
        c = gt.get(GATE_CHAIN)
        if c:
            p90 = c["ready_to_cmd_started"].get("p90")
            add("readiness chain: daemon listening → sidecar's ready file → main's CMD started p90",
                "≤ 100 ms", fmt_ms(p90), None if p90 is None else (p90 <= 100e6 and not c["failures"]))
        pr = R.get("gates", {}).get("probe_rate", {})
        if pr and "skipped" not in pr:
            got = {k: v.get("supervisor", {}).get("steady_per_s") for k, v in pr.items()}
            first = {k: v.get("supervisor", {}).get("first_second") for k, v in pr.items()}
            if all(x is not None for x in got.values()):
                add("probe rate while a gate waits (connect() calls/s after the first second)",
                    "bounded, stated: ≤ 10/s",
                    ", ".join("%s %.1f/s (first second %s)" % (k, v, first[k]) for k, v in got.items()),
                    all(v <= 10.5 for v in got.values()))
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
        dk = R.get("dockerd", {})
        if "added_ns" in dk:
            add("delay added to dockerd shutdown (median sidecar − median bare)",
                "not measurable (≤ IQR of bare, %s)" % fmt_ms(dk["bare_iqr_ns"]),
                fmt_ms(dk["added_ns"]), dk["added_ns"] <= max(dk["bare_iqr_ns"], 0))
        R["targets"] = t

    # -- report ----------------------------------------------------------------------
    @staticmethod
    def _marker_table(L, sec, first=False):
        extra = " A exited p50 | A exited p90 |" if first else ""
        L.append("| contender | runs | p50 | p90 | p99 | max | daemon signaled p50 |%s daemon alive after exit | failures |" % extra)
        L.append("|---|---|---|---|---|---|---|%s---|---|" % ("---|---|" if first else ""))
        for name, c in sec["contenders"].items():
            s_ = c["marker_to_exit"]
            fe = c.get("marker_to_first_exit", {})
            L.append("| %s | %d | %s | %s | %s | %s | %s |%s %d | %s |" % (
                name, c["runs"], fmt_ms(s_.get("median")), fmt_ms(s_.get("p90")),
                fmt_ms(s_.get("p99")), fmt_ms(s_.get("max")),
                fmt_ms(c["marker_to_daemon_signaled"].get("median")),
                " %s | %s |" % (fmt_ms(fe.get("median")), fmt_ms(fe.get("p90"))) if first else "",
                c["daemon_alive_after_exit"], len(c["failures"]) or "0"))
        L.append("")

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
        # the latency phases; the idle, dockerd and reap phases are seconds-scale or the bench's own
        busy = [l.get("machine_cpu_busy_pct") or 0 for k, l in R.get("load", {}).items()
                if k in ("startup", "signal", "marker", "chain", "death", "gates")]
        if m["machine_cpu_busy_pct_before_run"] > 50 or (busy and max(busy) > 90):
            L.append("- **Loaded machine**: others kept the CPUs busy (%s%% before the run, up to "
                     "%s%% during a latency phase): latencies include their run-queue delays, tails most "
                     "of all; compare only with runs under similar load." % (
                         m["machine_cpu_busy_pct_before_run"], max(busy) if busy else "?"))
        L.append("- supervisor: `%s` (%s; %s)" % (m["supervisor_bin"], " ".join(m["supervisor_version"]) or "?",
                                              m["supervisor_source"] or "binary given"))
        L.append("- Peers: " + ", ".join("%s %s" % (k, v["version"]) for k, v in m["peers"].items()))
        L.append("- Command: `%s`; wall time %s s" % (m.get("command", "bench/run.sh"), m.get("wall_s")))
        L.append("- Scratch directory (markers, leases, sockets): %s on %s" % (m["scratch_dir"], m["scratch_fs"]))
        plots = R.get("plots", {})
        if plots.get("skipped"):
            L.append("- Plots: skipped (%s)" % plots["skipped"])
        elif plots:
            L.append("- Plots: " + ", ".join("[%s](%s)" % (k, os.path.basename(v))
                                             for k, v in plots.items()))
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
            L.append("| contender | median wall | overhead | per-round overhead p10–p90 | ratio to tini-static | ratio to the best peer (%s) | CPU overhead | non-zero exits |" % st.get("best_peer"))
            L.append("|---|---|---|---|---|---|---|---|")
            for name, c in st["contenders"].items():
                pr = c["overhead_per_round"]
                L.append("| %s | %s | %s | %s – %s | %s | %s | %s | %d |" % (
                    name, fmt_us(c["wall"]["median"]), fmt_us(c["overhead_median_ns"]),
                    fmt_us(pr["p10"]), fmt_us(pr["p90"]),
                    "%.2f" % c["ratio_to_tini"] if "ratio_to_tini" in c else "—",
                    "%.2f" % c["ratio_to_best_peer"] if "ratio_to_best_peer" in c else "—",
                    fmt_us(c["cpu_overhead_median_ns"]), c["nonzero_exits"]))
            L.append("")

        mk = R.get("marker")
        if mk:
            L.append("## 2. Marker-to-exit latency (marker renamed into place → sidecar process exited)\n")
            L.append("Random settle %d–%d ms between daemon ready and marker. `daemon signaled` = "
                     "marker → the daemon's SIGTERM handler ran. Shell-loop samples run concurrently "
                     "(they only sleep) and are fewer.\n" % (mk["settle_before_marker_us"][0] // 1000,
                                                              mk["settle_before_marker_us"][1] // 1000))
            L.append("The C waiters are the reference: the least a sidecar can do on the same "
                     "mechanism (block in flock on the lease, or read inotify events of the marker's "
                     "directory), then SIGTERM the daemon's group, reap it and exit. The one that "
                     "exits holding its watch shows the kernel's cost of destroying an inotify "
                     "instance on the exit path (an SRCU grace period); the other hands its "
                     "instance to a holder process so its exit does not pay it (which would not "
                     "help a PID 1: its container ends only when the holder has). The dnotify "
                     "waiter gets the same events through `fcntl(F_NOTIFY)` on the directory, "
                     "whose marks belong to a group that is never destroyed.\n")
            self._marker_table(L, mk)

        ch = R.get("chain")
        if ch:
            L.append("## 2b. Chain stops (main's marker → sidecar A, `--done-file A` → sidecar B, "
                     "`--wait-file A`)\n")
            L.append("The harness plays the main (marker renamed into place, then its lease "
                     "released). Times from the main's marker; `A exited` is the first sidecar.\n")
            self._marker_table(L, ch, first=True)

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
            L.append("`child exited → X exited`: from the child's last instruction before `_exit` "
                     "(its handler records the time) to X's exit: X's own work on the exit path "
                     "(reaping, marker, termination message, logging, exit).\n")
            L.append("| contender | runs | handler p50 | p90 | p99 | SIGTERM → X exited p50 | p90 | child exited → X exited p50 | p90 | failures |")
            L.append("|---|---|---|---|---|---|---|---|---|---|")
            for name, c in sg["contenders"].items():
                h, e, a = c["handler_latency"], c["exit_latency"], c.get("exit_after_child", {})
                L.append("| %s | %d | %s | %s | %s | %s | %s | %s | %s | %s |" % (
                    name, h.get("n", 0), fmt_us(h.get("median")), fmt_us(h.get("p90")),
                    fmt_us(h.get("p99")), fmt_us(e.get("median")), fmt_us(e.get("p90")),
                    fmt_us(a.get("median")), fmt_us(a.get("p90")), len(c["failures"]) or "0"))
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

        dt = R.get("death")
        if dt:
            L.append("## 9. Sidecar death → the main's command signalled (`main --requires`)\n")
            L.append("`supervisor sidecar --done-file D/side.done -- benchkit child` and `supervisor "
                     "main --requires D/side.done -- benchkit child`; after a random 20–70 ms, "
                     "SIGKILL of the daemon (the sidecar writes its marker) or of the sidecar "
                     "supervisor itself (its lease is released, no marker). Time until the main's "
                     "command's SIGTERM handler ran, and until the main exited.\n")
            L.append("| failure | runs | CMD signalled p50 | p90 | p99 | max | main exited p50 | main's exit codes | failures |")
            L.append("|---|---|---|---|---|---|---|---|---|")
            for name, c in dt["contenders"].items():
                s_ = c["to_cmd_signalled"]
                L.append("| %s | %d | %s | %s | %s | %s | %s | %s | %s |" % (
                    name, s_.get("n", 0), fmt_ms(s_.get("median")), fmt_ms(s_.get("p90")),
                    fmt_ms(s_.get("p99")), fmt_ms(s_.get("max")),
                    fmt_ms(c["to_main_exited"].get("median")),
                    ", ".join("%s×%d" % kv for kv in sorted(c["main_exit_codes"].items())) or "—",
                    len(c["failures"]) or "0"))
            L.append("\nWithout `--requires` (same two failures, one run each): %s. Nothing "
                     "else tells the main, so its command runs until the Job's own deadline "
                     "(`activeDeadlineSeconds`) or forever.\n" % "; ".join(
                         "%s: `%s`" % kv for kv in dt.get("without_requires", {}).items()))

        gt = R.get("gates")
        if gt:
            L.append("## 10. Readiness gates (the dependency ready → CMD started)\n")
            L.append("The contender starts; after a random delay the harness makes the target "
                     "ready (starts listening on 127.0.0.1:PORT or a unix socket, answers HTTP "
                     "200, or renames the file into place); CMD (`benchkit stamp`) records when it "
                     "started. Network lanes run concurrently, each in a network namespace of its "
                     "own; the file gate runs alone. `connects/s` is the lane's TCP ActiveOpens "
                     "counter over the wait, per run (tcp, http).\n")
            L.append("| contender | runs | delay | p50 | p90 | p99 | max | connects/s (median per run) | failures |")
            L.append("|---|---|---|---|---|---|---|---|---|")
            for name, c in gt["contenders"].items():
                s_ = c["ready_to_cmd_started"]
                cr = c["connects_per_s_per_run"]
                L.append("| %s | %d | %d–%d ms | %s | %s | %s | %s | %s | %s |" % (
                    name, s_.get("n", 0), c["delay_us"][0] // 1000, c["delay_us"][1] // 1000,
                    fmt_ms(s_.get("median")), fmt_ms(s_.get("p90")), fmt_ms(s_.get("p99")),
                    fmt_ms(s_.get("max")), "%.1f" % cr["median"] if cr.get("n") else "—",
                    len(c["failures"]) or "0"))
            pr = gt.get("probe_rate", {})
            if pr.get("skipped"):
                L.append("\nProbe rate: skipped (%s).\n" % pr["skipped"])
            elif pr:
                L.append("\nProbe rate while waiting on a target that never becomes ready: "
                         "`connect()` calls counted by the kernel's `syscalls:sys_enter_connect` "
                         "tracepoint (`perf stat -I 1000`), per second of the wait.\n")
                L.append("| target | supervisor: per second | steady (after the first second) | shell loop: per second |")
                L.append("|---|---|---|---|")
                for kind, v in pr.items():
                    sup, sh = v.get("supervisor", {}), v.get("shell loop", {})
                    L.append("| %s | %s | %s | %s |" % (
                        kind, " ".join(map(str, sup.get("per_second", []))) or sup.get("error", "—"),
                        "%.1f/s" % sup["steady_per_s"] if sup.get("steady_per_s") is not None else "—",
                        " ".join(map(str, sh.get("per_second", []))) or sh.get("error", "—")))
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
                  ("chain", self.bench_chain), ("death", self.bench_death),
                  ("gates", self.bench_gates),
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
                    "marker,chain,death,gates,memory,reap,idle,dockerd")
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
        b.targets()
        b.res["plots"] = write_plots(b.res, a.out, plot_prefix(a.name))
        write_outputs(b, a, print_md=False)
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
    t = time.monotonic()
    b.res["plots"] = write_plots(b.res, a.out, plot_prefix(a.name))
    log("plots: %s (%.1f s)" % (", ".join(b.res["plots"]), time.monotonic() - t))
    write_outputs(b, a, print_md=True)


def plot_prefix(name):
    """latest -> gates.svg ...; any other run name -> NAME-gates.svg (never overwrites latest's)."""
    return "" if name == "latest" else name + "-"


def write_outputs(b, a, print_md):
    md = b.markdown()
    outs = [("%s.json" % a.name, json.dumps(b.res, indent=1, sort_keys=False)),
            ("%s.md" % a.name, md),
            ("%sreadme-table.md" % plot_prefix(a.name), readme_table(b.res))]
    for fname, text in outs:
        path = os.path.join(a.out, fname)
        with open(path + ".tmp", "w") as f:
            f.write(text + "\n")
        os.rename(path + ".tmp", path)
    if print_md:
        print(md)
    log("wrote %s" % ", ".join(os.path.join(a.out, f) for f, _ in outs))


if __name__ == "__main__":
    main()
