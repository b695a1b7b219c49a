#!/usr/bin/env bash
# The seed's Docker-in-Docker Job, end to end, under faults (docs/dind.md). Each run injects an
# un-wired dind Job of examples/unwired/ with the README's one command (`kubectl-supervise inject
# -f FILE --main build`), plays it as a real podman pod with a real dockerd, and - in four runs
# of five - deals it a fault at a random moment: dockerd killed, the build killed, the pod
# deleted, dockerd slow to start. Then it checks the run against the documented tables and
# prints the counts.
#
#   scripts/dind-faults.sh [N [FIRST]]      N runs (default 20), seeds FIRST.. (default 1)
#   scripts/dind-faults.sh --seed S         one run again, with its timeline and every log
#
# Options: --variant plain|tls|native   only these variants (repeatable; default all three)
#          --fault KIND                 only these faults (none, dockerd-killed, build-killed,
#                                       pod-deleted, dockerd-slow; repeatable)
#          --bound DUR                  a run's bound (default 60s; 90, 90s, 2m, 500ms)
#          --patient                    wait out a main's documented --wait-timeout for a
#                                       sidecar that cannot come back (5m), instead of counting
#                                       the run as not finished within its bound
#          --rules                      print the table of rules and exit
#          --bin PATH                   the static supervisor (default: $SV_STATIC_BIN,
#                                       else scripts/build-static.sh builds it)
#          --kubectl-supervise PATH     the plugin (default: beside the supervisor binary)
#          --manifests DIR              DIR/{plain,tls,native}.yaml, already injected (the tests)
# Needs: root, podman, runc, busybox-static, docker.io (its files: dockerd, containerd, the CLI)
# and python3 with PyYAML (scripts/setup.sh installs them). SV_PODMAN_DIR: podman's directory
# (default ${TMPDIR:-/tmp}/supervisor-podman, shared with scripts/play.sh).
#
# Exits 0 when every run went as documented, 1 when one did not (each violation is a line, with
# the command that replays its seed), 2 for bad usage, 125 when this machine cannot play the
# runs (one line says why), 130 or 143 when interrupted. Every run is bounded in time, and its
# pod, containers and volumes are removed however the run or the script ends.
set -uo pipefail

REPO=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
usage() { echo "dind-faults: $*" >&2; exit 2; }
die() { echo "dind-faults: $*" >&2; exit 125; }

BIN=${SV_STATIC_BIN:-} BIN_FROM=${SV_STATIC_BIN:+SV_STATIC_BIN=}
KUBECTL='' MANIFESTS=''
rest=()
while [ $# -gt 0 ]; do
    case "$1" in
    --bin) [ $# -gt 1 ] || usage "--bin needs a path (try --help)"; BIN=$2 BIN_FROM="--bin "; shift ;;
    --bin=*) BIN=${1#--bin=} BIN_FROM="--bin " ;;
    --kubectl-supervise) [ $# -gt 1 ] || usage "--kubectl-supervise needs a path (try --help)"; KUBECTL=$2; shift ;;
    --kubectl-supervise=*) KUBECTL=${1#--kubectl-supervise=} ;;
    --manifests) [ $# -gt 1 ] || usage "--manifests needs a directory (try --help)"; MANIFESTS=$2; shift ;;
    --manifests=*) MANIFESTS=${1#--manifests=} ;;
    -h | --help) awk 'NR > 1 && !/^#/ { exit } NR > 1 { sub(/^# ?/, ""); print }' "$0"; exit 0 ;;
    *) rest+=("$1") ;;
    esac
    shift
done
[ -z "$BIN" ] || { [ -f "$BIN" ] && [ -x "$BIN" ]; } || usage "$BIN_FROM$BIN: no executable supervisor binary there"
[ -z "$KUBECTL" ] || { [ -f "$KUBECTL" ] && [ -x "$KUBECTL" ]; } ||
    usage "--kubectl-supervise $KUBECTL: no executable kubectl-supervise there"
[ -z "$MANIFESTS" ] || [ -d "$MANIFESTS" ] || usage "--manifests $MANIFESTS: not a directory"

# Debian's python3-yaml serves the system python3, which a python3 earlier on PATH may hide.
PYTHON=/usr/bin/python3
"$PYTHON" -c 'import yaml' 2>/dev/null || PYTHON=python3

# The command line is the Python's to judge; only --help, --rules and usage errors need nothing
# of this machine.
case " ${rest[*]:-} " in
*" --rules "*) exec "$PYTHON" "$REPO/scripts/dind-faults.py" --rules --podman-dir - --prefix - --manifests - ;;
esac
"$PYTHON" "$REPO/scripts/dind-faults.py" --check-usage "${rest[@]}" --podman-dir - --prefix - --manifests - || exit

# --- what this machine needs ---------------------------------------------------------------
missing=()
[ "$(id -u)" = 0 ] || missing+=("not root (podman runs rootful here)")
command -v podman >/dev/null || missing+=("no podman")
command -v runc >/dev/null || missing+=("no runc")
command -v busybox >/dev/null || missing+=("no busybox (busybox-static)")
for f in /usr/sbin/dockerd /usr/bin/containerd /usr/bin/docker; do
    [ -x "$f" ] || { missing+=("no $f (docker.io)"); break; }
done
"$PYTHON" -c 'import yaml' 2>/dev/null || missing+=("no python3 with PyYAML (python3-yaml)")
if [ ${#missing[@]} -gt 0 ]; then
    why=$(printf '%s, ' "${missing[@]}")
    die "cannot play here: ${why%, }; it needs root, podman, runc, busybox-static, docker.io and python3-yaml (scripts/setup.sh installs them)"
fi

# shellcheck source=scripts/podman-env.sh
. "$REPO/scripts/podman-env.sh" "${SV_PODMAN_DIR:-${TMPDIR:-/tmp}/supervisor-podman}"
sv_podman_ok || die "podman is installed but cannot run here (see the line above)"

# --- the binaries and the images -----------------------------------------------------------
if [ -z "$BIN" ]; then
    echo "building the static supervisor and kubectl-supervise (scripts/build-static.sh)..." >&2
    BIN=$("$REPO/scripts/build-static.sh") || die "the static build failed (see above)"
    BIN=$REPO/$BIN
fi
if [ -z "$KUBECTL" ] && [ -z "$MANIFESTS" ]; then
    KUBECTL=$(dirname "$BIN")/kubectl-supervise
    [ -x "$KUBECTL" ] || die "no kubectl-supervise beside $BIN: give --kubectl-supervise PATH"
fi
echo "preparing images (first run: about 20 s)..." >&2
sv_images_for "$BIN" supervisor dind-base docker-cli || die "could not build the local images (see above)"

args=(--podman-dir "$SV_PODMAN_DIR" --prefix "$SV_PREFIX")
for ((i = 0; i < ${#SV_STANDINS[@]}; i += 2)); do args+=(--standin "${SV_STANDINS[i]}=${SV_STANDINS[i + 1]}"); done
[ -z "$KUBECTL" ] || args+=(--kubectl-supervise "$KUBECTL")
[ -z "$MANIFESTS" ] || args+=(--manifests "$MANIFESTS")
# exec: INT and TERM reach the Python, which removes the pod under way before it exits.
exec "$PYTHON" "$REPO/scripts/dind-faults.py" "${args[@]}" "${rest[@]}"
