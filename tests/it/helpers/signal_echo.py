# Prints `ready`, then one line `got SIGNAME` per signal received, each line one write(2) so that
# several of these on one pipe never interleave. Exits 0 on SIGTERM after printing, unless
# ECHO_EXIT_ON_TERM is set to something other than 1. Its first argument, if any, is a file to
# write its pid to. The signals are blocked and taken with sigwaitinfo: a handler-and-sleep loop
# loses a signal that lands between a handler returning and the next sleep starting.
import os
import signal
import sys

NAMES = ("SIGHUP", "SIGINT", "SIGQUIT", "SIGUSR1", "SIGUSR2", "SIGTERM", "SIGWINCH", "SIGCONT",
         "SIGALRM", "SIGTSTP", "SIGTTIN", "SIGTTOU", "SIGPWR", "SIGURG")
wanted = {getattr(signal, name) for name in NAMES}
signal.pthread_sigmask(signal.SIG_BLOCK, wanted)
if len(sys.argv) > 1:
    open(sys.argv[1], "w").write(str(os.getpid()))
os.write(1, b"ready\n")
while True:
    n = signal.sigwaitinfo(wanted).si_signo
    os.write(1, ("got " + signal.Signals(n).name + "\n").encode())
    if n == signal.SIGTERM and os.environ.get("ECHO_EXIT_ON_TERM", "1") == "1":
        sys.exit(0)
