#!/usr/bin/env bash
# Installs what the tests, the demo and the benchmarks use on a fresh Debian machine (root), and
# the musl target for the static build. Idempotent: a second run only checks. It installs and
# touches nothing else: services the packages start (redis, nginx, docker, containerd) keep
# running, since every test starts its own daemons on its own ports, sockets, pid files and data
# directories.
set -euo pipefail

packages=(
    python3 util-linux procps iproute2          # test helpers, unshare, ps, ip
    binutils file                               # readelf, file: static-linking checks
    redis-server redis-tools nginx-light        # real sidecar daemons
    docker.io                                   # a real dockerd (+ containerd, runc)
    podman runc busybox-static uidmap           # real containers for images and examples
    tini dumb-init catatonit hyperfine strace   # peers and tools for the benchmarks
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
if ! rustup target list --installed 2>/dev/null | grep -qx x86_64-unknown-linux-musl; then
    rustup target add x86_64-unknown-linux-musl || echo "setup: musl target unavailable: cargo build and cargo test need it (it is the default target); scripts/build-static.sh falls back to glibc crt-static" >&2
fi
echo "setup: ok"
