# shellcheck shell=bash
# The timeline scripts/demo.sh and scripts/play.sh print: what happened in a pod, when, in which
# container. Sourced: defines the colours B G R D N, two clock helpers and the event list.
#
# Events are seen by polling podman, by reading supervisor's log lines and files on the shared
# volume afterwards - not in the order they happened - so each is recorded with its own time
# and the timeline is printed sorted, once the pod is done. Times are milliseconds since the
# epoch (supervisor's ISO timestamps and podman's are on the same clock), printed relative to
# T0, the moment the pod was started.

if [ -t 1 ]; then B=$'\e[1m' G=$'\e[32m' R=$'\e[31m' D=$'\e[2m' N=$'\e[0m'; else B='' G='' R='' D='' N=''; fi
now_ms() { date +%s%3N; }
iso_ms() { date -d "$1" +%s%3N; }

T0=$(now_ms)
EVENTS=()
# Width of the "who" column; play.sh widens it to its longest container name.
TIMELINE_WHO_WIDTH=6
# event MILLIS WHO TEXT: records one timeline line.
event() {
    local ms=$(($1 - T0)) who=$2
    shift 2
    EVENTS+=("$(printf '%09d|%s|%s' "$ms" "$who" "$*")")
}
print_timeline() {
    local ms who text
    printf '%s\n' "${EVENTS[@]}" | sort -t'|' -k1,1n -s | while IFS='|' read -r ms who text; do
        ms=$((10#$ms))
        printf '  %s%3d.%03ds%s  %-*s %s\n' "$D" $((ms / 1000)) $((ms % 1000)) "$N" "$TIMELINE_WHO_WIDTH" "$who" "$text"
    done
}
