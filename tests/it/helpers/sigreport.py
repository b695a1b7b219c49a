"""A child that reports every signal it receives, for the signal tests.

Prints `ready PID;`, then one line `got N;` per signal received (one write(2) each, so lines never
interleave). Exits with $EXIT_CODE (default 7) right after reporting signal $EXIT_ON (default 15).

The signals are blocked and taken with sigwaitinfo, not caught by handlers: a handler-and-pause
loop loses a signal that lands between the handler running and the next pause(). Every signal
Python can name is taken (all but KILL, STOP and, under glibc, 32 and 33); CHLD is left alone so
its own children are reaped normally.
"""
import os
import signal

EXIT_ON = int(os.environ.get("EXIT_ON", "15"))
EXIT_CODE = int(os.environ.get("EXIT_CODE", "7"))

wanted = set(signal.valid_signals()) - {signal.SIGKILL, signal.SIGSTOP, signal.SIGCHLD}
signal.pthread_sigmask(signal.SIG_BLOCK, wanted)
os.write(1, b"ready %d;\n" % os.getpid())
while True:
    n = signal.sigwaitinfo(wanted).si_signo
    os.write(1, b"got %d;\n" % n)
    if n == EXIT_ON:
        os._exit(EXIT_CODE)
