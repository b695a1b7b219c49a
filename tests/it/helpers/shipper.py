"""A stand-in log shipper for the chain test: follows a file and, when told to stop (TERM), ships
what is left of it before exiting. Prints `shipping` once it follows the file, and at the end
`shipped N lines: FIRST..LAST`.
"""
import os
import signal
import sys
import time

path = sys.argv[1]
stopping = False


def stop(_n, _f):
    global stopping
    stopping = True


signal.signal(signal.SIGTERM, stop)
while not os.path.exists(path):
    time.sleep(0.01)
lines = []
partial = ""
with open(path) as f:
    os.write(1, b"shipping\n")
    while True:
        chunk = f.readline()
        if chunk:
            # A reader can see a line half written: only a newline completes it.
            partial += chunk
            if partial.endswith("\n"):
                lines.append(partial.strip())
                partial = ""
            continue
        if stopping:
            break
        time.sleep(0.01)
first = lines[0] if lines else "-"
last = lines[-1] if lines else "-"
os.write(1, ("shipped %d lines: %s..%s\n" % (len(lines), first, last)).encode())
