# A sidecar daemon: prints `daemon ready`, then `daemon got SIGNAME` for each signal it gets, and
# exits with DAEMON_EXIT (default 0) on TERM, QUIT or INT, unless DAEMON_IGNORE_TERM=1 (then only
# SIGKILL ends it). The signals are blocked and taken with sigwaitinfo, so none is lost between
# two waits (as one could be between a handler returning and the next sleep).
import os
import signal
import sys

ignore = os.environ.get("DAEMON_IGNORE_TERM") == "1"
wanted = {signal.SIGTERM, signal.SIGQUIT, signal.SIGHUP, signal.SIGINT, signal.SIGUSR1}
signal.pthread_sigmask(signal.SIG_BLOCK, wanted)
os.write(1, b"daemon ready\n")
while True:
    n = signal.sigwaitinfo(wanted).si_signo
    os.write(1, ("daemon got " + signal.Signals(n).name + "\n").encode())
    if n in (signal.SIGTERM, signal.SIGQUIT, signal.SIGINT) and not ignore:
        sys.exit(int(os.environ.get("DAEMON_EXIT", "0")))
