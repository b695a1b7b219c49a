# pty_driver.py SUPERVISOR: drives `SUPERVISOR main -- bash -i` on a pseudo-terminal: a command,
# Ctrl-C of a foreground job, Ctrl-Z and kill of a stopped job, then `exit 0`. Prints TTY-OK and
# exits with the supervisor's code. Every step waits for an event (output on the terminal, the
# terminal's foreground process group), never for a fixed time.
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
