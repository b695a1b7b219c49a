#!/usr/bin/env bash
# Builds the fully static release binary and prints its path. A plain `cargo build --release`
# targets x86_64-unknown-linux-musl (the default in .cargo/config.toml), so this builds exactly
# what a Rust user's first build gives. Where the musl target is not installed (a distribution's
# Rust without rustup), it falls back to glibc with crt-static, and says so.
# With --check: also verify that the binary is static and within the size budget.
set -euo pipefail
cd "$(dirname "$0")/.."
BUDGET=${SV_SIZE_BUDGET:-1048576}   # 1 MiB
musl=x86_64-unknown-linux-musl
# The target's standard library exists only when the target is installed.
if [ -d "$(rustc --print target-libdir --target "$musl" 2>/dev/null)" ]; then
    target=$musl
    # CARGO_BUILD_TARGET would override the default this script means to check.
    env -u CARGO_BUILD_TARGET cargo build --release --locked >&2
else
    target=x86_64-unknown-linux-gnu
    echo "build-static: the $musl target is not installed (rustup target add $musl); building glibc with crt-static instead" >&2
    RUSTFLAGS="-C target-feature=+crt-static" cargo build --release --locked --target "$target" >&2
fi
bin=target/$target/release/supervisor
if [ "${1:-}" = "--check" ]; then
    if readelf --wide --program-headers --dynamic "$bin" | grep -qE 'INTERP|\(NEEDED\)'; then
        echo "build-static: $bin is dynamically linked: $(file -L "$bin" 2>/dev/null || true)" >&2
        exit 1
    fi
    size=$(stat -c %s "$bin")
    echo "build-static: $bin is static, $size bytes (budget $BUDGET)" >&2
    if [ "$size" -gt "$BUDGET" ]; then
        if [ "$target" = "$musl" ]; then
            echo "build-static: over the size budget" >&2
            exit 1
        fi
        # The budget is the musl build's; static glibc carries about 1 MiB more of libc.
        echo "build-static: WARNING: the glibc fallback is over the musl size budget (install the musl target)" >&2
    fi
fi
echo "$bin"
