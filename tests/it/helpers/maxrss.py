# maxrss.py PROGRAM ARGS...: runs the program and, once it has exited, prints `maxrss KiB`, the
# peak resident memory of it and its children, then exits with its code. The address space is
# capped at 6 GiB so that a reader that is not bounded shows up in the number, not in the OOM
# killer.
import resource
import subprocess
import sys

r = subprocess.run(["prlimit", "--as=6442450944", "--"] + sys.argv[1:])
print("maxrss %d" % resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss, flush=True)
sys.exit(r.returncode)
