#!/usr/bin/env bash
# Cargo unifies features across a workspace, so a crate that kubectl-supervise enabled more
# features of would grow the in-pod binary. This builds `supervisor` alone and as part of the
# plain workspace build, and fails unless both binaries are byte for byte the same. It also checks
# that both binaries of the workspace are static. Prints the sizes.
set -euo pipefail
cd "$(dirname "$0")/.."
target=${1:-x86_64-unknown-linux-musl}
dir=target/$target/release
cargo build --release --locked --target "$target" -p supervisor >&2
alone=$(stat -c %s "$dir/supervisor")
cp "$dir/supervisor" "$dir/supervisor.alone"
cargo build --release --locked --target "$target" >&2
together=$(stat -c %s "$dir/supervisor")
plugin=$(stat -c %s "$dir/kubectl-supervise")
for bin in "$dir/supervisor" "$dir/kubectl-supervise"; do
    if readelf -l "$bin" | grep -q INTERP || readelf -d "$bin" | grep -q NEEDED; then
        echo "check-workspace-size: $bin is dynamically linked" >&2
        exit 1
    fi
done
echo "check-workspace-size: supervisor $alone bytes alone, $together bytes in the workspace build; kubectl-supervise $plugin bytes (static)" >&2
if ! cmp -s "$dir/supervisor.alone" "$dir/supervisor"; then
    echo "check-workspace-size: the workspace build changed supervisor ($alone -> $together bytes): a shared crate gets more features from kubectl-supervise" >&2
    exit 1
fi
rm -f "$dir/supervisor.alone"
