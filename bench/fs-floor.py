#!/usr/bin/env python3
"""The floor under `supervisor main --done-file`'s start-up cost: the filesystem work the lease and
the marker need, done by the shortest program that can do it, with no supervisor around it.

    python3 bench/fs-floor.py [DIR...]        (default: a directory under /tmp and one in /dev/shm)

One "round" is what a main with --done-file does to the volume from start to exit, in order:
  lease:   create .lease.tmp (O_EXCL), F_OFD_SETLK write lock, flock, write the pid,
           renameat2(RENAME_NOREPLACE) to NAME.lease     (one writer per lease, issue 12.2)
  marker:  create .tmp (O_EXCL), write the JSON, close, rename to NAME (atomic marker)
  release: unlink NAME.lease, close (drops both locks)
Prints p50/p90 of the round and of each part, per directory, so the cost can be set against the
start-up overhead bench/run.sh measures (the peers do none of this work). Numbers from Python
include about 1 µs of interpreter time per syscall; the syscalls dominate.
"""
import ctypes
import fcntl
import os
import statistics
import struct
import sys
import tempfile
import time

ROUNDS = 400
libc = ctypes.CDLL(None, use_errno=True)
SYS_RENAMEAT2 = 316  # x86-64
RENAME_NOREPLACE = 1
AT_FDCWD = -100
F_OFD_SETLK = 37
LEASE = b'{"pid":12345,"started_at":"2026-12-02T07:39:18.889Z","heartbeat_ms":null}'
MARKER = b'{"version":1,"role":"main","exit_code":0,"reason":"exited"}' + b" " * 150


def renameat2(old, new):
    if libc.syscall(SYS_RENAMEAT2, AT_FDCWD, old.encode(), AT_FDCWD, new.encode(),
                    RENAME_NOREPLACE) != 0:
        raise OSError(ctypes.get_errno(), "renameat2")


def one_round(d, i):
    name = os.path.join(d, "done%d" % i)
    t0 = time.perf_counter_ns()
    tmp = os.path.join(d, ".done%d.lease.tmp" % i)
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_CLOEXEC, 0o644)
    # struct flock: l_type, l_whence, l_start, l_len, l_pid (short, short, off_t, off_t, pid_t)
    fcntl.fcntl(fd, F_OFD_SETLK, struct.pack("hhqqi4x", fcntl.F_WRLCK, 0, 0, 0, 0))
    fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    os.write(fd, LEASE)
    renameat2(tmp, name + ".lease")
    t1 = time.perf_counter_ns()
    mtmp = os.path.join(d, ".done%d.tmp" % i)
    m = os.open(mtmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_CLOEXEC, 0o644)
    os.write(m, MARKER)
    os.close(m)
    os.rename(mtmp, name)
    t2 = time.perf_counter_ns()
    os.unlink(name + ".lease")
    os.close(fd)
    t3 = time.perf_counter_ns()
    return t3 - t0, t1 - t0, t2 - t1, t3 - t2


def pct(xs, p):
    xs = sorted(xs)
    return xs[min(len(xs) - 1, int(len(xs) * p))]


def measure(d):
    rows = [one_round(d, i) for i in range(ROUNDS)]
    fs = os.popen("stat -f -c %T " + d).read().strip() or "?"
    print("%s (%s), %d rounds:" % (d, fs, ROUNDS))
    for k, label in enumerate(("whole round", "lease", "marker", "release")):
        col = [r[k] / 1000 for r in rows]
        print("  %-12s p50 %6.0f µs   p90 %6.0f µs   mean %6.0f µs" % (
            label, pct(col, 0.5), pct(col, 0.9), statistics.mean(col)))


def main():
    dirs = sys.argv[1:]
    made = []
    if not dirs:
        for base in ("/tmp", "/dev/shm"):
            if os.path.isdir(base):
                made.append(tempfile.mkdtemp(prefix="fs-floor.", dir=base))
        dirs = made
    try:
        for d in dirs:
            measure(d)
    finally:
        for d in made:
            for f in os.listdir(d):
                os.unlink(os.path.join(d, f))
            os.rmdir(d)


if __name__ == "__main__":
    main()
