#!/usr/bin/env python3
"""The seed's Docker-in-Docker Job, end to end, under faults: scripts/dind-faults.sh's logic.

    dind-faults.py [N [FIRST]] [--seed S] [--variant V]... [--fault K]... [--bound DUR]
                   [--bin PATH] [--kubectl-supervise PATH | --manifests DIR] [--patient]
                   [--rules] [--verbose]

Theory of operation. A run is a seed. The seed picks the variant (`plain`, `tls`, `native`:
examples/unwired/dind-job.yaml, dind-job-tls.yaml, dind-job-native.yaml), then the fault
(`none`, `dockerd-killed`, `build-killed`, `pod-deleted`, `dockerd-slow`), so that any 15
consecutive seeds play every pair; a generator seeded with it draws the rest: the fault's
moment - an anchor the harness sees happen (the pod started, dind's ready file appeared, the
build's command started, the build's command ended) plus a random offset -, the victim, the
kubelet's jitter, the delay. The same seed gives the same plan on any machine; a machine's
speed only moves the anchors.

The pod is what `kubectl-supervise inject -f FILE --main build` prints (the one command of the
README, no --ready), rewritten for the local, offline podman by play-pods.py (the stand-in
images of scripts/podman-env.sh, names unique to the run) and played with `podman kube play
--network none`. The dind stand-in runs Debian's real dockerd (vfs storage, no iptables, no
bridge) through a dockerd-entrypoint.sh with the real one's interface.

The harness plays the kubelet and the fault. Every 20 ms it looks, from the host, at each
container's init (/proc), at the build's command (the child of the build's supervisor), at
dind's daemon (the child of dind's supervisor) and at the shared volume (the ready file, the
markers). It SIGKILLs dockerd, or the build (its command, or the whole container as an OOM
kill does); deletes the pod as the kubelet does (TERM to each regular container's init after
0-200 ms, to native sidecars once the regular containers have ended, SIGKILL to whatever runs
when the grace period is over); TERMs native sidecars once the build has ended, and restarts
one that ends before (restartPolicy: Always). A slow dockerd is set in the pod: the stand-in's
hooks delay dockerd's start (nothing listens) or its containerd (dockerd listens and answers
nothing, as a slow real start does). Each event is kept with the window in which it happened
(between two looks), so that a fault's place relative to the build is known, or known to be
ambiguous.

When every container has ended, or the run's bound has passed (the pod is then killed and the
run counted), the harness reads each container's exit code and log and the markers (each
marker also when its container ends, before a restart replaces it), removes the pod and its
volumes, and checks the run against RULES: the outcome the README's tables and
docs/failure-modes.md give for what happened first - where two orders of events are possible,
either ending passes -, no "Cannot connect" and no build started before dockerd answered, the
bound, nothing left behind. A main that waits, as documented, for a required sidecar to come
back although restartPolicy Never means it never will (`--wait-timeout` long) is cut short
and counted apart, not as a violation (--patient waits it out and judges its ending).

Interrupted (INT, TERM, HUP), it removes the pod under way before it exits. A session killed
outright leaves its pod to the next one, which removes the pods and volumes of sessions no
longer alive (their names carry the session's pid).
"""

import argparse
import dataclasses
import importlib.util
import json
import os
import random
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import time

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
# play-pods.py is loaded as a module: no __pycache__ left in scripts/.
sys.dont_write_bytecode = True

VARIANTS = {
    "plain": "examples/unwired/dind-job.yaml",
    "tls": "examples/unwired/dind-job-tls.yaml",
    "native": "examples/unwired/dind-job-native.yaml",
}
FAULTS = ["none", "dockerd-killed", "build-killed", "pod-deleted", "dockerd-slow"]
# The anchors a fault's moment is drawn from, and the largest offset after each (seconds).
ANCHORS = {"start": 1.5, "ready": 0.1, "cmd": 0.3, "done": 0.3}
POLL = 0.02
# How long a signal to a supervisor may take to reach its command on a loaded machine: a command
# that ends within this after the signal may have ended by itself first.
DELIVERY = 0.1
# A build's output that means it could not reach dockerd.
CANNOT_CONNECT = re.compile(
    r"Cannot connect to the Docker daemon|error during connect|could not read CA certificate"
    r"|unable to resolve docker endpoint|connection refused")

RULES = [
    ("cannot-connect", "the build never fails to reach dockerd (\"Cannot connect to the Docker "
     "daemon\", a client certificate missing), unless dockerd was killed or stopped before the "
     "build's command ended", "issue 24; README (Recipes: the `docker` preset)"),
    ("early-start", "the build's command starts only after dockerd has completed its "
     "initialization (it answers)", "README (Recipes: the `docker` preset)"),
    ("in-bound", "every container ends within the run's bound (--bound, plus a slow start's "
     "delay); after a pod deletion within the grace period, without the kubelet's SIGKILL",
     "issue 24; docs/failure-modes.md (the pod is deleted)"),
    ("outcome", "each container's exit code and marker reason are the ones the tables give for "
     "what happened first; a marker's exit code is its container's", "README (Exit codes, Files "
     "on the shared volume), docs/failure-modes.md"),
    ("clean", "after the run no pod, container or volume of it is left", "issue 24"),
]


class Usage(Exception):
    """A bad command line: one line, exit 2."""


class CannotRun(Exception):
    """This machine cannot play the runs: one line, exit 125."""


class Interrupted(Exception):
    """INT, TERM or HUP arrived; the pod under way is removed before exiting."""

    def __init__(self, signum):
        super().__init__(signum)
        self.code = 128 + signum


def load_play_pods():
    """scripts/play-pods.py as a module: the rewriting of pods for podman lives there once."""
    spec = importlib.util.spec_from_file_location("play_pods", os.path.join(REPO, "scripts/play-pods.py"))
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


PLAY_PODS = load_play_pods()


# --- The plan ---------------------------------------------------------------------------------


@dataclasses.dataclass
class Plan:
    seed: int
    variant: str
    fault: str
    anchor: str = ""
    offset: float = 0.0
    # build-killed: "cmd" (its command) or "container" (its whole container, as an OOM kill).
    victim: str = ""
    # pod-deleted: each regular container's TERM delay.
    jitter: dict = dataclasses.field(default_factory=dict)
    # dockerd-slow: "listen" (nothing listens) or "serve" (dockerd listens, answers nothing).
    slow: str = ""
    delay: float = 0.0

    def describe(self):
        if self.fault == "none":
            return "no fault"
        if self.fault == "dockerd-slow":
            how = "before it listens" if self.slow == "listen" else "listening, not answering"
            return f"dockerd slow ({self.delay:.1f}s {how})"
        anchor = {"start": "the pod's start", "ready": "dind's ready file",
                  "cmd": "the build's start", "done": "the build's end"}[self.anchor]
        what = self.fault if self.fault != "build-killed" else f"build-killed ({self.victim})"
        return f"{what} at {anchor} +{self.offset * 1000:.0f}ms"


def make_plan(seed, variants, faults):
    rng = random.Random(seed)
    p = Plan(seed, variants[seed % len(variants)], faults[(seed // len(variants)) % len(faults)])
    if p.fault == "dockerd-slow":
        p.slow = rng.choice(["listen", "serve"])
        p.delay = round(rng.uniform(1.0, 4.0), 2)
        return p
    if p.fault == "none":
        return p
    if p.fault == "build-killed":
        p.victim = rng.choice(["cmd", "container"])
    if p.victim == "cmd":
        p.anchor = "cmd"
    elif p.victim == "container":
        # Once the command has ended its container is gone within milliseconds.
        p.anchor = rng.choice(["cmd", "ready", "start"])
    else:
        p.anchor = rng.choice(sorted(ANCHORS))
    p.offset = round(rng.uniform(0, ANCHORS[p.anchor]), 3)
    if p.fault == "pod-deleted":
        p.jitter = {c: round(rng.uniform(0, 0.2), 3) for c in ("build", "dind")}
    return p


# --- podman -----------------------------------------------------------------------------------


class Podman:
    """The private podman of scripts/podman-env.sh (its configuration files under DIR)."""

    def __init__(self, directory):
        self.env = dict(os.environ, CONTAINERS_CONF=os.path.join(directory, "containers.conf"),
                        CONTAINERS_STORAGE_CONF=os.path.join(directory, "storage.conf"))

    def run(self, *args, timeout=60, check=False):
        try:
            out = subprocess.run(["podman", *args], env=self.env, capture_output=True, text=True,
                                 timeout=timeout, check=False)
        except subprocess.TimeoutExpired:
            if check:
                raise CannotRun(f"podman {' '.join(args[:3])} did not answer within {timeout}s")
            return None
        if check and out.returncode != 0:
            raise CannotRun(f"podman {' '.join(args[:3])} failed: {out.stderr.strip()}")
        return out

    def lines(self, *args):
        out = self.run(*args)
        return out.stdout.split() if out and out.returncode == 0 else []


# --- One container, seen from the host --------------------------------------------------------


def proc_start(pid):
    """The start time of process PID (ticks since boot), or None: tells a reused pid apart."""
    try:
        with open(f"/proc/{pid}/stat", encoding="ascii", errors="replace") as f:
            fields = f.read().rsplit(")", 1)[1].split()
        return None if fields[0] == "Z" else int(fields[19])
    except (OSError, IndexError, ValueError):
        return None


# Wall-clock time of the boot, for the start times in /proc (ticks of CLOCK_BOOTTIME).
BOOT = time.time() - time.clock_gettime(time.CLOCK_BOOTTIME)
TICK = 1 / os.sysconf("SC_CLK_TCK")


def started_window(pid, lo, hi):
    """When process PID, seen first at HI, started: its own start time (to a tick) from /proc,
    so that a process that began before the harness looked (during `podman kube play`) is dated
    right; (LO, HI] when /proc cannot tell."""
    ticks = proc_start(pid)
    if ticks is None:
        return (lo, hi)
    t = BOOT + ticks * TICK
    return (t - TICK, min(hi, t + TICK))


def children(pid):
    try:
        with open(f"/proc/{pid}/task/{pid}/children", encoding="ascii") as f:
            return [int(c) for c in f.read().split()]
    except (OSError, ValueError):
        return []


@dataclasses.dataclass
class Ending:
    """One start of a container, ended."""
    code: int
    marker: object  # the marker's JSON as it was when the container ended; None: no marker
    at: float


class Container:
    """A container of the pod: its init's host pid, its one child (CMD or the daemon), its
    endings (a restarted native sidecar has several)."""

    def __init__(self, name, full, marker):
        self.name, self.full, self.marker = name, full, marker
        self.pid = self.start = None
        self.child = None
        self.child_seen = self.child_gone = None  # (lo, hi) windows
        self.endings = []
        self.running = False
        self.log_path = None
        self.past_log = ""  # the logs of the containers a restart replaced
        self.termed = None

    def attach(self, pm):
        out = pm.run("inspect", "--format", "{{.State.Pid}} {{.HostConfig.LogConfig.Path}}", self.full)
        if not out or out.returncode != 0:
            return False
        pid, self.log_path = out.stdout.split(maxsplit=1)
        self.log_path = self.log_path.strip()
        self.pid = int(pid)
        self.start = proc_start(self.pid) if self.pid > 0 else None
        self.running = self.start is not None
        self.child = None
        return self.running

    def alive(self):
        return self.running and proc_start(self.pid) == self.start


# --- One run ----------------------------------------------------------------------------------


class Run:
    """A pod played to its end under one plan; see the module doc."""

    def __init__(self, ctx, plan):
        self.ctx, self.plan, self.pm = ctx, plan, ctx.podman
        self.events = []  # (t, who, text)
        self.fault_at = None
        self.fault_missed = None
        self.cut = None  # why the run was ended by the harness: past its bound
        self.waited = None  # or: a main waiting, as documented, for what will not come back
        self.killed_at_grace = []
        self.restarts = 0
        self.volume_dir = None
        self.ready_seen = None
        self.t0 = None
        self.deleted_at = None
        self.grace_until = None
        self.bound = ctx.bound + (plan.delay if plan.fault == "dockerd-slow" else 0)

    def event(self, who, text, at=None):
        self.events.append((time.time() if at is None else at, who, text))

    # --- setting up ---

    def prepare(self):
        src = self.ctx.sources[self.plan.variant]
        run_id = f"df{os.getpid()}s{self.plan.seed}"
        pod, meta, _ = PLAY_PODS.playable(src, f"dind-faults-{self.plan.variant}", run_id,
                                          self.ctx.standins, self.ctx.prefix, [], False)
        spec = pod["spec"]
        if self.plan.fault == "dockerd-slow":
            hook = "STANDIN_DOCKERD_DELAY" if self.plan.slow == "listen" else "STANDIN_CONTAINERD_DELAY"
            dind = next(c for c in spec["containers"] if c["name"] == "dind")
            dind.setdefault("env", []).append({"name": hook, "value": str(self.plan.delay)})
        self.pod_name = meta["PLAY_POD"]
        self.volumes = meta["PLAY_VOLUMES"]
        self.natives = meta["PLAY_NATIVES"]
        self.grace = int(meta["PLAY_GRACE"])
        self.restart_policy = meta["PLAY_RESTART"]
        self.containers = {}
        for c in spec["containers"]:
            done = next((w.split("=", 1)[1] for w in c.get("command") or []
                         if w.startswith("--done-file=")), None)
            self.containers[c["name"]] = Container(c["name"], f"{self.pod_name}-{c['name']}", done)
        self.regulars = [n for n in self.containers if n not in self.natives]
        build = next(c for c in spec["containers"] if c["name"] == "build")
        self.wait_timeout = next((duration(w.split("=", 1)[1], "--wait-timeout") for w in build.get("command") or []
                                  if w.startswith("--wait-timeout=")), 0)
        self.ready_file = next((w.split("=", 1)[1] for c in spec["containers"]
                                for w in c.get("command") or [] if w.startswith("--ready-file=")), None)
        self.yaml = os.path.join(self.ctx.work, f"{self.pod_name}.yaml")
        with open(self.yaml, "w", encoding="utf-8") as f:
            PLAY_PODS.yaml.safe_dump(pod, f, sort_keys=False)

    def shared_path(self, path):
        """Where PATH (on the `supervisor` volume, mounted at /supervisor) is on the host."""
        if path is None or self.volume_dir is None or not path.startswith("/supervisor/"):
            return None
        return os.path.join(self.volume_dir, path[len("/supervisor/"):])

    def read_marker(self, path):
        p = self.shared_path(path)
        if p is None:
            return None
        try:
            with open(p, encoding="utf-8") as f:
                return json.load(f)
        except FileNotFoundError:
            return None
        except (OSError, ValueError) as e:
            return {"invalid": str(e)}

    # --- playing ---

    def play(self):
        self.prepare()
        self.ctx.current = self
        self.t_play = time.time()
        self.event("pod", "podman kube play", self.t_play)
        out = self.pm.run("kube", "play", "--quiet", "--network", "none", self.yaml, timeout=120)
        if out is None or out.returncode != 0:
            raise CannotRun(f"podman kube play failed: {(out.stderr if out else 'timed out').strip()}")
        self.t0 = time.time()
        vol = next(v for v in self.volumes if v.startswith("supervisor-"))
        self.volume_dir = (self.pm.lines("volume", "inspect", "--format", "{{.Mountpoint}}", vol) or [None])[0]
        for c in self.containers.values():
            if c.attach(self.pm):
                self.event(c.name, f"container running (pid {c.pid})", self.t0)
            else:
                # It ended during `podman kube play` (a pod under load can run whole in it).
                self.ended(c, self.t_play, self.t0)
        self.loop()

    def loop(self):
        last = self.t0
        while True:
            now = time.time()
            self.look(last, now)
            if all(not c.running for c in self.containers.values()):
                return
            self.kubelet(now)
            self.fault(now)
            if self.stuck(now):
                return
            last = now
            time.sleep(POLL)

    def look(self, lo, hi):
        """What changed since the last look; each change is dated by the window (lo, hi]."""
        for c in self.containers.values():
            if not c.running:
                continue
            if not c.alive():
                self.ended(c, lo, hi)
                continue
            kids = children(c.pid)
            if c.child is None and kids:
                c.child = kids[0]
                if c.child_seen is None:
                    c.child_seen = started_window(c.child, lo, hi)
                    what = "command" if c.name == "build" else "daemon"
                    self.event(c.name, f"{what} started (pid {c.child})", c.child_seen[1])
            elif c.child is not None and c.child not in kids and c.child_gone is None and c.name == "build":
                c.child_gone = (lo, hi)
                self.event(c.name, "command ended", hi)
        if self.ready_seen is None and self.ready_file:
            p = self.shared_path(self.ready_file)
            if p and os.path.exists(p):
                self.ready_seen = (lo, hi)
                self.event("dind", "ready file written", hi)

    def ended(self, c, lo, at):
        """C's init is gone, seen in the window (LO, AT]: its exit code, the time podman
        recorded (to the millisecond; the window when that is out of it) and its marker."""
        c.running = False
        code = None
        # podman learns the exit from conmon; give it a moment after the process is gone.
        deadline = time.time() + 10
        while time.time() < deadline:
            out = self.pm.run("inspect", "--format",
                              "{{.State.Status}} {{.State.ExitCode}} {{.State.FinishedAt.UnixMilli}}", c.full)
            if out and out.returncode == 0:
                status, exit_code, finished = out.stdout.split()
                if status in ("exited", "stopped"):
                    code = int(exit_code)
                    if self.t_play - 1 <= int(finished) / 1000 <= at:
                        at = int(finished) / 1000
                    break
            time.sleep(0.05)
        c.endings.append(Ending(code, self.read_marker(c.marker), at))
        self.event(c.name, f"container exited with code {code}", at)
        if c.name == "build" and c.child_seen is None:
            # The command came and went between two looks: its supervisor's log says when it
            # started.
            m = re.search(r"^(\S+Z) +INFO main: started ", self.log("build"), re.M)
            if m:
                t = iso(m.group(1))
                c.child_seen = (t - 0.001, t + 0.001)
        if c.name == "build" and c.child_seen and c.child_gone is None:
            c.child_gone = (min(lo, at), at)

    def kubelet(self, now):
        """The kubelet's part: native sidecars restarted while the build runs, stopped once it
        has ended; the deletion's TERMs and the SIGKILL at the end of the grace period."""
        regulars_done = all(not self.containers[n].running for n in self.regulars)
        for n in self.natives:
            c = self.containers[n]
            if not c.running and not regulars_done and self.deleted_at is None and self.restarts < 3:
                self.restart(c, now)
            elif c.running and regulars_done and c.termed is None:
                self.term(c, "the build has ended: SIGTERM (the kubelet's part)")
                self.grace_until = self.grace_until or now + self.grace
        if self.deleted_at is not None:
            for n in self.regulars:
                c = self.containers[n]
                if c.running and c.termed is None and now >= self.deleted_at + self.plan.jitter.get(n, 0):
                    self.term(c, "pod deleted: SIGTERM (the kubelet's part)")
        if self.grace_until is not None and now >= self.grace_until:
            for c in self.containers.values():
                if c.alive():
                    self.killed_at_grace.append(c.name)
                    self.event(c.name, "grace period over: SIGKILL (the kubelet's part)")
                    os.kill(c.pid, signal.SIGKILL)
            self.grace_until = float("inf")

    def restart(self, c, now):
        """Restarts native sidecar C as the kubelet does: a new container from the same spec,
        with a fresh filesystem (`podman start` would keep what the last one left in its own,
        such as the pid files of a killed dockerd and its containerd), the volumes kept."""
        self.restarts += 1
        c.past_log = self.log(c.name)  # the clone replaces the container and its log
        name = f"{self.pod_name}-{c.name}-r{self.restarts}"
        self.event(c.name, f"restarted as {name} (restartPolicy: Always, the kubelet's part)", now)
        self.pm.run("container", "clone", "--destroy", "--run", c.full, name, timeout=120)
        c.full = name
        if not c.attach(self.pm):
            self.ended(c, now, time.time())

    def term(self, c, why):
        c.termed = time.time()
        self.event(c.name, why, c.termed)
        try:
            os.kill(c.pid, signal.SIGTERM)
        except ProcessLookupError:
            pass

    def anchor_time(self):
        a = self.plan.anchor
        if a == "start":
            return self.t0
        if a == "ready":
            return self.ready_seen[1] if self.ready_seen else None
        build = self.containers["build"]
        if a == "cmd":
            return build.child_seen[1] if build.child_seen else None
        return build.child_gone[1] if build.child_gone else None

    def fault(self, now):
        if self.fault_at is not None or self.fault_missed or self.plan.fault in ("none", "dockerd-slow"):
            return
        anchor = self.anchor_time()
        if anchor is None or now < anchor + self.plan.offset:
            return
        self.fault_at = now
        kind, build, dind = self.plan.fault, self.containers["build"], self.containers["dind"]
        if kind == "pod-deleted":
            self.deleted_at = now
            self.grace_until = now + self.grace
            self.event("pod", f"pod deleted (TERM to each regular container after {self.plan.jitter})", now)
            return
        if kind == "dockerd-killed":
            victim, who, what = (dind.child if dind.alive() else None), "dind", "dockerd"
        elif self.plan.victim == "cmd":
            victim, who, what = (build.child if build.alive() else None), "build", "the build's command"
        else:
            victim, who, what = (build.pid if build.alive() else None), "build", "the build's container"
        try:
            if victim is None:
                raise ProcessLookupError
            os.kill(victim, signal.SIGKILL)
            self.event(who, f"fault: SIGKILL to {what} (pid {victim})", now)
        except ProcessLookupError:
            self.fault_at, self.fault_missed = None, f"{what} was not running"
            self.event(who, f"fault missed: {self.fault_missed}", now)

    def stuck(self, now):
        """True when the run is ended by the harness: past its bound, or a main waiting for a
        sidecar that restartPolicy Never will not bring back (see the module doc)."""
        build, dind = self.containers["build"], self.containers["dind"]
        start = self.deleted_at if self.deleted_at is not None else self.t0
        bound = self.grace + 5 if self.deleted_at is not None else self.bound
        awaiting = ("dind" not in self.natives and dind.endings and build.running
                    and build.child_seen is None and self.deleted_at is None
                    and "waiting up to --wait-timeout for it to come back" in self.log("build"))
        if awaiting and self.ctx.patient:
            bound = max(bound, self.wait_timeout + 30)
        if now - start > bound:
            self.cut = f"still running after {bound:.0f}s: " + ", ".join(
                n for n, c in self.containers.items() if c.running)
        elif awaiting and not self.ctx.patient:
            self.waited = (f"build waits --wait-timeout ({self.wait_timeout:.0f}s) for dind to come back, "
                           f"but restartPolicy {self.restart_policy}: it never will (documented; "
                           "--patient waits it out)")
        if self.cut is None and self.waited is None:
            return False
        self.event("pod", f"cut short: {self.cut or self.waited}", now)
        return True

    def log(self, name):
        """A container's log as text (the k8s-file lines' payloads), every start's."""
        c = self.containers[name]
        try:
            with open(c.log_path, encoding="utf-8", errors="replace") as f:
                return c.past_log + "".join(line.split(" ", 3)[3] if line.count(" ") >= 3 else line for line in f)
        except (OSError, TypeError):
            return c.past_log

    def finish(self):
        """Reads what the verdict needs, then removes the pod and its volumes."""
        if not hasattr(self, "pod_name"):
            return
        self.logs = {n: self.log(n) for n in self.containers}
        remove(self.pm, self.pod_name, self.volumes)
        self.leftovers = leftovers(self.pm, self.pod_name, self.volumes)
        self.ctx.current = None
        try:
            os.unlink(self.yaml)
        except OSError:
            pass


def remove(pm, pod, volumes):
    pm.run("pod", "rm", "--force", "--ignore", "--time", "0", pod, timeout=120)
    if volumes:
        pm.run("volume", "rm", "--force", *volumes, timeout=60)


def leftovers(pm, pod, volumes):
    left = []
    if pm.run("pod", "exists", pod).returncode == 0:
        left.append(f"pod {pod}")
    left += [f"container {n}" for n in pm.lines("ps", "-a", "--format", "{{.Names}}")
             if n.startswith(pod + "-")]
    have = set(pm.lines("volume", "ls", "--format", "{{.Name}}"))
    left += [f"volume {v}" for v in volumes if v in have]
    return left


# --- The verdict ------------------------------------------------------------------------------


def when(t, window):
    """Where moment T falls against an event seen in WINDOW (lo, hi]: {"before"}, {"after"} or
    both when it cannot be told."""
    if window is None:
        return {"before"}
    lo, hi = window
    if t <= lo:
        return {"before"}
    if t > hi:
        return {"after"}
    return {"before", "after"}


def phases(run, t):
    """The build's command at moment T: waiting (not started), running, or ended."""
    build = run.containers["build"]
    out = set()
    for s in when(t, build.child_seen):
        if s == "before":
            out.add("waiting")
        else:
            out |= {"running" if e == "before" else "ended" for e in when(t, build.child_gone)}
    return out


def expected(run):
    """What the tables allow for the first ending of build and of dind, as (code, reason) pairs:
    code "own" is the marker's command_exit_code (CMD's own code), None any code; reason None
    means no marker. A container that writes none (the native build) is judged by its code."""
    p, f = run.plan, run.fault_at
    native = p.variant == "native"
    build_ok = [(0, "exited")]
    dind_ok = [(0, "stopped")]
    if p.fault in ("none", "dockerd-slow") or f is None:
        return build_ok, dind_ok
    ph = phases(run, f)
    if p.fault == "dockerd-killed":
        build_ok, dind_ok = [], []
        if "waiting" in ph:
            # Documented: the main waits up to --wait-timeout for the sidecar to come back; a
            # native one does (the kubelet restarts it), a classic one under Never does not.
            build_ok += [(0, "exited")] if native else [(122, "dependency-failed")]
            dind_ok += [(137, "signaled")]
        if "running" in ph:
            build_ok += [(122, "dependency-failed")]
            # The command may fail by itself (its connection to dockerd reset) before the main
            # hears of dind's end: its own ending then, if it came at once.
            gone = run.containers["build"].child_gone
            if gone and gone[0] - f < 1.0:
                build_ok += [(None, "exited")]
            dind_ok += [(137, "signaled")]
            # dind may hear of the build's end (its marker) in the same breath as of dockerd's:
            # both orders are possible, and "the mains are done" is then a stop as asked.
            if gone and gone[0] - f < DELIVERY:
                dind_ok += [(0, "stopped")]
        if "ended" in ph:
            build_ok += [(0, "exited")]
            dind_ok += [(0, "stopped"), (137, "signaled")]
    elif p.fault == "build-killed":
        if p.victim == "cmd":
            build_ok = [(137, "signaled")]
        else:
            # The container SIGKILLed: no marker, unless its command had ended and it was written.
            build_ok = [(137, None)] + ([(137, "exited")] if "ended" in ph else [])
    elif p.fault == "pod-deleted":
        # The build's TERM, or when it was due (a build that ended before got none).
        first = run.containers["build"].termed or f + p.jitter.get("build", 0)
        build_ok = []
        for s in phases(run, first) | ph:
            build_ok += {"waiting": [(143, "cancelled")], "running": [("own", "stopped")],
                         "ended": [(0, "exited")]}[s]
        # A command that ended right after its supervisor got the TERM may have ended by itself
        # before the forwarded signal reached it: its own ending then.
        gone = run.containers["build"].child_gone
        if "running" in phases(run, first) and gone and gone[0] - first < DELIVERY:
            build_ok += [(None, "exited")]
        # dind's TERM first: dockerd closes its sockets at once and the command may fail by
        # itself before the build's own TERM, or the news of dind's stop, reaches its supervisor.
        dind_term = run.containers["dind"].termed
        if dind_term is not None and gone and dind_term < gone[1] and dind_term < first:
            build_ok += [(None, "exited")]
    return build_ok, dind_ok


def matches(ending, code, reason, has_marker):
    """Whether ENDING is the outcome (CODE, REASON) of expected()."""
    m = ending.marker
    if has_marker and (m.get("reason") if isinstance(m, dict) else None) != reason:
        return False
    if code == "own":
        if has_marker:
            return isinstance(m, dict) and m.get("command_exit_code") == ending.code
        return ending.code not in (122, 137)
    return code is None or code == ending.code


def check_ending(name, ending, allowed, has_marker):
    """None when ENDING is one of ALLOWED, else why not."""
    if any(matches(ending, code, reason, has_marker) for code, reason in allowed):
        return None

    def show(code, reason):
        code = {"own": "its command's own code", None: "any code"}.get(code, code)
        if not has_marker:
            return str(code)
        return f"{code} {reason or '(no marker)'}"
    m = ending.marker
    got = ending.code if not has_marker else f"{ending.code} {m.get('reason') if isinstance(m, dict) else '(no marker)'}"
    allowed = list(dict.fromkeys(show(c, r) for c, r in allowed))
    return f"{name} ended {got}; the tables give {' or '.join(allowed)} for what happened"


def verdict(run):
    """The run's violations, as (rule, detail)."""
    v = []
    p = run.plan
    build, dind = run.containers["build"], run.containers["dind"]
    if run.leftovers:
        v.append(("clean", "left behind: " + ", ".join(run.leftovers)))
    if run.cut:
        v.append(("in-bound", run.cut))
    if run.killed_at_grace:
        v.append(("in-bound", "SIGKILLed at the end of the grace period: " + ", ".join(run.killed_at_grace)))
    # When dockerd was stopped or killed from outside: the fault, or the kubelet's TERM.
    stopped = [t for t in (dind.termed, run.deleted_at) if t is not None]
    if p.fault == "dockerd-killed" and run.fault_at:
        stopped.append(run.fault_at)
    ended = build.child_gone[1] if build.child_gone else float("inf")
    if CANNOT_CONNECT.search(run.logs.get("build", "")) and not any(t <= ended for t in stopped):
        line = next(l for l in run.logs["build"].splitlines() if CANNOT_CONNECT.search(l))
        v.append(("cannot-connect", line.strip()[:200]))
    serving = [iso(m.group(1)) for m in re.finditer(
        r'time="([^"]+)" level=info msg="Daemon has completed initialization"', run.logs.get("dind", ""))]
    if build.child_seen and not any(s <= build.child_seen[1] for s in serving):
        first = f"{min(serving) - run.t_play:.3f}s" if serving else "never"
        v.append(("early-start", f"the build's command started at {build.child_seen[1] - run.t_play:.3f}s, "
                  f"dockerd completed its initialization at {first}"))
    if run.cut is None:
        build_ok, dind_ok = expected(run)
        has = {"build": build.marker is not None, "dind": dind.marker is not None}
        # A build cut short while it waits out --wait-timeout has no ending to judge yet.
        judged = ((dind, dind_ok),) if run.waited else ((build, build_ok), (dind, dind_ok))
        for c, allowed in judged:
            if not c.endings:
                continue
            why = check_ending(c.name, c.endings[0], allowed, has[c.name])
            if why:
                v.append(("outcome", why))
            for e in c.endings:
                v += marker_problems(c.name, e, run)
        if p.variant == "native" and len(dind.endings) > 1:
            why = check_ending("dind (after its restart)", dind.endings[-1], [(0, "stopped")], True)
            if why:
                v.append(("outcome", why))
    return v


def marker_problems(name, e, run):
    m = e.marker
    if m is None:
        return []
    if "invalid" in m:
        return [("outcome", f"{name}'s marker is not valid JSON: {m['invalid']}")]
    role = "main" if name == "build" else "sidecar"
    out = []
    if m.get("role") != role:
        out.append(("outcome", f"{name}'s marker says role {m.get('role')!r}"))
    killed_after = run.plan.fault == "build-killed" and run.plan.victim == "container" and name == "build"
    if m.get("exit_code") != e.code and not killed_after and name not in run.killed_at_grace:
        out.append(("outcome", f"{name}'s marker says exit code {m.get('exit_code')}, the container exited {e.code}"))
    return out


def iso(s):
    """Seconds since the epoch of an RFC 3339 UTC time with up to nanoseconds."""
    m = re.match(r"(\d+)-(\d+)-(\d+)T(\d+):(\d+):(\d+)(?:\.(\d+))?", s)
    if not m:
        return float("inf")
    y, mo, d, h, mi, sec, frac = m.groups()
    import calendar
    t = calendar.timegm((int(y), int(mo), int(d), int(h), int(mi), int(sec), 0, 0, 0))
    return t + (float("0." + frac) if frac else 0.0)


# --- A session --------------------------------------------------------------------------------


class Session:
    def __init__(self, args, work):
        self.args = args
        self.bound = args.bound
        self.patient = args.patient
        self.current = None
        self.podman = Podman(args.podman_dir)
        self.prefix = args.prefix
        self.standins = [tuple(s.split("=", 1)) for s in args.standin]
        self.work = work
        # What a replay of one seed needs besides the seed.
        self.replay = "".join(
            [f" --variant {v}" for v in args.variant] + [f" --fault {k}" for k in args.fault]
            + ([f" --bound {args.bound_text}"] if args.bound_text != "60s" else [])
            + ([f" --manifests {args.manifests}"] if args.manifests else []))
        self.sources = {}
        for v in args.variants:
            text = self.manifest(v)
            path = os.path.join(self.work, f"{v}.yaml")
            with open(path, "w", encoding="utf-8") as f:
                f.write(text)
            pods, _, _ = PLAY_PODS.find_pods(PLAY_PODS.load_documents(path))
            self.sources[v] = pods[0]

    def manifest(self, variant):
        if self.args.manifests:
            with open(os.path.join(self.args.manifests, f"{variant}.yaml"), encoding="utf-8") as f:
                return f.read()
        cmd = [self.args.kubectl_supervise, "inject", "-f", os.path.join(REPO, VARIANTS[variant]), "--main", "build"]
        out = subprocess.run(cmd, capture_output=True, text=True, timeout=60, check=False)
        if out.returncode != 0:
            raise CannotRun(f"kubectl-supervise inject failed on {VARIANTS[variant]}: {out.stderr.strip()}")
        return out.stdout

    def remove_stale(self):
        """Pods and volumes of sessions that are no longer alive (killed outright)."""
        pattern = re.compile(r"-df(\d+)s\d+$")

        def dead(name):
            m = pattern.search(name)
            if not m or int(m.group(1)) == os.getpid():
                return False
            try:
                os.kill(int(m.group(1)), 0)
                return False
            except ProcessLookupError:
                return True
            except PermissionError:
                return False
        for pod in self.podman.lines("pod", "ls", "--format", "{{.Name}}"):
            if pod.startswith("play-dind-faults-") and dead(pod):
                remove(self.podman, pod, [])
        stale = [v for v in self.podman.lines("volume", "ls", "--format", "{{.Name}}") if dead(v)]
        if stale:
            self.podman.run("volume", "rm", "--force", *stale, timeout=60)


def summary_counts(results):
    c = {"runs": len(results)}
    for key in ("variant", "fault"):
        c[key] = {}
        for plan, _, _ in results:
            k = getattr(plan, key)
            c[key][k] = c[key].get(k, 0) + 1
    return c


def format_duration(s):
    return f"{int(s // 60)}m{int(s % 60):02d}s" if s >= 60 else f"{s:.1f}s"


class Tally:
    def __init__(self):
        self.results = []  # (plan, run, violations)
        self.started = time.time()

    def add(self, plan, run, violations):
        self.results.append((plan, run, violations))

    def print(self, out):
        r = self.results
        if not r:
            return
        by = lambda key: ", ".join(f"{k} {n}" for k, n in sorted(summary_counts(r)[key].items()))
        out(f"runs: {len(r)} ({by('variant')}) in {format_duration(time.time() - self.started)}")
        delivered = {}
        for plan, run, _ in r:
            if plan.fault in ("none", "dockerd-slow"):
                key = plan.fault if plan.fault == "none" else f"{plan.fault} ({plan.slow})"
            elif run.fault_at is None:
                key = f"{plan.fault} (missed: {run.fault_missed or 'its anchor never came'})"
            else:
                where = "/".join(sorted(phases(run, run.fault_at)))
                victim = f" {plan.victim}" if plan.victim else ""
                key = f"{plan.fault}{victim} (build {where})"
            delivered[key] = delivered.get(key, 0) + 1
        out("faults: " + "; ".join(f"{k} {n}" for k, n in sorted(delivered.items())))
        rules = {}
        for _, _, v in r:
            for rule, _ in v:
                rules[rule] = rules.get(rule, 0) + 1
        out(f'"Cannot connect" failures: {rules.get("cannot-connect", 0)}')
        out(f"builds started before dockerd answered: {rules.get('early-start', 0)}")
        out(f"pods not finished within their bound: {sum(1 for _, run, _ in r if run.cut or run.killed_at_grace)}")
        out("builds cut short waiting out --wait-timeout for a dind restartPolicy Never will not "
            f"restart (documented): {sum(1 for _, run, _ in r if run.waited)}")
        out(f"outcomes not as documented: {rules.get('outcome', 0)}")
        out(f"left behind: {rules.get('clean', 0)}")
        for name in ("build", "dind"):
            seen = {}
            for _, run, _ in r:
                for e in run.containers[name].endings:
                    m = e.marker
                    reason = m.get("reason") if isinstance(m, dict) else "no marker"
                    key = f"{e.code} {reason}"
                    seen[key] = seen.get(key, 0) + 1
            out(f"{name} endings: " + ", ".join(f"{k} ×{n}" for k, n in sorted(seen.items())))
        bad = [plan.seed for plan, _, v in r if v]
        out(f"runs with a violation: {len(bad)}" + (f" (seeds {' '.join(map(str, bad))})" if bad else ""))


def print_run(run, violations, verbose, out):
    p = run.plan
    ends = []
    for name in ("build", "dind"):
        c = run.containers[name]
        for e in c.endings:
            reason = e.marker.get("reason") if isinstance(e.marker, dict) else "no marker"
            ends.append(f"{name} {e.code}" + (f" {reason}" if c.marker else ""))
    took = (max((e.at for c in run.containers.values() for e in c.endings), default=time.time()) - run.t_play)
    status = "ok" if not violations else "VIOLATION"
    if run.waited and not violations:
        status = "ok (cut short: the build waits out --wait-timeout, as documented)"
    restarts = f", {run.restarts} restart{'s' if run.restarts != 1 else ''}" if run.restarts else ""
    out(f"seed {p.seed:<5} {p.variant:<6} {p.describe()}: {', '.join(ends) or 'nothing ended'}"
        f"{restarts}; {took:.1f}s {status}")
    for rule, detail in violations:
        out(f"    [{rule}] {detail}")
    if violations and not verbose:
        out(f"    replay: scripts/dind-faults.sh --seed {p.seed}{run.ctx.replay}")
    if verbose:
        out("  timeline:")
        for t, who, text in sorted(run.events):
            out(f"    {t - run.t_play:8.3f}s  {who:<6} {text}")
        for name, text in run.logs.items():
            out(f"  --- {name} log ---")
            for line in text.splitlines():
                out(f"    {line}")


# --- The command line -------------------------------------------------------------------------


def duration(s, what="--bound"):
    """Seconds of 90, 90s, 2m, 1m30s, 1h, 500ms (as Kubernetes and the supervisor write them)."""
    m = re.fullmatch(r"(?:(\d+)h)?(?:(\d+)m)?(?:(\d+)s)?(?:(\d+)ms)?", s)
    if s.isdigit():
        return int(s)
    if not s or not m:
        raise Usage(f"{what} {s} is not a duration (90, 90s, 2m, 1m30s, 500ms)")
    h, mi, sec, ms = (int(g or 0) for g in m.groups())
    return h * 3600 + mi * 60 + sec + ms / 1000


class Parser(argparse.ArgumentParser):
    def error(self, message):
        raise Usage(message)


def parse(argv):
    p = Parser(prog="dind-faults", add_help=False)
    p.add_argument("numbers", nargs="*")
    p.add_argument("--seed", type=int)
    p.add_argument("--variant", action="append", default=[])
    p.add_argument("--fault", action="append", default=[])
    p.add_argument("--bound", default="60s")
    p.add_argument("--patient", action="store_true")
    p.add_argument("--rules", action="store_true")
    p.add_argument("--verbose", action="store_true")
    p.add_argument("--kubectl-supervise")
    p.add_argument("--manifests")
    # Set by scripts/dind-faults.sh:
    p.add_argument("--podman-dir", required=True)
    p.add_argument("--prefix", required=True)
    p.add_argument("--standin", action="append", default=[])
    p.add_argument("--check-usage", action="store_true")
    a = p.parse_args(argv)
    if len(a.numbers) > 2 or not all(n.isdigit() for n in a.numbers):
        raise Usage(f"N and FIRST are numbers: {' '.join(a.numbers)}")
    a.n = int(a.numbers[0]) if a.numbers else 20
    a.first = int(a.numbers[1]) if len(a.numbers) > 1 else 1
    if a.seed is not None:
        a.n, a.first, a.verbose = 1, a.seed, True
    a.bound_text, a.bound = a.bound, duration(a.bound)
    for v in a.variant:
        if v not in VARIANTS:
            raise Usage(f"--variant {v}: one of {', '.join(VARIANTS)}")
    for k in a.fault:
        if k not in FAULTS:
            raise Usage(f"--fault {k}: one of {', '.join(FAULTS)}")
    a.variants = [v for v in VARIANTS if v in a.variant] or list(VARIANTS)
    a.faults = [k for k in FAULTS if k in a.fault] or list(FAULTS)
    if not a.manifests and not a.kubectl_supervise:
        raise Usage("--kubectl-supervise PATH or --manifests DIR is needed")
    return a


def print_rules(out):
    out("| rule | the promise | where it is written |")
    out("| --- | --- | --- |")
    for rule, promise, where in RULES:
        out(f"| `{rule}` | {promise} | {where} |")


def main(argv):
    out = lambda s: print(s, flush=True)
    try:
        args = parse(argv)
    except Usage as e:
        print(f"dind-faults: {e}", file=sys.stderr)
        return 2
    if args.rules:
        print_rules(out)
        return 0
    if args.check_usage:
        return 0
    session = None

    def interrupted(signum, _frame):
        raise Interrupted(signum)
    for s in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP):
        signal.signal(s, interrupted)
    tally = Tally()
    work = tempfile.mkdtemp(prefix="dind-faults.")
    try:
        session = Session(args, work)
        session.remove_stale()
        for seed in range(args.first, args.first + args.n):
            plan = make_plan(seed, args.variants, args.faults)
            run = Run(session, plan)
            try:
                run.play()
            finally:
                run.finish()
            violations = verdict(run)
            tally.add(plan, run, violations)
            print_run(run, violations, args.verbose, out)
    except Interrupted as e:
        print(f"dind-faults: interrupted ({signal.Signals(e.code - 128).name}); the pod under way is removed",
              file=sys.stderr)
        return e.code
    except CannotRun as e:
        print(f"dind-faults: {e}", file=sys.stderr)
        return 125
    finally:
        # Whatever ended the session, the pod under way goes (INT twice is not needed).
        for s in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP):
            signal.signal(s, signal.SIG_IGN)
        if session is not None and session.current is not None:
            run = session.current
            remove(session.podman, run.pod_name, run.volumes)
        shutil.rmtree(work, ignore_errors=True)
    tally.print(out)
    return 1 if any(v for _, _, v in tally.results) else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
