#!/usr/bin/env bash
# The race explorer (docs/race.md): runs N seeds - whole pods of the supervisor binary driven by
# the kubelet's and the kernel's events at random times - checks each against the rule table and
# prints the counts: seeds, events of each kind, violations by rule. As root, with cgroup v2.
#
#   scripts/race.sh [--release] [N [FIRST]]   N seeds (default 1000) from FIRST (default 1)
#   RACE_SEED=S scripts/race.sh               one seed again, with every container's log
#
# --release explores the static release binary (scripts/build-static.sh) instead of the test
# build. The environment tunes the rest (RACE_JOBS, RACE_ALL, RACE_KEEP, RACE_SUPERVISOR; see
# docs/race.md). Exits 0 when every violation is explained by a fix under way (rules::KNOWN),
# 101 when one is not, 2 for a usage error.
set -euo pipefail
cd "$(dirname "$0")/.."
if [ "${1:-}" = --release ]; then
    shift
    bin=$(scripts/build-static.sh)
    export RACE_SUPERVISOR=$PWD/$bin
fi
n=${1:-1000}
first=${2:-1}
case $n$first in *[!0-9]*) echo "race: N and FIRST are numbers (usage: $0 [--release] [N [FIRST]])" >&2; exit 2 ;; esac
# The explorer runs from a copy of its test binary (it is its own helper program): a build during
# a long run relinks the original in place, and a helper started meanwhile would fail to exec.
exe=$(cargo test --quiet --no-run --test race --message-format=json \
    | python3 -c 'import json,sys
for l in sys.stdin:
    m = json.loads(l)
    if m.get("reason") == "compiler-artifact" and m.get("executable") and m["target"]["name"] == "race":
        print(m["executable"])')
copy=$(mktemp -d /tmp/race-explorer.XXXXXX)
trap 'rm -rf "$copy"' EXIT
cp "$exe" "$copy/race"
"$copy/race" --seeds "$n" --first "$first"
