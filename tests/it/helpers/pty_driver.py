# pty_driver.py SUPERVISOR: drives `SUPERVISOR main -- bash -i` on a pseudo-terminal: a command,
# Ctrl-C of a foreground job, Ctrl-Z and kill of a stopped job, then `exit 0`. Prints TTY-OK and
# exits with the supervisor's code. Every step waits for an event (output on the terminal, the
# terminal's foreground process group, a process reaped), with a deadline.
import os
import pty
import select
import sys
import time

sup = sys.argv[1]
pid, fd = pty.fork()
if pid == 0:
    os.environ["PS1"] = "PROMPT$ "
    os.environ["TERM"] = "dumb"
    os.execv(sup, [sup, "main", "--", "bash", "--norc", "--noprofile", "-i"])
buf = b""


def expect(pat, t=10):
    global buf
    end = time.time() + t
    while pat not in buf:
        left = end - time.time()
        if left <= 0:
            sys.exit("timeout waiting for %r; got %r" % (pat, buf[-3000:]))
        r, _, _ = select.select([fd], [], [], left)
        if r:
            try:
                d = os.read(fd, 4096)
            except OSError:
                d = b""
            if not d:
                sys.exit("EOF waiting for %r; got %r" % (pat, buf[-3000:]))
            buf += d
    buf = buf[buf.index(pat) + len(pat):]


def foreground_is(name, t=10):
    end = time.time() + t
    while time.time() < end:
        try:
            pg = os.tcgetpgrp(fd)
            if open("/proc/%d/comm" % pg).read().strip() == name:
                return pg
        except OSError:
            pass
        time.sleep(0.01)
    sys.exit("%s never became the foreground job" % name)


def alive(p):
    try:
        st = open("/proc/%d/stat" % p).read().rsplit(")", 1)[1].split()[0]
        return st not in ("Z", "X")
    except OSError:
        return False


def reaped_by_bash(p, t=10):
    # Gone from /proc: bash has waited for it, and bash updates its job table in the same call, so
    # it no longer lists the job as stopped. bash sometimes misses the SIGCHLD of a stopped job
    # killed by its own `kill` (1 run in 120 with plain bash on a terminal, no supervisor) and
    # reaps the zombie only when it next waits for a child: give it one to wait for, a
    # foreground /bin/true, and its prompt back, until the zombie is gone.
    end = time.time() + t
    while os.path.exists("/proc/%d" % p):
        if time.time() > end:
            sys.exit("bash never reaped process %d; terminal: %r" % (p, buf[-3000:]))
        os.write(fd, b"/bin/true\n")
        expect(b"PROMPT$ ")


expect(b"PROMPT$ ")
os.write(fd, b"echo sum-$((40+2))\n")
expect(b"sum-42")
expect(b"PROMPT$ ")
os.write(fd, b"sleep 100\n")
pg = foreground_is("sleep")
t0 = time.time()
os.write(fd, b"\x03")
expect(b"PROMPT$ ")
if alive(pg) or time.time() - t0 > 5:
    sys.exit("Ctrl-C did not end the foreground job")
os.write(fd, b"echo status-$?\n")
expect(b"status-130")
expect(b"PROMPT$ ")
os.write(fd, b"sleep 200\n")
pg = foreground_is("sleep")
os.write(fd, b"\x1a")
expect(b"Stopped")
expect(b"PROMPT$ ")
os.write(fd, b"kill -9 %1; wait; echo killed-$?\n")
expect(b"killed-")
expect(b"PROMPT$ ")
# `exit` while bash still lists the job as stopped answers "There are stopped jobs." instead of
# exiting: wait until bash has reaped the killed job.
reaped_by_bash(pg)
os.write(fd, b"exit 0\n")
end = time.time() + 10
while time.time() < end:
    p, st = os.waitpid(pid, os.WNOHANG)
    if p:
        break
    r, _, _ = select.select([fd], [], [], 0.05)
    if r:
        try:
            os.read(fd, 4096)
        except OSError:
            pass
else:
    sys.exit("the supervisor did not exit after `exit 0`")
print("TTY-OK", flush=True)
sys.exit(os.waitstatus_to_exitcode(st))
