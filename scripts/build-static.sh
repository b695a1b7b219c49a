#!/usr/bin/env bash
# Builds the fully static release binary and prints its path. musl when the target is installed,
# else glibc with crt-static. With --check: also verify it is static and within the size budget.
set -euo pipefail
cd "$(dirname "$0")/.."
BUDGET=${SUPERVISOR_SIZE_BUDGET:-1048576}   # 1 MiB
if rustup target list --installed 2>/dev/null | grep -qx x86_64-unknown-linux-musl; then
    target=x86_64-unknown-linux-musl
    cargo build --release --locked --target "$target" >&2
else
    target=x86_64-unknown-linux-gnu
    RUSTFLAGS="-C target-feature=+crt-static" cargo build --release --locked --target "$target" >&2
fi
bin=target/$target/release/supervisor
if [ "${1:-}" = "--check" ]; then
    info=$(file -L "$bin" 2>/dev/null || true)
    if readelf -l "$bin" | grep -q INTERP || readelf -d "$bin" | grep -q NEEDED; then
        echo "build-static: $bin is dynamically linked: $info" >&2
        exit 1
    fi
    size=$(stat -c %s "$bin")
    echo "build-static: $bin is static, $size bytes (budget $BUDGET)" >&2
    if [ "$size" -gt "$BUDGET" ]; then
        if [ "$target" = x86_64-unknown-linux-musl ]; then
            echo "build-static: over the size budget" >&2
            exit 1
        fi
        # The budget is the musl build's; static glibc carries about 1 MiB more of libc.
        echo "build-static: WARNING: the glibc fallback is over the musl size budget (install the musl target)" >&2
    fi
fi
echo "$bin"
