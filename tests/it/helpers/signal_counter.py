# Counts every signal it gets; on TERM prints `counts NAME=N ...` and exits 7.
import os
import signal

counts = {}


def count(n, _frame):
    counts[n] = counts.get(n, 0) + 1


def term(_n, _frame):
    print("counts " + " ".join("%s=%d" % (signal.Signals(k).name, v)
                               for k, v in sorted(counts.items())), flush=True)
    os._exit(7)


for s in ("SIGUSR1", "SIGUSR2", "SIGHUP", "SIGWINCH", "SIGURG", "SIGALRM", "SIGCONT"):
    signal.signal(getattr(signal, s), count)
signal.signal(signal.SIGTERM, term)
print("ready", flush=True)
while True:
    signal.pause()
