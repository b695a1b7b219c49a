"""Runs a command as a child subreaper and reports what re-parented to it, for the leftover tests.

A supervisor that is not PID 1 is itself a subreaper: when it exits, whatever it did not stop and
reap re-parents to the next subreaper up, here this program. After the command exits, prints
`left: none` or `left: PID:STATE ...` (Z for a zombie nobody reaped), then kills and reaps those
and exits with the command's exit code (128+N for a signal).
"""
import ctypes
import os
import signal
import sys

PR_SET_CHILD_SUBREAPER = 36
libc = ctypes.CDLL(None, use_errno=True)
if libc.prctl(PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0) != 0:
    sys.exit("subreaper.py: prctl failed")
pid = os.fork()
if pid == 0:
    os.execvp(sys.argv[1], sys.argv[1:])
_, status = os.waitpid(pid, 0)
code = os.waitstatus_to_exitcode(status)
me = os.getpid()
left = []
for d in os.listdir("/proc"):
    if not d.isdigit():
        continue
    try:
        with open(f"/proc/{d}/stat") as f:
            fields = f.read().rsplit(")", 1)[1].split()
    except OSError:
        continue
    if int(fields[1]) == me:
        left.append(f"{d}:{fields[0]}")
print("left:", " ".join(left) or "none", flush=True)
for entry in left:
    try:
        os.kill(int(entry.split(":")[0]), signal.SIGKILL)
    except OSError:
        pass
while True:
    try:
        os.waitpid(-1, 0)
    except ChildProcessError:
        break
sys.exit(code if code >= 0 else 128 - code)
