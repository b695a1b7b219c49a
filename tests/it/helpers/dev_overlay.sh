#!/bin/sh
# dev_overlay.sh UPPER WORK PROGRAM ARGS...: run under `unshare --mount` (a private mount
# namespace). Makes /dev an overlay whose upper directory is UPPER, so what a test planted there
# (a FIFO at termination-log, say) appears in /dev while the host's /dev stays untouched, then runs
# PROGRAM and exits with its code. With HOLD set and non-empty, /dev/termination-log is first
# opened for reading and writing and kept open (a FIFO there then has a reader).
set -eu
upper=$1
work=$2
shift 2
mount -t overlay overlay -o "lowerdir=/dev,upperdir=$upper,workdir=$work" /dev
if [ -n "${HOLD:-}" ]; then
    exec 3<>/dev/termination-log
fi
"$@"
