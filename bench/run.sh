#!/usr/bin/env bash
# One-command benchmark of supervisor vs tini-static, dumb-init, catatonit and the shell loops.
# Usage: bench/run.sh [--quick] [--bin PATH] [--idle SECONDS] [--only PHASES] [--out DIR]
#                     [--name NAME] [--tmpdir DIR] [--keep-tmp] [--render-only]
# The binary: --bin PATH, else $SV_BIN, else built here with
#   cargo build --release --target x86_64-unknown-linux-musl
# Writes bench/results/latest.{md,json}, the plots (*.svg) and readme-table.md. See docs/bench.md.
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
repo="$(cd "$here/.." && pwd)"
bin="${SV_BIN:-}"
args=()
cmdline="bench/run.sh $*"
render_only=

while [ $# -gt 0 ]; do
    case "$1" in
        --bin) bin="$2"; shift 2 ;;
        --bin=*) bin="${1#--bin=}"; shift ;;
        --quick|--keep-tmp) args+=("$1"); shift ;;
        --render-only) render_only=1; args+=("$1"); shift ;;
        --idle|--only|--out|--name|--tmpdir) args+=("$1" "$2"); shift 2 ;;
        --idle=*|--only=*|--out=*|--name=*|--tmpdir=*) args+=("$1"); shift ;;
        -h|--help) sed -n '2,7p' "$0"; exit 0 ;;
        *) echo "bench/run.sh: unknown argument: $1" >&2; exit 2 ;;
    esac
done

# The plots need matplotlib: use the first python3 that has it (Debian's python3-matplotlib is
# for /usr/bin/python3, which may not be the python3 first on PATH).
pick_python() {
    for py in python3 /usr/bin/python3; do
        if command -v "$py" >/dev/null && "$py" -c 'import matplotlib' 2>/dev/null; then
            echo "$py"; return 0
        fi
    done
    return 1
}

if [ -n "$render_only" ]; then   # rewrite NAME.md (and plots, table) from NAME.json; no measurement
    exec "$(pick_python || echo python3)" "$here/bench.py" "${args[@]}"
fi

if [ "$(id -u)" -ne 0 ]; then
    echo "bench/run.sh: must run as root (unshare --pid, dockerd, apt-get)" >&2
    exit 2
fi

# Tools and peers. Install what is missing (Debian/Ubuntu).
need=()
command -v tini-static >/dev/null || need+=(tini)
command -v dumb-init >/dev/null || need+=(dumb-init)
command -v catatonit >/dev/null || need+=(catatonit)
command -v gcc >/dev/null || need+=(gcc libc6-dev)
command -v python3 >/dev/null || need+=(python3)
command -v unshare >/dev/null || need+=(util-linux)
command -v strip >/dev/null || need+=(binutils)
command -v nc >/dev/null || need+=(netcat-openbsd)   # the shell loops the gates replace
command -v curl >/dev/null || need+=(curl)
command -v timeout >/dev/null || need+=(coreutils)
pick_python >/dev/null || need+=(python3-matplotlib)
if [ ${#need[@]} -gt 0 ]; then
    if command -v apt-get >/dev/null; then
        echo "bench: installing ${need[*]}" >&2
        DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends "${need[@]}" >&2 ||
            { apt-get update >&2 && DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends "${need[@]}" >&2; }
    else
        echo "bench: missing ${need[*]} and no apt-get; peers that are absent are skipped" >&2
    fi
fi
command -v dockerd >/dev/null || echo "bench: dockerd not found (apt-get install docker.io); the dockerd measurement is skipped" >&2
command -v perf >/dev/null || echo "bench: perf not found (apt-get install linux-perf); the idle perf column and the probe rate are skipped" >&2
if ! py="$(pick_python)"; then   # no Debian package: PyPI, for the python3 on PATH
    echo "bench: installing matplotlib from PyPI for $(command -v python3)" >&2
    python3 -m pip install --quiet matplotlib >&2 || true
    py="$(pick_python)" || { py=python3; echo "bench: no matplotlib; the plots are skipped" >&2; }
fi

source_note=""
if [ -z "$bin" ]; then
    target=x86_64-unknown-linux-musl
    tdir="${CARGO_TARGET_DIR:-$repo/target}"
    echo "bench: building supervisor (cargo build --release --target $target)" >&2
    if (cd "$repo" && cargo build --release --target "$target" >&2); then
        bin="$tdir/$target/release/supervisor"
    else
        echo "bench: musl build failed; falling back to glibc with crt-static" >&2
        (cd "$repo" && RUSTFLAGS="-C target-feature=+crt-static" \
            cargo build --release --target x86_64-unknown-linux-gnu >&2)
        bin="$tdir/x86_64-unknown-linux-gnu/release/supervisor"
    fi
    rev="$(git -C "$repo" rev-parse --short HEAD 2>/dev/null || echo '?')"
    dirty="$(git -C "$repo" status --porcelain -- src Cargo.toml Cargo.lock 2>/dev/null | head -1)"
    source_note="built from $repo at $rev${dirty:+ + uncommitted changes}"
else
    src_repo="$(git -C "$(dirname "$bin")" rev-parse --show-toplevel 2>/dev/null || true)"
    if [ -n "$src_repo" ]; then
        source_note="given; its tree $src_repo is at $(git -C "$src_repo" rev-parse --short HEAD)"
    fi
fi
source_note="${SV_BIN_SOURCE:-$source_note}"
[ -x "$bin" ] || { echo "bench: no executable supervisor at $bin" >&2; exit 2; }

exec "$py" "$here/bench.py" --bin "$bin" --bin-source "$source_note" --command "$cmdline" "${args[@]}"
