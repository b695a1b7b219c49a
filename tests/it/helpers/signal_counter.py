# Counts every signal it gets; on TERM prints `counts NAME=N ...` and exits 7. The signals are
# blocked and taken with sigwaitinfo, so none is lost between two waits.
import os
import signal

counted = {getattr(signal, s) for s in
           ("SIGUSR1", "SIGUSR2", "SIGHUP", "SIGWINCH", "SIGURG", "SIGALRM", "SIGCONT")}
wanted = counted | {signal.SIGTERM}
signal.pthread_sigmask(signal.SIG_BLOCK, wanted)
counts = {}
print("ready", flush=True)
while True:
    n = signal.sigwaitinfo(wanted).si_signo
    if n == signal.SIGTERM:
        print("counts " + " ".join("%s=%d" % (signal.Signals(k).name, v)
                                   for k, v in sorted(counts.items())), flush=True)
        os._exit(7)
    counts[n] = counts.get(n, 0) + 1
