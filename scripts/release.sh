#!/usr/bin/env bash
# Builds a release of both binaries for linux/amd64 and linux/arm64 into dist/:
#
#   scripts/release.sh 0.2.0            # VERSION must be the workspace's (Cargo.toml)
#   scripts/release.sh 0.2.0 --out DIR  # somewhere else than dist/
#   scripts/release.sh 0.2.0 --allow-dirty   # from uncommitted changes (not a release)
#
# What it writes (docs/release.md says what each is for and how CI checks it):
#   supervisor-VERSION-linux-{amd64,arm64}.tar.gz         the in-pod binary and LICENSE
#   kubectl-supervise-VERSION-linux-{amd64,arm64}.tar.gz  the plugin and LICENSE
#   NAME-VERSION-linux-ARCH.cdx.json                      a CycloneDX SBOM per binary and arch
#   supervise.yaml                                        the krew plugin manifest
#   supervisor-VERSION.oci.tar                            the install image, amd64 + arm64
#   kubectl-supervise-VERSION.oci.tar                     the webhook image, amd64 + arm64
#   SHA256SUMS                                            of every file above
#
# Theory of operation. Everything is a function of the commit: SOURCE_DATE_EPOCH is the
# commit's time and stamps every tar entry, image layer, image config and SBOM; the toolchain is
# rust-toolchain.toml's; the build runs in a target directory of its own (target/dist) with the
# paths of cargo's registry and of the checkout remapped (--remap-path-prefix), so the binaries
# do not depend on where either lives. Both architectures build on an x86-64 machine with no C
# cross compiler (.cargo/config.toml: rust-lld and musl's own objects). The images are FROM
# scratch, so podman builds the arm64 one without emulation; they are built in a private,
# throw-away podman (scripts/podman-env.sh), pushed as one OCI image index per image into an
# OCI layout, and that layout is tarred like the binaries. Nothing is published: the files are
# written to a temporary directory and moved into place at the end, so a failed run leaves no
# half release.
#
# Needs: git, podman and runc (root), cargo-cyclonedx, jq (scripts/setup.sh installs them).
# Environment: RELEASE_IMAGE_PREFIX (default ghcr.io/supervisor-dev), RELEASE_URL (where the
# tarballs will be downloaded from; default the GitHub release of tag vVERSION).
set -euo pipefail
REPO=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$REPO"

die() { echo "release: $*" >&2; exit 2; }
say() { echo "release: $*" >&2; }

VERSION=
OUT=$REPO/dist
DIRTY_OK=0
while [ $# -gt 0 ]; do
    case "$1" in
    --out) [ $# -ge 2 ] || die "--out needs a directory"; OUT=$2; shift ;;
    --out=*) OUT=${1#--out=} ;;
    --allow-dirty) DIRTY_OK=1 ;;
    -h | --help) sed -n '2,8p' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;;
    -*) die "unknown option $1 (try --help)" ;;
    *) [ -z "$VERSION" ] || die "one VERSION only (got $VERSION and $1)"; VERSION=$1 ;;
    esac
    shift
done
[ -n "$VERSION" ] || die "usage: scripts/release.sh VERSION [--out DIR] [--allow-dirty]"
[[ $VERSION =~ ^[0-9]+\.[0-9]+\.[0-9]+(-[0-9A-Za-z.-]+)?$ ]] ||
    die "VERSION $VERSION is not a semantic version like 0.2.0 (no leading v)"

# --- inputs -------------------------------------------------------------------------------------
for tool in git podman runc jq cargo-cyclonedx sha256sum gzip readelf; do
    command -v "$tool" >/dev/null || die "$tool is not installed (scripts/setup.sh installs it)"
done
[ "$(id -u)" = 0 ] || die "the images are built with rootful podman: run as root"
crate_version=$(cargo metadata --locked --no-deps --format-version 1 |
    jq -r '[.packages[] | select(.name == "supervisor" or .name == "kubectl-supervise") | .version] | unique | join(" ")')
[ "$crate_version" = "$VERSION" ] ||
    die "VERSION $VERSION is not the crates' version $crate_version: set [workspace.package] version in Cargo.toml first"
if [ -n "$(git status --porcelain --untracked-files=no)" ] && [ "$DIRTY_OK" = 0 ]; then
    die "the work tree has uncommitted changes: commit them, or pass --allow-dirty (the result names HEAD but is not it)"
fi
COMMIT=$(git rev-parse HEAD)
SOURCE_DATE_EPOCH=$(git log -1 --format=%ct HEAD)
export SOURCE_DATE_EPOCH
CREATED=$(date -u -d "@$SOURCE_DATE_EPOCH" +%Y-%m-%dT%H:%M:%SZ)
IMAGE_PREFIX=${RELEASE_IMAGE_PREFIX:-ghcr.io/supervisor-dev}
HOMEPAGE=https://github.com/supervisor-dev/supervisor
URL=${RELEASE_URL:-$HOMEPAGE/releases/download/v$VERSION}
CARGO_HOME_DIR=$(cd "${CARGO_HOME:-$HOME/.cargo}" && pwd -P)
# Rust triple and the architecture's name in krew, OCI and the file names.
ARCHES=(x86_64-unknown-linux-musl:amd64 aarch64-unknown-linux-musl:arm64)
BINS=(supervisor kubectl-supervise)
BUDGET=1048576 # the in-pod binary's size budget (1 MiB), as in scripts/build-static.sh

WORK=$(mktemp -d "${TMPDIR:-/tmp}/supervisor-release.XXXXXX")
STAGE=$WORK/dist
mkdir -p "$STAGE"
cleanup() {
    if [ -n "${SV_PODMAN_DIR:-}" ]; then
        podman system reset --force >/dev/null 2>&1 || true
        rm -rf "$(cat "$SV_PODMAN_DIR/runtime-dir" 2>/dev/null || echo /nonexistent)"
    fi
    rm -rf "$WORK"
}
trap cleanup EXIT
say "version $VERSION, commit ${COMMIT:0:12}, SOURCE_DATE_EPOCH $SOURCE_DATE_EPOCH ($CREATED)"

# --- binaries -------------------------------------------------------------------------------------
# bin_path TRIPLE NAME: where the release build leaves a binary.
bin_path() { echo "$REPO/target/dist/$1/release/$2"; }

build() {
    local triple=$1 flags
    # Appended to .cargo/config.toml's flags for the target (cargo joins the two lists).
    flags="['--remap-path-prefix=$CARGO_HOME_DIR=/cargo', '--remap-path-prefix=$REPO=/src']"
    say "building $triple (cargo build --release; the first build takes minutes)"
    env -u RUSTFLAGS -u CARGO_ENCODED_RUSTFLAGS -u CARGO_BUILD_TARGET -u SUPERVISOR_GIT_COMMIT \
        cargo build --release --locked --quiet --target "$triple" --target-dir "$REPO/target/dist" \
        --config "target.$triple.rustflags=$flags"
}

# check_bin TRIPLE NAME: static, the right machine, and (for the in-pod binary) within budget.
check_bin() {
    local triple=$1 name=$2 file machine size
    file=$(bin_path "$triple" "$name")
    if readelf --wide --program-headers --dynamic "$file" | grep -qE 'INTERP|\(NEEDED\)'; then
        die "$file is dynamically linked"
    fi
    machine=$(readelf --file-header "$file" | sed -n 's/^ *Machine: *//p')
    case "$triple:$machine" in
    x86_64-*:*X86-64* | aarch64-*:AArch64) ;;
    *) die "$file is built for $machine, not $triple" ;;
    esac
    size=$(stat -c %s "$file")
    if [ "$name" = supervisor ] && [ "$size" -gt "$BUDGET" ]; then
        die "$file is $size bytes, over the budget of $BUDGET"
    fi
    say "$name for $triple: static, $size bytes"
}

for pair in "${ARCHES[@]}"; do
    build "${pair%%:*}"
    for name in "${BINS[@]}"; do check_bin "${pair%%:*}" "$name"; done
done
# The host runs the x86_64 build: it must say what it is.
for name in "${BINS[@]}"; do
    got=$("$(bin_path x86_64-unknown-linux-musl "$name")" --version)
    want="$name $VERSION (${COMMIT:0:12}, x86_64-unknown-linux-musl)"
    [ "$got" = "$want" ] || die "$name --version says \"$got\", not \"$want\""
done

# --- tarballs -------------------------------------------------------------------------------------
# Reproducible tar: sorted names, the commit's time, no owner names; gzip without a name or time.
det_tar() {
    local out=$1 dir=$2
    shift 2
    tar --create --file=- --directory="$dir" --sort=name --format=gnu \
        --mtime="@$SOURCE_DATE_EPOCH" --owner=0 --group=0 --numeric-owner "$@" >"$out"
}
for pair in "${ARCHES[@]}"; do
    triple=${pair%%:*} arch=${pair##*:}
    for name in "${BINS[@]}"; do
        dir=$WORK/tar/$name-$arch
        mkdir -p "$dir"
        install -m 0755 "$(bin_path "$triple" "$name")" "$dir/$name"
        install -m 0644 LICENSE "$dir/LICENSE"
        det_tar "$WORK/$name.tar" "$dir" "$name" LICENSE
        gzip -n -9 <"$WORK/$name.tar" >"$STAGE/$name-$VERSION-linux-$arch.tar.gz"
    done
done

# --- SBOMs ----------------------------------------------------------------------------------------
# cargo-cyclonedx writes NAME_bin_TRIPLE.cdx.json beside each crate's Cargo.toml, with the
# checkout's path in the references of our own two crates: moved out, the path made /src (the
# binaries' remapped source root), keys sorted.
for pair in "${ARCHES[@]}"; do
    triple=${pair%%:*} arch=${pair##*:}
    cargo-cyclonedx cyclonedx --quiet --format json --spec-version 1.5 --describe binaries \
        --target "$triple" --target-in-filename
    for name in "${BINS[@]}"; do
        crate_dir=$REPO
        [ "$name" = supervisor ] || crate_dir=$REPO/$name
        src=$crate_dir/${name}_bin_$triple.cdx.json
        [ -f "$src" ] || die "cargo-cyclonedx wrote no $src"
        jq --sort-keys --arg repo "path+file://$REPO" \
            'walk(if type == "string" then (split($repo) | join("path+file:///src")) else . end)' \
            "$src" >"$STAGE/$name-$VERSION-linux-$arch.cdx.json"
        rm -f "$src"
    done
done

# --- krew -----------------------------------------------------------------------------------------
krew_platform() {
    local arch=$1 file sum
    file=kubectl-supervise-$VERSION-linux-$arch.tar.gz
    sum=$(sha256sum "$STAGE/$file" | cut -d' ' -f1)
    cat <<EOF
  - selector:
      matchLabels:
        os: linux
        arch: $arch
    uri: $URL/$file
    sha256: $sum
    bin: kubectl-supervise
    files:
      - from: kubectl-supervise
        to: .
      - from: LICENSE
        to: .
EOF
}
{
    cat <<EOF
apiVersion: krew.googlecontainertools.github.com/v1alpha2
kind: Plugin
metadata:
  name: supervise
spec:
  version: v$VERSION
  homepage: $HOMEPAGE
  shortDescription: Make a pod's main and sidecar containers end together
  description: |
    Wires Jobs, CronJobs and Pods so that their containers live and die
    together: sidecars (docker:dind, proxies, databases) stop when the main
    container is done, and the main stops when a sidecar it needs dies.
    \`inject\` rewrites manifests to run each container under supervisor, a
    tiny static PID 1 copied in by an init container; \`check\` reports
    wiring mistakes; \`webhook\` does the wiring in a cluster.
  caveats: |
    The pods it wires pull the init container image
    $IMAGE_PREFIX/supervisor:$VERSION: mirror it where your nodes pull from
    and pass --image (or KUBECTL_SUPERVISE_IMAGE).
  platforms:
EOF
    for pair in "${ARCHES[@]}"; do krew_platform "${pair##*:}"; done
} >"$STAGE/supervise.yaml"

# --- images ---------------------------------------------------------------------------------------
# shellcheck source=scripts/podman-env.sh
. "$REPO/scripts/podman-env.sh" "$WORK/podman"
sv_podman_ok || die "podman cannot run here"

# image NAME DOCKERFILE FILES...: NAME:VERSION for both architectures, as one OCI archive.
image() {
    local name=$1 dockerfile=$2 ref triple arch ctx f
    shift 2
    ref=$IMAGE_PREFIX/$name:$VERSION
    podman manifest create "localhost/release/$name:list" >/dev/null
    for pair in "${ARCHES[@]}"; do
        triple=${pair%%:*} arch=${pair##*:}
        ctx=$WORK/ctx/$name-$arch
        mkdir -p "$ctx"
        for f in "$@"; do install -m 0755 "$(bin_path "$triple" "$f")" "$ctx/$f"; done
        # --no-cache: buildah 1.28 reuses the other architecture's cached steps.
        sv_podman_copy build --quiet --no-cache --pull=never --network none \
            --platform "linux/$arch" --timestamp "$SOURCE_DATE_EPOCH" -f "$dockerfile" \
            --label "org.opencontainers.image.version=$VERSION" \
            --label "org.opencontainers.image.revision=$COMMIT" \
            --label "org.opencontainers.image.created=$CREATED" \
            --label "org.opencontainers.image.source=$HOMEPAGE" \
            -t "localhost/release/$name:$arch" "$ctx" >"$WORK/build.log" 2>&1 ||
            { cat "$WORK/build.log" >&2; die "podman build of $name for $arch failed"; }
        podman manifest add "localhost/release/$name:list" "containers-storage:localhost/release/$name:$arch" >/dev/null
    done
    sv_podman_copy manifest push --quiet --all --format oci "localhost/release/$name:list" \
        "oci:$WORK/oci-$name:$ref" || die "podman manifest push of $name failed"
    det_tar "$STAGE/$name-$VERSION.oci.tar" "$WORK/oci-$name" blobs index.json oci-layout
    say "image $ref: $(jq -r '.manifests[0].digest' "$WORK/oci-$name/index.json") (amd64 + arm64)"
}
image supervisor "$REPO/docker/Dockerfile" supervisor
image kubectl-supervise "$REPO/docker/webhook/Dockerfile" supervisor kubectl-supervise

# --- checksums, and into place --------------------------------------------------------------------
(cd "$STAGE" && find . -maxdepth 1 -type f -printf '%f\n' | LC_ALL=C sort | xargs sha256sum) >"$WORK/SHA256SUMS"
mv "$WORK/SHA256SUMS" "$STAGE/SHA256SUMS"
rm -rf "$OUT.tmp"
mv "$STAGE" "$OUT.tmp"
rm -rf "$OUT"
mv "$OUT.tmp" "$OUT"
say "wrote $(find "$OUT" -type f | wc -l) files to $OUT"
cat "$OUT/SHA256SUMS"
