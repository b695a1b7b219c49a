#!/usr/bin/env python3
"""Two supervisor binaries side by side, in one interleaved run: the rows that must not regress
when the code is reshaped (start-up, SIGTERM-to-exit, marker-to-exit, idle wake-ups, peak RSS,
size).

    bench/before-after.py OLD NEW [--rounds N] [--out FILE]

It reuses bench/benchkit.c (compiled into a scratch directory) and the methods of docs/bench.md:
every round runs both binaries in a shuffled order, so a drift of the machine's load hits both
alike. Run as root. Writes a Markdown table (default bench/results/before-after.md).
"""
import argparse
import os
import random
import shutil
import statistics
import subprocess
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))


def pct(xs, p):
    xs = sorted(xs)
    return xs[min(len(xs) - 1, int(round(p / 100 * (len(xs) - 1))))]


def ms(ns):
    return "%.3f ms" % (ns / 1e6)


def spawnloop(bk, argv, runs):
    q = subprocess.run([bk, "spawnloop", str(runs), "10000", "--"] + argv + ["/bin/true"],
                       capture_output=True, text=True, timeout=runs * 12 + 30)
    return [int(l.split()[0]) for l in q.stdout.splitlines() if l.split()[:1] and l.split()[0].isdigit()]


def markerbench(bk, sup, lease, runs, scratch):
    d = tempfile.mkdtemp(dir=scratch)
    argv = [bk, "markerbench", str(runs), "20000", "100000", "10000", str(lease), d, "--",
            sup, "sidecar", "--wait-file", "%D/done", "--", bk, "child", "%D/ready", "%D/stopped"]
    q = subprocess.run(argv, capture_output=True, text=True, timeout=runs * 25 + 30)
    shutil.rmtree(d, ignore_errors=True)
    out = []
    for line in q.stdout.splitlines():
        f = line.split()
        if f[:1] == ["ok"] and len(f) > 1 and f[1].isdigit():
            out.append(int(f[1]))
    return out


def sigbench(bk, argv, runs, scratch):
    """SIGTERM -> the supervisor exited (ns) for each run of `benchkit sigbench` (docs/bench.md,
    signal forwarding); %D in argv is a scratch directory of its own."""
    d = tempfile.mkdtemp(dir=scratch)
    argv = [a.replace("%D", d) for a in argv]
    q = subprocess.run([bk, "sigbench", str(runs), "1000", "5000", d, "--"] + argv
                       + [bk, "child", "%R", "%O"], capture_output=True, text=True,
                       timeout=runs * 12 + 30)
    shutil.rmtree(d, ignore_errors=True)
    return [int(f[2]) for f in (line.split() for line in q.stdout.splitlines())
            if f[:1] == ["ok"] and len(f) > 2]


def hwm(bk, argv):
    """VmHWM (KiB) at the exit-stop, from `benchkit hwm`'s last line: `… EXIT key=value…`."""
    q = subprocess.run([bk, "hwm", "--"] + argv, capture_output=True, text=True, timeout=60)
    lines = q.stdout.strip().splitlines()
    if not lines:
        return None
    fields = dict(x.split("=") for x in lines[-1].split()[2:] if "=" in x)
    return int(fields["VmHWM"]) if "VmHWM" in fields else None


def wakeups(pid):
    total = 0
    for t in os.listdir("/proc/%d/task" % pid):
        for line in open("/proc/%d/task/%s/status" % (pid, t)):
            if line.startswith(("voluntary_ctxt_switches", "nonvoluntary_ctxt_switches")):
                total += int(line.split()[1])
    return total


def idle(bins, bk, scratch, window):
    procs, dirs = {}, []
    for name, sup in bins.items():
        d = tempfile.mkdtemp(dir=scratch)
        dirs.append(d)
        procs[name] = subprocess.Popen(
            [sup, "sidecar", "--wait-file", d + "/done", "--", bk, "child", d + "/ready"],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    time.sleep(1)
    before = {n: wakeups(p.pid) for n, p in procs.items()}
    time.sleep(window)
    after = {n: wakeups(p.pid) for n, p in procs.items()}
    for p in procs.values():
        p.terminate()
        p.wait(timeout=20)
    for d in dirs:
        shutil.rmtree(d, ignore_errors=True)
    return {n: after[n] - before[n] for n in procs}


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("old")
    ap.add_argument("new")
    ap.add_argument("--rounds", type=int, default=10)
    ap.add_argument("--idle", type=float, default=20)
    ap.add_argument("--out", default=os.path.join(HERE, "results", "before-after.md"))
    a = ap.parse_args()
    bins = {"before": os.path.abspath(a.old), "after": os.path.abspath(a.new)}
    scratch = tempfile.mkdtemp(prefix="supba.")
    bk = os.path.join(scratch, "benchkit")
    subprocess.run(["gcc", "-O2", "-o", bk, os.path.join(HERE, "benchkit.c")], check=True)
    start, start_done, term_done, lease, marker, rss = ({n: [] for n in bins} for _ in range(6))
    base = []
    for r in range(a.rounds):
        base += spawnloop(bk, [], 20)
        for name in random.sample(list(bins), len(bins)):
            sup = bins[name]
            d = tempfile.mkdtemp(dir=scratch)
            start[name] += spawnloop(bk, [sup, "main", "--"], 20)
            start_done[name] += spawnloop(bk, [sup, "main", "--done-file", d + "/done%N", "--"], 20)
            shutil.rmtree(d, ignore_errors=True)
            term_done[name] += sigbench(bk, [sup, "main", "--done-file", "%D/done%N", "--"], 10,
                                        scratch)
            lease[name] += markerbench(bk, sup, 1, 10, scratch)
            marker[name] += markerbench(bk, sup, 0, 10, scratch)
            rss[name].append(hwm(bk, [sup, "main", "--", "/bin/true"]))
    wake = idle(bins, bk, scratch, a.idle)
    shutil.rmtree(scratch, ignore_errors=True)
    b = statistics.median(base)
    rows = [
        ("start-up overhead, `main -- /bin/true` (median)",
         lambda n: "%d µs" % ((statistics.median(start[n]) - b) / 1000)),
        ("start-up overhead, `main --done-file` (median)",
         lambda n: "%d µs" % ((statistics.median(start_done[n]) - b) / 1000)),
        ("SIGTERM → exited, `main --done-file`: p50 / p90 / p99",
         lambda n: " / ".join(ms(pct(term_done[n], p)) for p in (50, 90, 99))),
        ("marker → sidecar exited, lease held: p50 / p90 / p99",
         lambda n: " / ".join(ms(pct(lease[n], p)) for p in (50, 90, 99))),
        ("marker → sidecar exited, marker only: p50 / p90 / p99",
         lambda n: " / ".join(ms(pct(marker[n], p)) for p in (50, 90, 99))),
        ("idle wake-ups of a waiting sidecar in %d s" % a.idle, lambda n: str(wake[n])),
        ("peak RSS (VmHWM, max), `main -- /bin/true`", lambda n: "%d KiB" % max(x for x in rss[n] if x)),
        ("binary size", lambda n: "{:,} B".format(os.path.getsize(bins[n]))),
    ]
    lines = ["# Before and after, one interleaved run", "",
             "- before: `%s`" % bins["before"], "- after: `%s`" % bins["after"],
             "- %s, %d rounds; %s" % (time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()), a.rounds,
                                    "runs per round: 20 start-ups, 10 SIGTERMs and 10 markers "
                                    "of each kind"),
             "", "| measurement | before | after |", "|---|---|---|"]
    lines += ["| %s | %s | %s |" % (what, f("before"), f("after")) for what, f in rows]
    text = "\n".join(lines) + "\n"
    with open(a.out, "w") as fh:
        fh.write(text)
    print(text)


if __name__ == "__main__":
    main()
