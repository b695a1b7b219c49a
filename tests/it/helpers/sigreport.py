"""A child that reports every signal it receives, for the signal tests.

Prints `ready PID;`, then one line `got N;` per signal received (one write(2) each, so lines never
interleave). Exits with $EXIT_CODE (default 7) right after reporting signal $EXIT_ON (default 15).
Handles every signal Python lets it (all but KILL, STOP and, under glibc, 32 and 33), CHLD left
alone so its own children are reaped normally.
"""
import os
import signal

EXIT_ON = int(os.environ.get("EXIT_ON", "15"))
EXIT_CODE = int(os.environ.get("EXIT_CODE", "7"))


def report(n, _frame):
    os.write(1, b"got %d;\n" % n)
    if n == EXIT_ON:
        os._exit(EXIT_CODE)


for n in range(1, 65):
    if n in (signal.SIGKILL, signal.SIGSTOP, signal.SIGCHLD):
        continue
    try:
        signal.signal(n, report)
    except (OSError, ValueError, RuntimeError):
        pass

os.write(1, b"ready %d;\n" % os.getpid())
while True:
    signal.pause()
