#!/usr/bin/env bash
# Installs what the tests, the demo, the benchmarks and scripts/release.sh use on a fresh Debian
# machine (root): packages, the toolchain and targets of rust-toolchain.toml, cargo-cyclonedx.
# Idempotent: a second run only checks. It installs and touches nothing else: services the
# packages start (redis, nginx, docker, containerd) keep running, since every test starts its
# own daemons on its own ports, sockets, pid files and data directories.
set -euo pipefail

packages=(
    python3 util-linux procps iproute2          # test helpers, unshare, ps, ip
    python3-yaml                                # scripts/play.sh reads the manifests
    binutils file                               # readelf, file: static-linking checks
    redis-server redis-tools nginx-light        # real sidecar daemons
    docker.io                                   # a real dockerd (+ containerd, runc)
    podman runc busybox-static uidmap           # real containers for images and examples
    tini dumb-init catatonit hyperfine strace   # peers and tools for the benchmarks
    qemu-user-static                            # runs the arm64 build in tests (tests/it/aarch64.rs)
    jq                                          # scripts/release.sh edits the SBOMs
)
missing=()
for p in "${packages[@]}"; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if [ ${#missing[@]} -gt 0 ]; then
    echo "setup: installing ${missing[*]}"
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -qq
    apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi
# rustup installs rust-toolchain.toml's toolchain and targets on the first cargo command, unless
# RUSTUP_AUTO_INSTALL=0 (then cargo only says to run `rustup toolchain install`): do it here.
cd "$(dirname "$0")/.."
if ! rustup target list --installed >/dev/null 2>&1; then
    rustup toolchain install
fi
for target in $(sed -n 's/^targets = \[\(.*\)\]/\1/p' rust-toolchain.toml | tr -d '",'); do
    if ! rustup target list --installed | grep -qx "$target"; then
        rustup target add "$target" || echo "setup: the $target target is unavailable: cargo build needs it (rust-toolchain.toml); scripts/build-static.sh falls back to glibc crt-static" >&2
    fi
done
# scripts/release.sh's SBOMs. A pinned version: its output is part of the release's digests.
cyclonedx=0.5.9
if [ "$(cargo-cyclonedx cyclonedx --version 2>/dev/null)" != "cargo-cyclonedx $cyclonedx" ]; then
    echo "setup: installing cargo-cyclonedx $cyclonedx (about 3 minutes on 2 cores)"
    cargo install --quiet --locked "cargo-cyclonedx@$cyclonedx"
fi
echo "setup: ok"
