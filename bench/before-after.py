#!/usr/bin/env python3
"""Two supervisor binaries side by side with the C peers, in one interleaved run: the rows that
must not regress when the code is reshaped, and the runtime rows of issue 23 against the best
peer (see docs/bench.md, "Before and after a change").

    bench/before-after.py OLD NEW [--rounds N] [--idle S] [--quick] [--out FILE]

It runs the helpers of bench/bench.py (benchkit spawnloop, sigbench, markerbench, hwm, reap,
zombies):
every round runs OLD, NEW and the peers in a shuffled order, so a drift of the machine's load
hits all alike. Run as root. Writes a Markdown table (default bench/results/before-after.md).
"""
import argparse
import os
import random
import shutil
import statistics
import subprocess
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
sys.dont_write_bytecode = True  # no bench/__pycache__ in the tree
import bench as B  # noqa: E402 - the measurement helpers live there

SIZE_GOAL = 850000
PEER_GOAL = 1.1  # issue 23: each runtime row <= 1.1x the best peer
# a row is worse after than before when its judged figures are worse by more than this
TIME_TOLERANCE = 0.05  # latencies and rates: 5 %
BOOT = 1000  # bootstrap resamples for the 95 % intervals
RSS_TOLERANCE = 4  # KiB: one page
# runs per contender and round (start-ups, SIGTERMs, markers of each kind), the marker's settle
# (us), rounds, reaping runs and orphans each, idle window (s)
FULL = {"start": 20, "sig": 20, "marker": 10, "settle": (20000, 100000), "rounds": 10,
        "reaps": 7, "orphans": 10000, "idle": 20}
QUICK = {"start": 10, "sig": 5, "marker": 5, "settle": (5000, 55000), "rounds": 3,
         "reaps": 1, "orphans": 2000, "idle": 5}


def med(xs):
    return statistics.median(xs) if xs else None


def measure(bins, peers, bk, scratch, a):
    """Interleaved rounds; returns {measurement: {contender: [samples]}}."""
    k = QUICK if a.quick else FULL
    m = {k: {} for k in ("start", "start_done", "handler", "term", "after", "term_done",
                         "lease", "marker", "rss", "reap", "zombies", "wake")}
    # every sample, and the samples of each round (or reaping run) apart: the intervals resample
    # whole rounds, since runs of one round share its conditions
    m["rounds"] = {}

    def add(what, who, xs):
        m[what].setdefault(who, []).extend(xs)
        m["rounds"].setdefault(what, {}).setdefault(who, []).append(list(xs))
    # X in front of a command: OLD's and NEW's `main`, the peers
    pid1 = [(n, [sup, "main", "--"]) for n, sup in bins.items()] + list(peers.items())
    for r in range(a.rounds):
        t0 = time.monotonic()
        d = tempfile.mkdtemp(dir=scratch)
        # start-up: baseline, OLD and NEW (plain and --done-file), the peers
        jobs = [("start", "baseline", [])]
        for n, sup in bins.items():
            jobs += [("start", n, [sup, "main", "--"]),
                     ("start_done", n, [sup, "main", "--done-file", d + "/%s.done%%N" % n, "--"])]
        jobs += [("start", p, w) for p, w in peers.items()]
        for what, who, argv in random.sample(jobs, len(jobs)):
            add(what, who, B.run_spawnloop(bk, argv, k["start"])[0])
        # SIGTERM to X: forwarding, X exited, child exited -> X exited
        jobs = [("term", n, [sup, "main", "--"]) for n, sup in bins.items()]
        jobs += [("term_done", n, [sup, "main", "--done-file", "%D/done%N", "--"])
                 for n, sup in bins.items()]
        jobs += [("term", p, w) for p, w in peers.items()]
        for what, who, argv in random.sample(jobs, len(jobs)):
            sd = tempfile.mkdtemp(dir=d)
            ok, _ = B.run_sigbench(bk, [x.replace("%D", sd) for x in argv], k["sig"], sd)
            add(what, who, [x[1] for x in ok])
            if what == "term":
                add("handler", who, [x[0] for x in ok])
                add("after", who, [x[2] for x in ok if x[2] >= 0])
        # marker -> sidecar exited, lease held and marker only
        jobs = [(what, n, lease) for n in bins for what, lease in (("lease", 1), ("marker", 0))]
        store = {}
        for what, who, lease in random.sample(jobs, len(jobs)):
            argv = [bins[who], "sidecar", "--wait-file", "%D/done", "--",
                    bk, "child", "%D/ready", "%D/stopped"]
            B.run_markerbench(bk, argv, k["marker"], k["settle"], lease, tempfile.mkdtemp(dir=d),
                              store, (what, who))
        for (what, who), c in store.items():
            add(what, who, c["exit"])
        # peak RSS of X -- /bin/true
        for who, w in random.sample(pid1, len(pid1)):
            try:
                add("rss", who, [B.run_hwm(bk, w + ["/bin/true"], None, d)["VmHWM"]])
            except Exception as e:  # noqa: BLE001 - a lost sample, said in the log
                B.log("peak RSS of %s: %r" % (who, e))
        shutil.rmtree(d, ignore_errors=True)
        B.log("round %d/%d: %.1f s" % (r + 1, a.rounds, time.monotonic() - t0))
    # reaping as PID 1: after the rounds (its exit storm loads the machine), interleaved too
    for r in range(k["reaps"]):
        t0 = time.monotonic()
        for (who, w), mode in random.sample([(c, md) for c in pid1 for md in ("reap", "zombies")],
                                            2 * len(pid1)):
            res = B.run_reap(bk, w, k["orphans"],
                             os.path.join(scratch, "%s%d-%s" % (mode, r, who)), mode)
            add(mode, who, [res["per_s"]] if res.get("not_reaped") == 0 else [])
        B.log("reap %d/%d: %.1f s" % (r + 1, k["reaps"], time.monotonic() - t0))
    m["wake"] = idle(bins, bk, scratch, a.idle)
    m["n_orphans"] = k["orphans"]
    return m


def idle(bins, bk, scratch, window):
    """Wake-ups (context switches, all threads) of a sidecar waiting for its marker."""
    procs, dirs = {}, []
    for name, sup in bins.items():
        d = tempfile.mkdtemp(dir=scratch)
        dirs.append(d)
        procs[name] = B.popen(
            [sup, "sidecar", "--wait-file", d + "/done", "--", bk, "child", d + "/ready"],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    time.sleep(1)
    before = {n: B.proc_task_stats(p.pid)["ctxsw"] for n, p in procs.items()}
    time.sleep(window)
    after = {n: B.proc_task_stats(p.pid)["ctxsw"] for n, p in procs.items()}
    for p in procs.values():  # SIGTERM: the sidecar stops its daemon
        p.terminate()
        if B.wait_exit(p, 20) is None:
            B.kill_proc(p)
    for d in dirs:
        shutil.rmtree(d, ignore_errors=True)
    return {n: [after[n] - before[n]] for n in procs}


def rows(m, bins, peers, a):
    """(what, {contender: value}, unit, peer goal?, statistic) per row. The statistic computes a
    value again from resampled runs, `stat(contender, pick)` (pick: the runs, or a bootstrap
    resample of them), for the confidence intervals; None where the value is not a sample's."""
    names = list(bins) + list(peers)

    def runs(key, n, pick):
        """Contender n's samples of `key`, from the rounds `pick` chooses (all, or a resample)."""
        rounds = m["rounds"].get(key, {}).get(n) or ([m[key][n]] if m[key].get(n) else None)
        return [x for r in pick(rounds) for x in r] or None if rounds else None

    def over(key):
        def stat(n, pick):
            xs, base = runs(key, n, pick), runs("start", "baseline", pick)
            return med(xs) - med(base) if xs and base else None
        return stat

    def q(key, p):
        return lambda n, pick: (lambda xs: B.pct(xs, p) if xs else None)(runs(key, n, pick))

    def median(key):
        return lambda n, pick: (lambda xs: med(xs) if xs else None)(runs(key, n, pick))

    out = [
        ("start-up overhead, `main -- /bin/true` (median)", over("start"), names, "us", False),
        ("start-up overhead, `main --done-file` (median)", over("start_done"), bins, "us", False),
        ("signal forwarding, kill → child's handler, `main --` (p50)", q("handler", 50), names,
         "us", True),
        ("SIGTERM → X exited, `main --` (p50)", q("term", 50), names, "us", True),
        ("child exited → X exited, `main --` (p50)", q("after", 50), names, "us", True),
    ]
    for what, key in (("SIGTERM → exited, `main --done-file`", "term_done"),
                      ("marker → sidecar exited, lease held", "lease"),
                      ("marker → sidecar exited, marker only", "marker")):
        out.append(("%s: p50 / p90 / p99" % what, [q(key, p) for p in (50, 90, 99)], bins, "ms",
                    False))
    out += [
        ("idle wake-ups of a waiting sidecar in %g s" % a.idle, median("wake"), bins, "count",
         False),
        ("peak RSS (VmHWM, max), `X -- /bin/true`",
         lambda n, pick: max(m["rss"][n]) if m["rss"].get(n) else None, names, "KiB", True),
        # dumb-init is dynamically linked: its file is not comparable
        ("binary size", lambda n, pick: os.path.getsize(
            bins[n] if n in bins else peers[n][0]), [n for n in names if n in bins or B.elf_info(
                peers[n][0])[0]], "B", True),
        ("orphans reaped per second as PID 1, {:,} running orphans exit at once (median)".format(
            m["n_orphans"]), median("reap"), names, "rate", True),
        ("… the reaper alone: {:,} orphans already zombies, handed over at once (median)".format(
            m["n_orphans"]), median("zombies"), names, "rate", True),
    ]
    same = lambda xs: xs  # noqa: E731
    table = []
    for what, stat, who, unit, goal in out:
        if isinstance(stat, list):
            vals = {n: [f(n, same) for f in stat] for n in who}
        else:
            vals = {n: stat(n, same) for n in who}
        # resampling applies to what is a statistic of many runs: not to a maximum or a size
        boot = None if unit in ("KiB", "B", "count") else stat
        table.append((what, vals, unit, goal, boot))
    return table


def cost(before, after, unit):
    """How much more `after` costs than `before`: a ratio, above 1 when worse."""
    if unit == "rate":
        return before / after if after else float("inf")
    return after / before if before else (1.0 if after == before else float("inf"))


def ci(reps, f):
    """The 95 % interval of f(pick) over `reps` bootstrap resamples of the rounds, paired: in one
    resample every contender gets the same rounds, as they shared them in the run (a fixed seed:
    a table is reproducible from its runs)."""
    rng = random.Random(23)
    got = []
    for _ in range(reps):
        draws = {}

        def pick(rounds):
            k = len(rounds)
            if k not in draws:
                draws[k] = [rng.randrange(k) for _ in range(k)]
            return [rounds[i] for i in draws[k]]
        v = f(pick)
        if v is not None:
            got.append(v)
    return (B.pct(got, 2.5), B.pct(got, 97.5)) if got else None


def fmt(v, unit):
    if v is None:
        return "—"
    if isinstance(v, list):
        return " / ".join(fmt(x, unit) for x in v)
    return {"us": lambda: B.fmt_us(v), "ms": lambda: B.fmt_ms(v), "count": lambda: "%d" % v,
            "KiB": lambda: "%d KiB" % v, "B": lambda: "{:,} B".format(v),
            "rate": lambda: "{:,.0f}/s".format(v)}[unit]()


def worse(before, after, unit, stat=None):
    """(worse?, change text) of after against before, in the direction that costs more; for a
    p50 / p90 / p99 row, p50 and p90 are judged (a p99 of 100 runs is one run's noise). A time or
    rate is worse when it costs more than the tolerance and the bootstrap's 95 % interval of the
    cost excludes no change: a difference the runs' own spread can make is noise, said as such."""
    if isinstance(before, list):
        judged = [worse(b, n, unit, stat[i] if stat else None)
                  for i, (b, n) in enumerate(zip(before[:2], after[:2]))]
        return any(bad for bad, _ in judged), ", ".join(
            "p%d %s" % (q, c) for q, (_, c) in zip((50, 90), judged))
    if before is None or after is None:
        return None, "—"
    c = cost(before, after, unit)
    noise = ""
    if unit in ("us", "ms", "rate"):
        bad = c > 1 + TIME_TOLERANCE
        if bad and stat is not None:
            lo_hi = ci(BOOT, lambda pick: (lambda b, n: cost(b, n, unit) if b and n else None)(
                stat("before", pick), stat("after", pick)))
            if lo_hi and lo_hi[0] <= 1:
                bad = False
                noise = " (noise: 95 %% CI of the cost %.2f–%.2f×)" % lo_hi
    elif unit == "KiB":
        bad = after - before > RSS_TOLERANCE
    else:
        bad = after > before
    if before > 0 and after >= 0:
        return bad, "%+.0f %%" % (100 * (after - before) / before) + noise
    return bad, ("+" if after >= before else "") + fmt(after - before, unit) + noise


def table(m, bins, peers, a, meta):
    lines = ["# Before and after, one interleaved run", ""]
    if a.quick:
        lines += ["**Quick run (`--quick`): a smoke check, too few runs to judge by.**", ""]
    lines += ["- before: `%s` (%s)" % (bins["before"], meta["before"]),
              "- after: `%s` (%s)" % (bins["after"], meta["after"]),
              "- peers: %s" % (", ".join("%s `%s`" % (p, w[0]) for p, w in peers.items())
                               or "none found"),
              "- %s; %d rounds, each: %s; then %s; idle window %g s; wall time %.0f s" % (
                  meta["date"], a.rounds, meta["per_round"], meta["reap"], a.idle, meta["wall"]),
              "- load average before / after: %s / %s; machine CPU busy during the run: %s %%" % (
                  " ".join(meta["load0"]), " ".join(meta["load1"]), meta["busy"]),
              "", "Peers' figures are the best of tini-static, dumb-init and catatonit in the "
              "same rounds (size: the static ones); \"after ÷ best peer\" is NEW's cost over "
              "theirs (for a rate, the peer's rate over NEW's), with in brackets its 95 %% "
              "interval from %d paired bootstrap resamples of the rounds; \"MISS (within noise)\": the "
              "figure misses the goal but the interval reaches it. Worse: by more than %d %% for "
              "times and rates, and the 95 %% interval of the cost excludes no change (a "
              "difference inside the runs' own spread is marked noise, not worse); more than "
              "%d KiB for RSS; at all for wake-ups and size." % (
                  BOOT, 100 * TIME_TOLERANCE, RSS_TOLERANCE), "",
              "| measurement | before | after | after vs before | best peer | after ÷ best peer "
              "| goal | met |", "|---|---|---|---|---|---|---|---|"]
    worse_rows = []
    for what, vals, unit, goal, stat in rows(m, bins, peers, a):
        b, n = vals.get("before"), vals.get("after")
        bad, change = worse(b, n, unit, stat)
        if bad:
            worse_rows.append(what)
            change = "**worse** " + change
        pv = {k: v for k, v in vals.items() if k in peers and v is not None}
        bp = B.best_peer({k: (-v if unit == "rate" else v) for k, v in pv.items()})
        peer_cell, ratio, ratio_cell, goal_cell, verdict = "—", None, "—", "not worse", ""
        band = None
        if bp and not isinstance(n, list):
            peer_cell = "%s (%s)" % (fmt(pv[bp[0]], unit), bp[0])
            if n:
                ratio = cost(pv[bp[0]], n, unit) if pv[bp[0]] else None
                ratio_cell = "%.2f×" % ratio if ratio is not None else "—"
                if ratio is not None and stat is not None:
                    band = ci(BOOT, lambda pick: (lambda p, x: cost(p, x, unit) if p and x else
                                                  None)(stat(bp[0], pick), stat("after", pick)))
                    if band:
                        ratio_cell += " (%.2f–%.2f)" % band
        if unit == "B":
            goal_cell = "≤ {:,} B".format(SIZE_GOAL)
            verdict = "pass" if n is not None and n <= SIZE_GOAL else "MISS"
        elif goal:
            goal_cell = "≤ %.1f× best peer" % PEER_GOAL
            verdict = "pass" if ratio is not None and ratio <= PEER_GOAL else "MISS"
            if verdict == "MISS" and band and band[0] <= PEER_GOAL:
                verdict = "MISS (within noise)"
        lines.append("| %s | %s | %s | %s | %s | %s | %s | %s |" % (
            what, fmt(b, unit), fmt(n, unit), change, peer_cell, ratio_cell, goal_cell, verdict))
    lines += ["", "Worse after than before: %s." % ("; ".join(worse_rows) or "none")]
    if meta["leaks"]:
        lines += ["", "Leaked processes (killed): %s" % "; ".join(meta["leaks"])]
    return "\n".join(lines) + "\n"


def version(path):
    q = subprocess.run([path, "--version"], capture_output=True, text=True, timeout=10)
    return ((q.stdout or q.stderr).strip().splitlines() or ["?"])[0]


def main():
    ap = argparse.ArgumentParser(description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("old")
    ap.add_argument("new")
    ap.add_argument("--quick", action="store_true",
                    help="smoke check: 3 rounds of fewer runs, 2,000 orphans once, 5 s idle")
    ap.add_argument("--rounds", type=int, default=None, help="default %d (--quick %d)" % (
        FULL["rounds"], QUICK["rounds"]))
    ap.add_argument("--idle", type=float, default=None, help="idle window, s; default %g "
                    "(--quick %g)" % (FULL["idle"], QUICK["idle"]))
    ap.add_argument("--out", default=os.path.join(HERE, "results", "before-after.md"))
    a = ap.parse_args()
    k = QUICK if a.quick else FULL
    a.rounds = a.rounds or k["rounds"]
    a.idle = a.idle if a.idle is not None else k["idle"]
    if os.geteuid() != 0:
        sys.exit("before-after: must run as root (unshare --pid)")
    B.set_child_subreaper()
    bins = {"before": os.path.abspath(a.old), "after": os.path.abspath(a.new)}
    peers = B.peer_wrappers(B.find_peers())
    scratch = tempfile.mkdtemp(prefix="supba.")
    meta = {"date": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()),
            "before": version(bins["before"]), "after": version(bins["after"]),
            "per_round": "%d start-ups, %d SIGTERMs and %d markers of each kind, 1 peak RSS" % (
                k["start"], k["sig"], k["marker"]),
            "reap": "{} reaping run(s) of {:,} orphans of each kind".format(k["reaps"],
                                                                          k["orphans"]),
            "load0": B.loadavg()}
    t0, c0 = time.monotonic(), B.cpu_times()
    try:
        bk = B.build_benchkit(scratch)
        m = measure(bins, peers, bk, scratch, a)
    finally:
        for p in list(B.TRACKED):
            B.kill_proc(p)
        meta["leaks"] = ["pid %d (%s) %s" % (pid, st, cmd[:120])
                         for pid, st, cmd in B.reap_strays()]
        shutil.rmtree(scratch, ignore_errors=True)
    c1 = B.cpu_times()
    meta.update(wall=time.monotonic() - t0, load1=B.loadavg(),
                busy="%.0f" % (100.0 * ((c1[0] - c0[0]) - (c1[1] - c0[1])) / max(1, c1[0] - c0[0])))
    text = table(m, bins, peers, a, meta)
    with open(a.out, "w") as fh:
        fh.write(text)
    print(text)


if __name__ == "__main__":
    main()
