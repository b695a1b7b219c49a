# A sidecar daemon: prints `daemon ready`, then `daemon got SIGNAME` for each signal it gets, and
# exits with DAEMON_EXIT (default 0) on TERM, QUIT or INT, unless DAEMON_IGNORE_TERM=1 (then only
# SIGKILL ends it).
import os
import signal
import sys
import time

ignore = os.environ.get("DAEMON_IGNORE_TERM") == "1"


def on_signal(n, _frame):
    os.write(1, ("daemon got " + signal.Signals(n).name + "\n").encode())
    if n in (signal.SIGTERM, signal.SIGQUIT, signal.SIGINT) and not ignore:
        sys.exit(int(os.environ.get("DAEMON_EXIT", "0")))


for s in (signal.SIGTERM, signal.SIGQUIT, signal.SIGHUP, signal.SIGINT, signal.SIGUSR1):
    signal.signal(s, on_signal)
os.write(1, b"daemon ready\n")
while True:
    time.sleep(3600)
