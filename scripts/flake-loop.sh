#!/usr/bin/env bash
# Runs the integration suite (`cargo test --test it`) RUNS times in a row while CPU burners keep
# the other cores busy, and stops at the first failed run, naming the run and the failed tests.
# The burners are started here and always killed when the script ends, however it ends.
#
#   scripts/flake-loop.sh [-n RUNS] [-b BURNERS] [-- TEST-ARGS]
#
# TEST-ARGS go to the test binary (`cargo test --test it -- TEST-ARGS`): filters, --skip NAME.
#
# RUNS defaults to 20, BURNERS to the number of cores minus one (at least one). CI=1 is set, so a
# test that would skip fails here too. Exit 0 when every run passed, 1 at the first failed run
# (its full log is kept and named), 2 for a usage error.
#
# Examples: scripts/flake-loop.sh -n 30 -- lease::          (only the lease tests, 30 times)
#           scripts/flake-loop.sh -- --skip containers::     (all but the container tests)
set -euo pipefail
cd "$(dirname "$0")/.."
runs=20
burners=$(( $(nproc) > 1 ? $(nproc) - 1 : 1 ))
while [ $# -gt 0 ]; do
    case $1 in
        -n) runs=${2:?-n needs a number}; shift 2 ;;
        -b) burners=${2:?-b needs a number}; shift 2 ;;
        --) shift; break ;;
        *) echo "flake-loop: unknown argument $1 (usage: $0 [-n RUNS] [-b BURNERS] [-- TEST-ARGS])" >&2; exit 2 ;;
    esac
done
case $runs$burners in *[!0-9]*) echo "flake-loop: -n and -b take numbers" >&2; exit 2 ;; esac
export CI=${CI:-1}
export CARGO_TERM_COLOR=never
logdir=$(mktemp -d "${TMPDIR:-/tmp}/flake-loop.XXXXXX")
burner_pids=()
stop_burners() {
    for pid in ${burner_pids[@]+"${burner_pids[@]}"}; do
        kill "$pid" 2>/dev/null || true
        wait "$pid" 2>/dev/null || true
    done
    burner_pids=()
}
trap stop_burners EXIT
trap 'exit 130' INT TERM

# Build before the burners start: the load is for the tests, not the compiler.
cargo test --test it --no-run >&2
for _ in $(seq "$burners"); do
    # A busy loop in a subshell: pure CPU, no child processes, one pid to kill.
    ( while :; do :; done ) &
    burner_pids+=($!)
done
echo "flake-loop: $runs runs of cargo test --test it -- $*, $burners CPU burner(s) (pids ${burner_pids[*]}), logs in $logdir"
for run in $(seq "$runs"); do
    log=$logdir/run-$run.log
    t0=$(date +%s)
    if cargo test --test it -- "$@" >"$log" 2>&1; then
        echo "flake-loop: run $run/$runs passed in $(( $(date +%s) - t0 ))s: $(grep -E '^test result:' "$log" | tail -1)"
        rm -f "$log"
    else
        echo "flake-loop: run $run/$runs FAILED after $(( $(date +%s) - t0 ))s; failed tests:"
        grep -E '^test .* \.\.\. FAILED$' "$log" | sed 's/^test /  /; s/ \.\.\. FAILED$//' ||
            echo "  (none marked FAILED: the build or the test binary itself failed)"
        echo "flake-loop: full log: $log"
        exit 1
    fi
done
rmdir "$logdir"
echo "flake-loop: all $runs runs passed with $burners CPU burner(s)"
