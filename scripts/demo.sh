#!/usr/bin/env bash
# One-command local pod demo: a job and a Redis sidecar sharing an emptyDir, each container with
# supervisor as PID 1 of its own PID namespace, and a readable timeline of what happens.
#
#   scripts/demo.sh            # the job succeeds: the sidecar stops, the pod Succeeded (exit 0)
#   scripts/demo.sh --fail     # the job fails: the sidecar still stops, the pod Failed (exit 3)
#
# Options: --mode podman|unshare (default: podman when it works here, else unshare),
#          --bin PATH (a supervisor binary; default: build the static one with cargo).
# Needs: redis-server and redis-cli; for --mode podman also root, podman, runc and
# busybox-static (the pod is examples/demo-pod.yaml, played with `podman kube play`); for
# --mode unshare, util-linux's unshare and iproute2 (works as an unprivileged user where user
# namespaces are enabled).
#
# Exits with the pod's result: 0 when it Succeeded, the job's exit code when it Failed.
set -euo pipefail

REPO=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
FAIL=0
MODE=
BIN=${SV_STATIC_BIN:-}
while [ $# -gt 0 ]; do
    case "$1" in
    --fail) FAIL=1 ;;
    --mode) MODE=$2; shift ;;
    --mode=*) MODE=${1#--mode=} ;;
    --bin) BIN=$2; shift ;;
    --bin=*) BIN=${1#--bin=} ;;
    -h | --help) sed -n '2,16p' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;;
    *) echo "demo: unknown argument $1 (try --help)" >&2; exit 2 ;;
    esac
    shift
done

# shellcheck source=scripts/timeline.sh
. "$REPO/scripts/timeline.sh"
# The time of supervisor's "main: started CMD as pid N" log line (when the command really ran,
# after --wait-for), from a log on stdin.
main_started_ms() {
    local ts
    ts=$(grep -m1 -E '^[0-9T:.-]+Z +INFO main: started ' | cut -d' ' -f1) || true
    [ -n "$ts" ] && iso_ms "$ts"
}
# The job's own output, without supervisor's log lines.
job_output() { grep '^job:' | sed 's/^/  /' || true; }
json_field() { sed -n "s/.*\"$2\":\"\\{0,1\\}\\([^\",}]*\\).*/\\1/p" "$1"; }
die() { echo "demo: $*" >&2; exit 1; }

# --- the binary ---------------------------------------------------------------------------
if [ -z "$BIN" ]; then
    BIN=$REPO/target/x86_64-unknown-linux-musl/release/supervisor
    # Said before the build, and cargo's own progress shown: the first build takes minutes.
    echo "${B}building the static supervisor${N} (cargo build --release -p supervisor; the first build takes about 2 minutes on 2 cores, later ones seconds)"
    (cd "$REPO" && cargo build --release --locked -p supervisor --target x86_64-unknown-linux-musl) ||
        die "the build failed: scripts/setup.sh installs the toolchain and targets it needs (rust-toolchain.toml)"
fi
[ -x "$BIN" ] || die "no supervisor binary at $BIN"
BIN=$(cd "$(dirname "$BIN")" && pwd)/$(basename "$BIN")
if ! command -v redis-server >/dev/null || ! command -v redis-cli >/dev/null; then
    die "the demo's sidecar is Redis: install redis-server and redis-cli (apt-get install redis-server)"
fi

# --- choose the runtime -------------------------------------------------------------------
podman_works() {
    [ "$(id -u)" = 0 ] && command -v podman >/dev/null && command -v runc >/dev/null &&
        command -v busybox >/dev/null
}
if [ -z "$MODE" ]; then
    if podman_works; then MODE=podman; else MODE=unshare; fi
fi

finish() {
    local code=$1
    if [ "$code" = 0 ]; then
        echo "${B}${G}pod Succeeded${N}"
    else
        echo "${B}${R}pod Failed${N} (the job exited with code $code)"
    fi
    exit "$code"
}

# --- podman: the pod of examples/demo-pod.yaml -------------------------------------------
run_podman() {
    # shellcheck source=scripts/podman-env.sh
    . "$REPO/scripts/podman-env.sh" "${SV_PODMAN_DIR:-${TMPDIR:-/tmp}/supervisor-podman}"
    sv_podman_ok || die "podman cannot run here; try --mode unshare"
    echo "${D}preparing images (first run: a few seconds)...${N}"
    sv_images_demo "$BIN" || die "could not build the demo images"
    local id pod vol yaml dir
    id=$(printf '%x%x' $$ "$(date +%s)")
    pod=supervisor-demo-$id
    vol=shared-$id
    dir=$(mktemp -d)
    yaml=$dir/pod.yaml
    # The manifest as published, with local images, a fresh volume and pod name, and DEMO_FAIL.
    sed -e "s#ghcr.io/supervisor-dev/supervisor:[^ ]*#$SV_PREFIX/supervisor#" \
        -e "s#redis:7-alpine#$SV_PREFIX/redis#" \
        -e "s#name: supervisor-demo\$#name: $pod#" \
        -e "s#name: shared\$#name: $vol#" \
        -e "/name: DEMO_FAIL/{n;s#value: \"0\"#value: \"$FAIL\"#}" \
        "$REPO/examples/demo-pod.yaml" >"$yaml"
    # shellcheck disable=SC2317 # called by the EXIT trap
    cleanup() {
        podman kube down "$yaml" >/dev/null 2>&1 || true
        podman pod rm --force --ignore "$pod" >/dev/null 2>&1 || true
        podman volume rm --force "$vol" >/dev/null 2>&1 || true
        rm -rf "$dir"
    }
    trap cleanup EXIT
    echo "${B}pod $pod${N}: job + redis sidecar, emptyDir $vol at /shared (podman $(podman --version | cut -d' ' -f3), examples/demo-pod.yaml)"
    T0=$(now_ms)
    event "$T0" pod "podman kube play: the init container copies supervisor into /shared/bin"
    echo "${D}running...${N}"
    # podman's cleanup of the finished init container may complain on stderr: keep it in a file.
    podman kube play --quiet --network none "$yaml" >/dev/null 2>"$dir/play.log" ||
        { cat "$dir/play.log" >&2; die "podman kube play failed"; }
    local mnt
    mnt=$(podman volume inspect --format '{{.Mountpoint}}' "$vol")
    local seen_redis='' seen_job='' seen_ready='' seen_done='' seen_job_exit='' deadline=$(($(now_ms) + 60000))
    local job_code=''
    while :; do
        local rs js
        rs=$(podman inspect --format '{{.State.Status}} {{.State.StartedAt.UnixMilli}} {{.State.FinishedAt.UnixMilli}} {{.State.ExitCode}}' "$pod-redis" 2>/dev/null || echo "missing 0 0 0")
        js=$(podman inspect --format '{{.State.Status}} {{.State.StartedAt.UnixMilli}} {{.State.FinishedAt.UnixMilli}} {{.State.ExitCode}}' "$pod-job" 2>/dev/null || echo "missing 0 0 0")
        local r_st r_start r_end r_code j_st j_start j_end j_code
        read -r r_st r_start r_end r_code <<<"$rs"
        read -r j_st j_start j_end j_code <<<"$js"
        if [ -z "$seen_redis" ] && [ "$r_start" -gt 0 ] 2>/dev/null && [ "$r_st" != created ]; then
            event "$r_start" redis "container started: supervisor is PID 1, runs redis-server"
            seen_redis=1
        fi
        if [ -z "$seen_job" ] && [ "$j_start" -gt 0 ] 2>/dev/null && [ "$j_st" != created ]; then
            event "$j_start" job "container started: supervisor is PID 1, waits for /shared/redis.ready"
            seen_job=1
        fi
        if [ -z "$seen_ready" ] && [ -s "$mnt/redis.ready" ]; then
            event "$(iso_ms "$(json_field "$mnt/redis.ready" ready_at)")" redis "ready: redis-server accepts connections, /shared/redis.ready written"
            seen_ready=1
        fi
        if [ -z "$seen_done" ] && [ -s "$mnt/job.done" ]; then
            local finished code
            finished=$(json_field "$mnt/job.done" finished_at)
            code=$(json_field "$mnt/job.done" exit_code)
            event "$(iso_ms "$finished")" job "main exited with code $code; done-marker /shared/job.done written"
            MARKER_MS=$(iso_ms "$finished")
            seen_done=1
        fi
        if [ -z "$seen_job_exit" ] && [ "$j_st" = exited ]; then
            event "$j_end" job "container exited with code $j_code"
            job_code=$j_code
            seen_job_exit=1
        fi
        if [ "$r_st" = exited ]; then
            if [ -n "$seen_done" ]; then
                event "$r_end" redis "saw the marker: redis-server stopped in $((r_end - MARKER_MS)) ms; container exited with code $r_code"
            else
                event "$r_end" redis "container exited with code $r_code before the job was done"
            fi
            [ -n "$seen_job_exit" ] && break
        fi
        [ "$(now_ms)" -lt "$deadline" ] || { podman ps -a --pod; die "the pod did not complete within 60s"; }
        sleep 0.05
    done
    local log started
    log=$(podman logs "$pod-job" 2>&1)
    started=$(main_started_ms <<<"$log")
    [ -n "$started" ] && event "$started" job "main started: sh -ec <script> (redis is ready)"
    print_timeline
    echo "${D}job output:${N}"
    job_output <<<"$log"
    [ "$r_code" = 0 ] || { echo "the sidecar exited with $r_code"; podman logs "$pod-redis" >&2; }
    finish "$job_code"
}

# --- unshare: the same pod from namespaces -----------------------------------------------
# A network namespace plays the pod's (both containers reach each other on 127.0.0.1); each
# container gets its own PID and mount namespace with /proc mounted, supervisor as PID 1, and the
# temporary directory below plays the emptyDir (at its own path: there is no image to mount into).
run_unshare() {
    command -v unshare >/dev/null || die "neither podman nor unshare is available"
    if [ "${SV_DEMO_IN_POD_NETNS:-}" != 1 ]; then
        local userns=()
        [ "$(id -u)" = 0 ] || userns=(--map-root-user)
        local again=(--mode unshare --bin "$BIN")
        [ "$FAIL" = 1 ] && again+=(--fail)
        SV_DEMO_IN_POD_NETNS=1 exec unshare "${userns[@]}" --net -- "$0" "${again[@]}"
    fi
    ip link set lo up || die "cannot bring up loopback in the pod's network namespace"
    local dir S
    dir=$(mktemp -d)
    S=$dir/shared
    mkdir -p "$S"
    local rpid='' jpid=''
    # shellcheck disable=SC2317 # called by the EXIT trap
    cleanup() {
        [ -n "$rpid" ] && kill -KILL "$rpid" 2>/dev/null
        [ -n "$jpid" ] && kill -KILL "$jpid" 2>/dev/null
        wait 2>/dev/null
        rm -rf "$dir"
    }
    trap cleanup EXIT
    container() { unshare --pid --fork --mount-proc "$@"; }
    echo "${B}pod (unshare namespaces)${N}: job + redis sidecar, emptyDir at $S"
    echo "${D}running...${N}"
    T0=$(now_ms)
    "$BIN" install "$S/bin" >/dev/null || die "supervisor install failed"
    event "$(now_ms)" pod "init: supervisor installed into $S/bin"
    # The two containers of examples/demo-pod.yaml, with the emptyDir at $S instead of /shared.
    container "$S/bin/supervisor" sidecar --wait-file="$S/job.done" \
        --ready-when=tcp://127.0.0.1:6379 --ready-file="$S/redis.ready" -- \
        redis-server --save "" --appendonly no --port 6379 >"$dir/redis.log" 2>&1 &
    rpid=$!
    event "$(now_ms)" redis "container started: supervisor is PID 1, runs redis-server"
    # shellcheck disable=SC2016 # the script is expanded by the job's shell
    DEMO_FAIL=$FAIL container "$S/bin/supervisor" main --done-file="$S/job.done" \
        --wait-for="file:$S/redis.ready" --wait-timeout=30s -- sh -ec '
            redis-cli -h 127.0.0.1 SET demo:greeting "hello from the main container" >/dev/null
            echo "job: redis says: $(redis-cli -h 127.0.0.1 GET demo:greeting)"
            if [ "$DEMO_FAIL" = 1 ]; then
              echo "job: failing on purpose (DEMO_FAIL=1)"
              exit 3
            fi
            echo "job: done"' >"$dir/job.log" 2>&1 &
    jpid=$!
    event "$(now_ms)" job "container started: supervisor is PID 1, waits for $S/redis.ready"
    local seen_ready='' seen_done='' job_code='' r_code='' deadline=$(($(now_ms) + 60000)) marker_ms=0
    while :; do
        if [ -z "$seen_ready" ] && [ -s "$S/redis.ready" ]; then
            event "$(iso_ms "$(json_field "$S/redis.ready" ready_at)")" redis "ready: redis-server accepts connections, redis.ready written"
            seen_ready=1
        fi
        if [ -z "$seen_done" ] && [ -s "$S/job.done" ]; then
            marker_ms=$(iso_ms "$(json_field "$S/job.done" finished_at)")
            event "$marker_ms" job "main exited with code $(json_field "$S/job.done" exit_code); done-marker job.done written"
            seen_done=1
        fi
        if [ -z "$job_code" ] && ! kill -0 "$jpid" 2>/dev/null; then
            job_code=0
            wait "$jpid" || job_code=$?
            event "$(now_ms)" job "container exited with code $job_code"
        fi
        if [ -z "$r_code" ] && ! kill -0 "$rpid" 2>/dev/null; then
            r_code=0
            wait "$rpid" || r_code=$?
            local t
            t=$(now_ms)
            if [ -n "$seen_done" ]; then
                event "$t" redis "saw the marker: redis-server stopped in $((t - marker_ms)) ms; container exited with code $r_code"
            else
                event "$t" redis "container exited with code $r_code before the job was done"
            fi
        fi
        [ -n "$job_code" ] && [ -n "$r_code" ] && break
        [ "$(now_ms)" -lt "$deadline" ] || die "the pod did not complete within 60s"
        sleep 0.02
    done
    rpid='' jpid=''
    local started
    started=$(main_started_ms <"$dir/job.log")
    [ -n "$started" ] && event "$started" job "main started: sh -ec <script> (redis is ready)"
    print_timeline
    echo "${D}job output:${N}"
    job_output <"$dir/job.log"
    [ "$r_code" = 0 ] || { echo "the sidecar exited with $r_code"; cat "$dir/redis.log" >&2; }
    finish "$job_code"
}

case "$MODE" in
podman) run_podman ;;
unshare) run_unshare ;;
*) die "unknown --mode $MODE (podman or unshare)" ;;
esac
