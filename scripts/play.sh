#!/usr/bin/env bash
# Plays an example as real containers on this machine, in one command, and shows what happened.
#
#   scripts/play.sh examples/dind-job.yaml          # a Job's pod: the build and its dind sidecar
#   scripts/play.sh --fail examples/demo-pod.yaml   # the main fails: the sidecar still stops
#   kubectl supervise inject -f examples/unwired/demo-pod.yaml --main job \
#       --ready redis=tcp://127.0.0.1:6379 | scripts/play.sh -      # FILE - : the manifest on stdin
#
# Any Pod, Job, CronJob (one run of its job), `kind: List` or multi-document file, the Buildkite
# step of examples/buildkite/ and the sidecar spec of examples/pipeline-sidecar/ becomes a pod
# that the private, offline podman of scripts/podman-env.sh runs, with local stand-ins for the
# images (no registry, no network; see docs/containers.md). Native sidecars are stopped with
# SIGTERM once the other containers are done and exec probes are run, as the kubelet would. It
# prints every container's logs, a timeline, and the pod's result.
#
# Options: --keep           leave the pod and its volumes for inspection (prints how to remove them)
#          --fail           make the command of each `supervisor main ... --` exit 3
#          --timeout DUR    give up after DUR (default 5m; 90, 90s, 2m, 1h): exit 124
#          --bin PATH       the static supervisor (default: $SV_STATIC_BIN, else
#                           scripts/build-static.sh builds it)
# Needs: root, podman, runc, busybox-static and python3 with PyYAML (scripts/setup.sh installs
# them). SV_PODMAN_DIR: where podman keeps its images (default ${TMPDIR:-/tmp}/supervisor-podman).
#
# Exits with the pod's result: 0 when it succeeded, else the code of the first failing main
# container (of another container when every main succeeded); 2 for bad usage or a file with
# nothing to play, 124 after --timeout, 125 when this machine cannot play it (the line says why),
# 130 or 143 when interrupted. The pod and its volumes are removed however it ends, unless --keep.
set -uo pipefail

REPO=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
# shellcheck source=scripts/timeline.sh
. "$REPO/scripts/timeline.sh"

usage() { echo "play: $*" >&2; exit 2; }
die() { echo "play: $*" >&2; exit 125; }

KEEP='' FAIL='' TIMEOUT=5m FILE=''
BIN=${SV_STATIC_BIN:-} BIN_FROM=${SV_STATIC_BIN:+SV_STATIC_BIN=}
while [ $# -gt 0 ]; do
    case "$1" in
    --keep) KEEP=1 ;;
    --fail) FAIL=1 ;;
    --timeout) [ $# -gt 1 ] || usage "--timeout needs a duration (try --help)"; TIMEOUT=$2; shift ;;
    --timeout=*) TIMEOUT=${1#--timeout=} ;;
    --bin) [ $# -gt 1 ] || usage "--bin needs a path (try --help)"; BIN=$2 BIN_FROM="--bin "; shift ;;
    --bin=*) BIN=${1#--bin=} BIN_FROM="--bin " ;;
    -h | --help) awk 'NR > 1 && !/^#/ { exit } NR > 1 { sub(/^# ?/, ""); print }' "$0"; exit 0 ;;
    -) [ -z "$FILE" ] || usage "one file at a time: $FILE and -"; FILE=- ;;
    -*) usage "unknown option $1 (try --help)" ;;
    *) [ -z "$FILE" ] || usage "one file at a time: $FILE and $1"; FILE=$1 ;;
    esac
    shift
done
[ -n "$FILE" ] || usage "which example? scripts/play.sh FILE, e.g. scripts/play.sh examples/dind-job.yaml"
[ "$FILE" = - ] || [ -f "$FILE" ] || usage "no such file: $FILE"
[ -z "$BIN" ] || { [ -f "$BIN" ] && [ -x "$BIN" ]; } || usage "$BIN_FROM$BIN: no executable supervisor binary there"

# duration_s DUR: seconds of 90, 90s, 2m, 1h, 1m30s; nothing when it is not one.
duration_s() {
    [[ $1 =~ ^([0-9]+h)?([0-9]+m)?([0-9]+s?)?$ && -n $1 ]] || return 1
    local h=${BASH_REMATCH[1]%h} m=${BASH_REMATCH[2]%m} s=${BASH_REMATCH[3]%s}
    echo $((10#${h:-0} * 3600 + 10#${m:-0} * 60 + 10#${s:-0}))
}
TIMEOUT_S=$(duration_s "$TIMEOUT") && [ "$TIMEOUT_S" -gt 0 ] ||
    usage "--timeout $TIMEOUT is not a duration (90, 90s, 2m, 1h, 1m30s)"

# --- what this machine needs ---------------------------------------------------------------
missing=()
command -v podman >/dev/null || missing+=("no podman")
command -v runc >/dev/null || missing+=("no runc")
command -v busybox >/dev/null || missing+=("no busybox (busybox-static)")
# Debian's python3-yaml serves the system python3, which a python3 earlier on PATH (pyenv's,
# say) may hide; that one is also slower to start.
PYTHON=/usr/bin/python3
"$PYTHON" -c 'import yaml' 2>/dev/null || PYTHON=python3
"$PYTHON" -c 'import yaml' 2>/dev/null || missing+=("no python3 with PyYAML (python3-yaml)")
[ "$(id -u)" = 0 ] || missing+=("not root (podman runs rootful here)")
if [ ${#missing[@]} -gt 0 ]; then
    why=$(printf '%s, ' "${missing[@]}")
    die "cannot play here: ${why%, }; it needs root, podman, runc, busybox-static and python3-yaml (scripts/setup.sh installs them)"
fi

WORK=$(mktemp -d "${TMPDIR:-/tmp}/supervisor-play.XXXXXX") || die "cannot create a temporary directory"
in_list() {
    local x=$1
    shift
    printf '%s\n' "$@" | grep -qxF -- "$x"
}

# cleanup: removes every pod of this run (a pod not made yet is ignored), unless --keep; then it
# says how to remove those that were played ($WORK/played, written by the player).
cleanup() {
    local pod played=''
    [ ! -s "$WORK/played" ] || played=$(cat "$WORK/played")
    if [ -n "$KEEP" ] && [ -n "$played" ]; then
        echo "${D}kept (--keep): inspect with '. scripts/podman-env.sh $SV_PODMAN_DIR && podman ps -a --pod'; remove with:${N}"
    fi
    for pod in "$WORK"/pod-*.sh; do
        [ -f "$pod" ] || continue
        # shellcheck source=/dev/null
        . "$pod"
        if [ -z "$KEEP" ]; then
            # Whatever still runs (a timeout, ^C) is killed at once: the player gave up on it.
            podman pod rm --force --ignore --time 0 "$PLAY_POD" >/dev/null 2>&1
            [ ${#PLAY_VOLUMES[@]} -eq 0 ] || podman volume rm --force "${PLAY_VOLUMES[@]}" >/dev/null 2>&1
        elif in_list "$pod" "$played"; then
            echo "  podman pod rm -f $PLAY_POD${PLAY_VOLUMES[*]:+ && podman volume rm --force ${PLAY_VOLUMES[*]}}"
        fi
    done
    rm -rf "$WORK"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

# shellcheck source=scripts/podman-env.sh
. "$REPO/scripts/podman-env.sh" "${SV_PODMAN_DIR:-${TMPDIR:-/tmp}/supervisor-podman}"
standins=()
for ((i = 0; i < ${#SV_STANDINS[@]}; i += 2)); do standins+=(--standin "${SV_STANDINS[i]}=${SV_STANDINS[i + 1]}"); done
fail_arg=()
[ -z "$FAIL" ] || fail_arg=(--fail)
SHOWN=$FILE
if [ "$FILE" = - ]; then
    # The manifest on stdin, e.g. from kubectl supervise inject: read once, shown as "stdin".
    mkdir "$WORK/in" && FILE=$WORK/in/stdin.yaml SHOWN=stdin && cat >"$FILE" ||
        die "cannot read the manifest from stdin"
fi
RUN_ID=$(printf '%x%x' $$ "$(date +%s)")
"$PYTHON" "$REPO/scripts/play-pods.py" --out "$WORK" --id "$RUN_ID" --prefix "$SV_PREFIX" \
    --as "$SHOWN" "${standins[@]}" "${fail_arg[@]}" "$FILE" || exit 2

sv_podman_ok || die "podman is installed but cannot run here (see the line above)"

# --- the binary and the images -------------------------------------------------------------
prepare() {
    local pod images=()
    if [ -z "$BIN" ]; then
        echo "${D}building the static supervisor (scripts/build-static.sh)...${N}"
        BIN=$("$REPO/scripts/build-static.sh") || die "the static build failed (see above)"
        BIN=$REPO/$BIN
    fi
    for pod in "$WORK"/pod-*.sh; do
        # shellcheck source=/dev/null
        . "$pod"
        images+=("${PLAY_IMAGES[@]}")
    done
    echo "${D}preparing images (first run: about 20 s)...${N}"
    read -ra images <<<"$(printf '%s\n' "${images[@]}" | sort -u | tr '\n' ' ')"
    sv_images_for "$BIN" "${images[@]}" || die "could not build the local images (see above)"
}

# --- playing one pod -------------------------------------------------------------------------
role_of() {
    if in_list "$1" "${PLAY_INITS[@]}"; then echo init
    elif in_list "$1" "${PLAY_NATIVES[@]}"; then echo "native sidecar"
    elif in_list "$1" "${PLAY_MAINS[@]}"; then echo main
    else echo sidecar; fi
}

# Supervisor's own log lines (in the log file of container $1) become timeline events: they
# say, in words, what it did and when. Not anchored at the line's start: the daemon writes to
# the same stream, and a partial line of its own may precede one of supervisor's (each of
# those is one write). A long quoted argument (a script) becomes <script>: the logs printed
# above the timeline have it in full.
supervisor_events() {
    local who=$1 ts level text
    while read -r ts level text; do
        [ "$level" = INFO ] || text="$level $text"
        [ ${#text} -le 160 ] || text="${text:0:157}..."
        event "$(iso_ms "$ts")" "$who" "$text"
    done < <(grep -oE '[0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9:.]+Z +(INFO|WARN|ERROR) (main|sidecar|install|probe): .*' "$WORK/log.$who" |
        sed -E "s/(^|[ =])'([^']|'\\\\''){60,}'/\1<script>/g")
}

print_logs() {
    local c state
    for c in "${ALL[@]}"; do
        state=${STATUS[$c]:-not created}
        [ "$state" = exited ] && state="exited with code ${CODE[$c]}"
        echo "${B}--- $c ($(role_of "$c"), $state) ---${N}"
        sed 's/^/  /' "$WORK/log.$c"
    done
}

# poll: reads every container's state into STATUS and CODE, and records starts and exits as
# events. A container stays exited until play.sh restarts it, so no exit
# goes unseen.
declare -A STATUS STARTED CODE RESTARTS STOPPED
poll() {
    local name st start fin code c
    while read -r name st start fin code; do
        c=${name#"$PLAY_POD"-}
        [ "$st" != stopped ] || st=exited # stopped: exited, podman's cleanup not done yet
        [ "$fin" -ge "$start" ] 2>/dev/null || fin=$start # podman 4.3 may stamp a quick exit first
        if [ -z "${STARTED[$c]:-}" ] && [ "$st" != created ] && [ "$start" -gt 0 ] 2>/dev/null; then
            event "$start" "$c" "container started ($(role_of "$c"))"
            STARTED[$c]=$start
        fi
        if [ "$st" = exited ] && [ "${STATUS[$c]:-}" != exited ]; then
            event "$fin" "$c" "container exited with code $code"
        fi
        STATUS[$c]=$st CODE[$c]=$code
    done < <(podman inspect --format \
        '{{.Name}} {{.State.Status}} {{.State.StartedAt.UnixMilli}} {{.State.FinishedAt.UnixMilli}} {{.State.ExitCode}}' \
        "${ALL[@]/#/$PLAY_POD-}" 2>/dev/null)
}

# Done, for a container: exited, and not about to be restarted for restartPolicy OnFailure.
done_() {
    [ "${STATUS[$1]:-}" = exited ] || return 1
    [ "$PLAY_RESTART" != OnFailure ] || [ "${CODE[$1]}" = 0 ] || [ -n "${STOPPED[$1]:-}" ]
}
all_done() {
    local c
    for c in "$@"; do done_ "$c" || return 1; done
}

# restart_failed: the kubelet's part under restartPolicy OnFailure (which podman played as
# Never): a failed container restarts in place, without the kubelet's back-off delay. Once a
# Job's backoffLimit is used up, the Job controller's part: stop the pod, keep the failure.
restart_failed() {
    local c t
    for c in "${OTHERS[@]}"; do
        [ "${STATUS[$c]}" = exited ] && [ "${CODE[$c]}" != 0 ] && [ -z "${STOPPED[$c]:-}" ] || continue
        if [ -n "$PLAY_BACKOFF_LIMIT" ] && [ "${RESTARTS[$c]:-0}" -ge "$PLAY_BACKOFF_LIMIT" ]; then
            RESULT=${CODE[$c]} VERDICT="$c failed $((${RESTARTS[$c]:-0} + 1)) times: the Job's backoffLimit ($PLAY_BACKOFF_LIMIT) is used up"
            event "$(now_ms)" pod "backoffLimit $PLAY_BACKOFF_LIMIT used up: stopping the pod (the Job controller's part)"
            for t in "${PLAY_CONTAINERS[@]}"; do STOPPED[$t]=1; done
            podman pod stop --time "$PLAY_GRACE" "$PLAY_POD" >/dev/null 2>&1
            poll
            return
        fi
        RESTARTS[$c]=$((${RESTARTS[$c]:-0} + 1))
        t=$(now_ms)
        podman start "$PLAY_POD-$c" >/dev/null 2>&1
        STATUS[$c]=restarted
        event "$t" "$c" "restarted for restartPolicy OnFailure (restart ${RESTARTS[$c]}, the kubelet's part)"
    done
}

# stop_natives: the kubelet's part once the pod's other containers are done.
stop_natives() {
    local c
    event "$(now_ms)" pod "the others are done: SIGTERM to ${PLAY_NATIVES[*]} (the kubelet's part)"
    for c in "${PLAY_NATIVES[@]}"; do STOPPED[$c]=1; done
    podman stop --time "$PLAY_GRACE" "${PLAY_NATIVES[@]/#/$PLAY_POD-}" >/dev/null 2>&1
}

# run_probes: each container's exec probes in order (startup, then readiness, then liveness),
# the first that has not passed yet, while the container runs - the kubelet's part.
declare -A PASSED
run_probes() {
    local i c args
    declare -A tried=()
    for i in "${!PLAY_PROBE_CMD[@]}"; do
        c=${PLAY_PROBE_CONTAINER[i]}
        [ -z "${PASSED[$i]:-}" ] && [ -z "${tried[$c]:-}" ] && [ "${STATUS[$c]:-}" = running ] || continue
        tried[$c]=1
        eval "args=(${PLAY_PROBE_CMD[i]})"
        if timeout 10 podman exec "$PLAY_POD-$c" "${args[@]}" >/dev/null 2>&1; then
            PASSED[$i]=1
            event "$(now_ms)" "$c" "${PLAY_PROBE_KIND[i]}Probe passed: ${PLAY_PROBE_CMD[i]}"
        fi
    done
}
all_probes_passed() { [ ${#PASSED[@]} -eq ${#PLAY_PROBE_CMD[@]} ]; }

# release_app: the wrapped app of a container spec waits for play.sh until every exec probe of
# the pod has passed once, so that the timeline shows them before the sidecar stops.
release_app() {
    local t
    t=$(now_ms)
    if podman exec "$PLAY_POD-$PLAY_RELEASE" touch /tmp/play.released >/dev/null 2>&1; then
        event "$t" "$PLAY_RELEASE" "released by play.sh: every probe of the pod has passed"
        RELEASED=1
    fi
}

# play_loop: polls until the pod is done, doing the kubelet's part; sets RESULT when the pod
# ended otherwise than by its containers exiting (a failed init container, a backoffLimit,
# the timeout).
play_loop() {
    local deadline=$(($(now_ms) + TIMEOUT_S * 1000)) c natives_stopped=''
    RELEASED=''
    while :; do
        poll
        for c in "${PLAY_INITS[@]}"; do
            if [ "${STATUS[$c]:-}" = exited ] && [ "${CODE[$c]}" != 0 ]; then
                RESULT=${CODE[$c]} VERDICT="init container $c exited with code ${CODE[$c]}"
                return
            fi
        done
        run_probes
        [ -z "$PLAY_RELEASE" ] || [ -n "$RELEASED" ] || ! all_probes_passed || release_app
        [ "$PLAY_RESTART" != OnFailure ] || restart_failed
        [ -z "$RESULT" ] || return
        if [ -z "$natives_stopped" ] && [ ${#PLAY_NATIVES[@]} -gt 0 ] && all_done "${OTHERS[@]}"; then
            stop_natives
            natives_stopped=1
            continue
        fi
        ! all_done "${PLAY_CONTAINERS[@]}" || return
        if [ "$(now_ms)" -ge "$deadline" ]; then
            local running=() finished=()
            for c in "${PLAY_CONTAINERS[@]}"; do
                if done_ "$c"; then finished+=("$c"); else running+=("$c"); fi
            done
            event "$(now_ms)" pod "timeout: not complete after $TIMEOUT (${running[*]} still running)"
            RESULT=124 VERDICT="the pod did not complete within $TIMEOUT (still running: ${running[*]})"
            # What supervisor is for: on Kubernetes too, such a pod would never complete.
            [ ${#finished[@]} -eq 0 ] ||
                VERDICT+="; ${finished[*]} ended, but nothing stops ${running[*]} (a sidecar without supervisor? see kubectl supervise inject)"
            return
        fi
        # Each poll is a podman process (about 50 ms of CPU); times come from podman and
        # supervisor's logs, not from when a poll saw them, so polling often buys nothing.
        sleep 0.2
    done
}

# play_pod POD.sh: plays one pod to its end and shows it; sets RESULT (and VERDICT: why).
play_pod() {
    # shellcheck source=/dev/null
    . "$1"
    STATUS=() STARTED=() CODE=() RESTARTS=() STOPPED=() PASSED=() EVENTS=()
    ALL=("${PLAY_INITS[@]}" "${PLAY_CONTAINERS[@]}")
    OTHERS=()
    local c w=3
    for c in "${PLAY_CONTAINERS[@]}"; do in_list "$c" "${PLAY_NATIVES[@]}" || OTHERS+=("$c"); done
    for c in "${ALL[@]}"; do [ ${#c} -le "$w" ] || w=${#c}; done
    TIMELINE_WHO_WIDTH=$w
    echo "${B}pod $PLAY_POD${N}: $PLAY_WHAT, from $SHOWN (podman $(podman --version | cut -d' ' -f3))"
    for c in "${ALL[@]}"; do echo "  ${c}: $(role_of "$c")"; done
    for c in "${PLAY_NOTES[@]}"; do echo "  ${D}note: $c${N}"; done
    echo "$1" >>"$WORK/played"
    local cms=() f
    for f in "${PLAY_CONFIGMAPS[@]}"; do cms+=(--configmap "$f"); done
    T0=$(now_ms)
    event "$T0" pod "podman kube play"
    RESULT='' VERDICT=''
    if ! podman kube play --quiet --network none "${cms[@]}" "$PLAY_YAML" >/dev/null 2>"$WORK/play.log"; then
        echo "play: podman kube play failed:" >&2
        cat "$WORK/play.log" >&2
        RESULT=125
        return
    fi
    echo "${D}running (timeout ${TIMEOUT})...${N}"
    play_loop
    if [ -z "$RESULT" ]; then
        # The pod's phase: Failed when a container failed (native sidecars do not count, as in
        # Kubernetes); the code of the first failing main, else of the first failing other.
        RESULT=0
        for c in "${PLAY_MAINS[@]}" "${OTHERS[@]}"; do
            if [ "${CODE[$c]}" != 0 ]; then
                RESULT=${CODE[$c]} VERDICT="$c ($(role_of "$c")) exited with code ${CODE[$c]}"
                break
            fi
        done
    fi
    for c in "${ALL[@]}"; do
        podman logs "$PLAY_POD-$c" >"$WORK/log.$c" 2>&1
        supervisor_events "$c"
    done
    print_logs
    echo "${B}timeline${N} (${D}container states from podman; the other lines are supervisor's own log${N}):"
    print_timeline
    if [ "$RESULT" = 0 ]; then
        echo "${B}${G}pod Succeeded${N}"
    else
        echo "${B}${R}pod Failed${N}: $VERDICT"
    fi
}

# player: everything that takes time, in a process group of its own (see below).
player() {
    local pod final=0
    prepare
    for pod in "$WORK"/pod-*.sh; do
        play_pod "$pod"
        [ "$final" != 0 ] || final=$RESULT
    done
    exit "$final"
}

# bash 5.2 can abort ("reader_loop: bad jump") when a trap runs while it parses a $(...), and
# the player is full of them; so it runs in the background, in a process group of its own
# (set -m), while this process only waits. On ^C or SIGTERM it stops the player's whole group,
# then the EXIT trap removes what it made.
stop_player() {
    kill -TERM -- "-$PLAYER" 2>/dev/null
    wait "$PLAYER" 2>/dev/null
    exit "$1"
}
trap 'stop_player 130' INT
trap 'stop_player 143' TERM
set -m
player &
PLAYER=$!
set +m
wait "$PLAYER"
