# shellcheck shell=bash
# A private, offline podman for supervisor's container tests and demo.
#
#   . scripts/podman-env.sh [DIR]     # DIR defaults to $SV_PODMAN_DIR, else ${TMPDIR:-/tmp}/supervisor-podman
#   sv_podman_ok || echo "no podman here"
#   sv_images_all target/x86_64-unknown-linux-musl/release/supervisor
#   sv_images_for target/x86_64-unknown-linux-musl/release/supervisor redis supervisor  # only those
#
# Theory of operation. Rootful podman 4.3 on this kind of host needs runc (crun fails on hybrid
# cgroups), cgroupfs, a file events logger and explicit ulimits. Everything podman keeps -
# images, containers, volumes - lives under DIR, and its runtime state in /run/sv-podman-HASH
# (HASH: of DIR's path), so nothing touches /var/lib/containers or /run/libpod (see
# sv_podman_copy for the one place podman 4.3 insists on) and two checkouts never share state.
# No registry is
# reachable, so base images are imported from root filesystems assembled from host files:
# busybox-static, and Debian's dockerd/containerd/runc or redis with their shared libraries.
# Each imported image carries a label with a hash of its recipe and inputs; a re-run with the
# same inputs imports nothing, so sourcing this file and calling sv_images_all is fast the
# second time. Image builds hold a lock on DIR, so parallel test threads and the demo can share it.
#
# Images (all under localhost/supervisor-it/):
#   busybox           busybox only: a stand-in for alpine, debian and the like
#   dind-base         busybox + Debian's docker engine, CLI and openssl + stand-ins for dockerd-entrypoint.sh
#                     and docker-entrypoint.sh: plays docker:dind (docker:27, docker:latest...)
#   docker-cli        dind-base with docker:cli's ENTRYPOINT and CMD: plays docker:27-cli
#   redis             busybox + Debian's redis-server and redis-cli: plays redis:7-alpine
#   cloud-sql-proxy   busybox + a shell stand-in for /cloud-sql-proxy (health + quitquitquit)
#   postgres          busybox + shell stand-ins for psql/pg_dump that talk to the proxy
#   fluent-bit        busybox + a shell stand-in for Fluent Bit's health and forward ports
#   supervisor        docker/Dockerfile: FROM scratch + the static binary
#   dind              docker/dind/Dockerfile built on dind-base
#   ci-agent          docker/ci-agent/Dockerfile built on dind-base

SV_REPO=${SV_REPO:-$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)}
SV_PREFIX=localhost/supervisor-it

sv_log() { printf '[podman-env] %s\n' "$*" >&2; }

# Writes the private configuration and exports CONTAINERS_CONF and CONTAINERS_STORAGE_CONF.
sv_podman_init() {
    local dir=${1:-${SV_PODMAN_DIR:-${TMPDIR:-/tmp}/supervisor-podman}}
    mkdir -p "$dir" || return 1
    dir=$(cd "$dir" && pwd)
    local hard
    hard=$(ulimit -Hn)
    [ "$hard" = unlimited ] && hard=1048576
    # Runtime state (runroot, tmp_dir: conmon's sockets and exit files) lives at a short path
    # named after DIR: under a long DIR (.../target/x86_64-unknown-linux-musl/tmp/podman),
    # podman 4.3 waits 20 s for every init container's exit ("Exceeded conmon timeout").
    local short
    short=/run/sv-podman-$(printf %s "$dir" | sha256sum | cut -c1-12)
    mkdir -p "$short/run" "$short/tmp" 2>/dev/null || {
        short=/tmp/${short#/run/}
        mkdir -p "$short/run" "$short/tmp" || return 1
    }
    mkdir -p "$dir/storage" "$dir/cache"
    # libpod's database pins the runroot and tmp_dir it was created with and then ignores the
    # configuration: a DIR made before they moved gets a fresh database, once (its images stay).
    if [ "$(cat "$dir/runtime-dir" 2>/dev/null)" != "$short" ]; then
        (
            flock 9
            if [ "$(cat "$dir/runtime-dir" 2>/dev/null)" != "$short" ]; then
                rm -f "$dir/storage/libpod/bolt_state.db"
                printf '%s\n' "$short" >"$dir/runtime-dir"
            fi
        ) 9>"$dir/runtime-dir.lock"
    fi
    sv__write_if_changed "$dir/containers.conf" "[containers]
default_ulimits = [\"nofile=$hard:$hard\", \"nproc=4096:4096\"]
netns = \"none\"
log_driver = \"k8s-file\"

[engine]
runtime = \"runc\"
cgroup_manager = \"cgroupfs\"
events_logger = \"file\"
events_logfile_path = \"$dir/events.log\"
tmp_dir = \"$short/tmp\"
image_copy_tmp_dir = \"$dir/cache\"
"
    sv__write_if_changed "$dir/storage.conf" "[storage]
driver = \"overlay\"
graphroot = \"$dir/storage\"
runroot = \"$short/run\"
"
    export SV_PODMAN_DIR=$dir
    export CONTAINERS_CONF=$dir/containers.conf
    export CONTAINERS_STORAGE_CONF=$dir/storage.conf
    export TMPDIR=${TMPDIR:-/tmp}
}

# Several scripts and tests may source this at once on a fresh DIR: each writes a temporary
# file of its own, so a reader never sees a half-written configuration.
sv__write_if_changed() {
    if [ ! -f "$1" ] || [ "$(cat "$1")" != "$2" ]; then
        local tmp
        tmp=$(mktemp "$1.XXXXXX") && printf '%s\n' "$2" >"$tmp" && mv "$tmp" "$1"
    fi
}

# True when podman is installed and can start (it prints why not otherwise).
sv_podman_ok() {
    command -v podman >/dev/null 2>&1 || { sv_log "podman is not installed"; return 1; }
    command -v runc >/dev/null 2>&1 || { sv_log "runc is not installed"; return 1; }
    [ "$(id -u)" = 0 ] || { sv_log "the container tests use rootful podman: run as root"; return 1; }
    local out
    if ! out=$(podman info --format '{{.Host.OCIRuntime.Name}}' 2>&1); then
        sv_log "podman info failed: $out"
        return 1
    fi
}

# Copies FILE (and, when it is dynamically linked, every library ldd names) into ROOTFS at
# DEST (default: same path). Libraries keep their host paths so the dynamic loader finds them.
sv_rootfs_copy() {
    local rootfs=$1 file=$2 dest=${3:-$2} lib
    mkdir -p "$rootfs$(dirname "$dest")"
    cp -pL "$file" "$rootfs$dest"
    for lib in $(ldd "$file" 2>/dev/null | grep -o '/[^ ]*'); do
        [ -e "$rootfs$lib" ] && continue
        mkdir -p "$rootfs$(dirname "$lib")"
        cp -pL "$lib" "$rootfs$lib"
    done
}

sv_rootfs_busybox() {
    local rootfs=$1 applet
    mkdir -p "$rootfs/bin" "$rootfs/etc" "$rootfs/tmp" "$rootfs/root" "$rootfs/usr/local/bin" \
        "$rootfs/proc" "$rootfs/sys" "$rootfs/dev" "$rootfs/var/run"
    chmod 1777 "$rootfs/tmp"
    cp -p "$(command -v busybox)" "$rootfs/bin/busybox"
    for applet in $(busybox --list); do
        [ -e "$rootfs/bin/$applet" ] || ln -s busybox "$rootfs/bin/$applet"
    done
    printf 'root:x:0:0:root:/root:/bin/sh\nnobody:x:65534:65534:nobody:/:/bin/false\n' >"$rootfs/etc/passwd"
    printf 'root:x:0:\nnogroup:x:65534:\n' >"$rootfs/etc/group"
    printf 'hosts: files\n' >"$rootfs/etc/nsswitch.conf"
    printf '127.0.0.1 localhost\n::1 localhost\n' >"$rootfs/etc/hosts"
}

# Runs podman for commands that copy images (import, build). Podman 4.3 keeps a blob-info
# cache under /var/lib/containers/cache whatever the configuration says; in a private mount
# namespace a directory of ours stands in for /var/lib/containers (or for /var/lib when that
# does not exist), so the host's stays untouched. Nothing these commands mount outlives them.
sv_podman_copy() {
    local target=/var/lib/containers
    [ -d "$target" ] || target=/var/lib
    local source=$SV_PODMAN_DIR/varlib${target#/var/lib}
    mkdir -p "$source"
    # shellcheck disable=SC2016 # expanded by the inner sh
    unshare --mount --propagation private -- \
        sh -c 'mount --bind "$1" "$2" && shift 2 && exec podman "$@"' sh "$source" "$target" "$@"
}

# sv_import NAME RECIPE_FUNCTION INPUT_FILES... [-- CHANGE...]
# Imports $SV_PREFIX/NAME from a rootfs made by RECIPE_FUNCTION ROOTFS, unless an image with
# the same recipe and inputs is already there.
sv_import() {
    local name=$1 recipe=$2
    shift 2
    local inputs=() changes=()
    while [ $# -gt 0 ] && [ "$1" != -- ]; do inputs+=("$1"); shift; done
    [ "${1:-}" = -- ] && shift
    changes=("$@")
    local key
    key=$({
        declare -f "$recipe" sv_rootfs_busybox sv_rootfs_copy
        printf '%s\n' "${changes[@]}"
        stat -L -c '%n %s %Y' "${inputs[@]}" "$(command -v busybox)"
    } | sha256sum | cut -c1-32)
    local image=$SV_PREFIX/$name have
    have=$(podman image inspect --format '{{index .Labels "io.supervisor.recipe"}}' "$image" 2>/dev/null)
    [ "$have" = "$key" ] && return 0
    sv_log "importing $image"
    local rootfs
    rootfs=$(mktemp -d "$SV_PODMAN_DIR/cache/rootfs.XXXXXX") || return 1
    local args=(--change "LABEL io.supervisor.recipe=$key")
    local c
    for c in "${changes[@]}"; do args+=(--change "$c"); done
    if "$recipe" "$rootfs" && tar -C "$rootfs" -c . | sv_podman_copy import --quiet "${args[@]}" - "$image" >/dev/null; then
        rm -rf "$rootfs"
    else
        rm -rf "$rootfs"
        sv_log "could not import $image"
        return 1
    fi
}

sv__recipe_busybox() { sv_rootfs_busybox "$1"; }

SV_DIND_FILES=(/usr/sbin/dockerd /usr/bin/containerd /usr/bin/containerd-shim-runc-v2 /usr/sbin/runc
    /usr/sbin/docker-proxy /usr/bin/docker /usr/bin/tini-static /usr/bin/openssl)
sv__recipe_dind() {
    local rootfs=$1 f
    sv_rootfs_busybox "$rootfs"
    for f in "${SV_DIND_FILES[@]}"; do
        sv_rootfs_copy "$rootfs" "$f" "/usr/local/bin/$(basename "$f")"
    done
    sv_rootfs_copy "$rootfs" /usr/lib/ssl/openssl.cnf
    ln -s tini-static "$rootfs/usr/local/bin/docker-init"
    mkdir -p "$rootfs/var/lib/docker" "$rootfs/certs/client" "$rootfs/usr/local/libexec/standin"
    chmod 1777 "$rootfs/certs" "$rootfs/certs/client"
    # dockerd starts the containerd it finds on PATH; the real one sits behind a wrapper that can
    # delay it (STANDIN_CONTAINERD_DELAY, below).
    mv "$rootfs/usr/local/bin/containerd" "$rootfs/usr/local/libexec/standin/containerd"
    # The real docker:dind runs dockerd-entrypoint.sh. Given no arguments or options only, it
    # starts dockerd on its default socket (DOCKER_HOST when that is unix://, else
    # /var/run/docker.sock) and on tcp://0.0.0.0:2375 (DOCKER_TLS_CERTDIR="") or, after writing
    # a CA, a server certificate and the client's certificates under DOCKER_TLS_CERTDIR (the
    # image sets /certs), on 2376 with TLS; the options given (--host=... included) are added
    # after those. Given `dockerd ...` it runs that as it is. This stand-in keeps that
    # interface (with smaller keys) and adds the flags this host needs: no iptables, no bridge,
    # vfs storage. It also has two hooks for scripts/dind-faults.py, which the real image has
    # not: STANDIN_DOCKERD_DELAY=SECONDS sleeps before dockerd starts (nothing listens yet),
    # STANDIN_CONTAINERD_DELAY=SECONDS delays the containerd dockerd starts, during which
    # dockerd has its sockets open but answers nothing - what a slow daemon start looks like.
    cat >"$rootfs/usr/local/bin/dockerd-entrypoint.sh" <<'EOF'
#!/bin/sh
# Stand-in for docker:dind's dockerd-entrypoint.sh (see scripts/podman-env.sh).
set -e
tls_certs() {
    d=$1
    mkdir -p "$d/ca" "$d/server" "$d/client"
    ec='-newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes'
    openssl req -x509 $ec -days 2 -subj '/CN=docker:dind CA' \
        -keyout "$d/ca/key.pem" -out "$d/ca/cert.pem" 2>/dev/null
    printf 'subjectAltName=DNS:localhost,DNS:docker,IP:127.0.0.1,IP:::1\n' >"$d/server/ext.cnf"
    printf 'extendedKeyUsage=clientAuth\n' >"$d/client/ext.cnf"
    for who in server client; do
        openssl req $ec -subj "/CN=docker:dind $who" \
            -keyout "$d/$who/key.pem" -out "$d/$who/csr.pem" 2>/dev/null
        openssl x509 -req -in "$d/$who/csr.pem" -CA "$d/ca/cert.pem" -CAkey "$d/ca/key.pem" \
            -CAcreateserial -days 2 -extfile "$d/$who/ext.cnf" -out "$d/$who/cert.pem" 2>/dev/null
        cp "$d/ca/cert.pem" "$d/$who/ca.pem"
    done
    chmod 0644 "$d/client/key.pem"
}
if [ "$#" -eq 0 ] || [ "${1#-}" != "$1" ]; then
    socket=unix:///var/run/docker.sock
    case "${DOCKER_HOST:-}" in unix://*) socket=$DOCKER_HOST ;; esac
    if [ -n "${DOCKER_TLS_CERTDIR:-}" ]; then
        tls_certs "$DOCKER_TLS_CERTDIR"
        s=$DOCKER_TLS_CERTDIR/server
        set -- dockerd --host="$socket" --host=tcp://0.0.0.0:2376 \
            --tlsverify --tlscacert "$s/ca.pem" --tlscert "$s/cert.pem" --tlskey "$s/key.pem" "$@"
    else
        set -- dockerd --host="$socket" --host=tcp://0.0.0.0:2375 --tls=false "$@"
    fi
fi
if [ "$1" = dockerd ]; then
    # As the real one: a pid file left by a dockerd killed in a restarted container stops it.
    find /run /var/run -iname 'docker*.pid' -exec rm -f {} + 2>/dev/null || :
    shift
    set -- dockerd --iptables=false --ip6tables=false --bridge=none --storage-driver=vfs "$@"
    [ -z "${STANDIN_DOCKERD_DELAY:-}" ] || sleep "$STANDIN_DOCKERD_DELAY"
fi
exec "$@"
EOF
    cat >"$rootfs/usr/local/bin/containerd" <<'EOF'
#!/bin/sh
# containerd behind the stand-in's delay hook (see dockerd-entrypoint.sh).
[ -z "${STANDIN_CONTAINERD_DELAY:-}" ] || sleep "$STANDIN_CONTAINERD_DELAY"
exec /usr/local/libexec/standin/containerd "$@"
EOF
    # The real docker:cli's entrypoint, which docker:dind has too (it is built FROM docker:cli):
    # options or a docker subcommand run `docker ...`; with no DOCKER_HOST it picks the default
    # socket when there is one, else tcp://docker:2376 (with the client certificates of
    # DOCKER_TLS_CERTDIR, or DOCKER_TLS_VERIFY set) or tcp://docker:2375, and on TCP it turns TLS
    # on by itself when those certificates are there.
    cat >"$rootfs/usr/local/bin/docker-entrypoint.sh" <<'EOF'
#!/bin/sh
# Stand-in for docker:cli's docker-entrypoint.sh (see scripts/podman-env.sh).
set -eu
if [ "$#" -eq 0 ] || [ "${1#-}" != "$1" ] || docker help "$1" >/dev/null 2>&1; then
    set -- docker "$@"
fi
certs() {
    c=${DOCKER_TLS_CERTDIR:-}/client
    [ -n "${DOCKER_TLS_CERTDIR:-}" ] && [ -s "$c/ca.pem" ] && [ -s "$c/cert.pem" ] && [ -s "$c/key.pem" ]
}
if [ -z "${DOCKER_HOST:-}" ] && [ -S /var/run/docker.sock ]; then
    export DOCKER_HOST=unix:///var/run/docker.sock
elif [ -z "${DOCKER_HOST:-}" ]; then
    if certs || [ -n "${DOCKER_TLS_VERIFY:-}" ]; then
        export DOCKER_HOST=tcp://docker:2376
    else
        export DOCKER_HOST=tcp://docker:2375
    fi
fi
if [ "${DOCKER_HOST#tcp:}" != "$DOCKER_HOST" ] && [ -z "${DOCKER_TLS_VERIFY:-}" ] &&
    [ -z "${DOCKER_CERT_PATH:-}" ] && certs; then
    export DOCKER_TLS_VERIFY=1 DOCKER_CERT_PATH=$DOCKER_TLS_CERTDIR/client
fi
exec "$@"
EOF
    chmod 0755 "$rootfs/usr/local/bin/dockerd-entrypoint.sh" "$rootfs/usr/local/bin/containerd" \
        "$rootfs/usr/local/bin/docker-entrypoint.sh"
}

SV_REDIS_FILES=(/usr/bin/redis-server /usr/bin/redis-cli)
sv__recipe_redis() {
    local rootfs=$1 f
    sv_rootfs_busybox "$rootfs"
    for f in "${SV_REDIS_FILES[@]}"; do sv_rootfs_copy "$rootfs" "$f" "/usr/local/bin/$(basename "$f")"; done
    mkdir -p "$rootfs/data"
}

# A stand-in for gcr.io/cloud-sql-connectors/cloud-sql-proxy: insists on the flags the
# examples rely on, answers GET /startup, /readiness and /liveness on 127.0.0.1:9090 and
# POST /quitquitquit on 127.0.0.1:9091 (then exits 0, as the real proxy does), and accepts
# "database" connections on 5432.
sv__recipe_cloud_sql_proxy() {
    local rootfs=$1
    sv_rootfs_busybox "$rootfs"
    mkdir -p "$rootfs/standin"
    cat >"$rootfs/cloud-sql-proxy" <<'EOF'
#!/bin/sh
# Stand-in for cloud-sql-proxy v2 (see scripts/podman-env.sh). Not a proxy.
case " $* " in *" --quitquitquit "*) ;; *) echo "stand-in: --quitquitquit missing" >&2; exit 2;; esac
case " $* " in *" --health-check "*) ;; *) echo "stand-in: --health-check missing" >&2; exit 2;; esac
echo "stand-in cloud-sql-proxy: $*" >&2
rm -f /tmp/quit
nc -ll -p 9090 -e /standin/health &
nc -ll -p 9091 -e /standin/admin &
nc -ll -p 5432 -e /standin/db &
trap 'echo "stand-in cloud-sql-proxy: SIGTERM" >&2; kill $(jobs -p) 2>/dev/null; exit 143' TERM
while [ ! -e /tmp/quit ]; do sleep 0.1; done
echo "stand-in cloud-sql-proxy: /quitquitquit received, exiting 0" >&2
kill $(jobs -p) 2>/dev/null
exit 0
EOF
    cat >"$rootfs/standin/health" <<'EOF'
#!/bin/sh
read -r method path _
while read -r line && [ "$(printf %s "$line" | tr -d '\r')" != "" ]; do :; done
case "$path" in
/startup|/readiness|/liveness) printf 'HTTP/1.1 200 OK\r\nContent-Length: 2\r\nConnection: close\r\n\r\nok' ;;
*) printf 'HTTP/1.1 404 Not Found\r\nContent-Length: 0\r\nConnection: close\r\n\r\n' ;;
esac
EOF
    cat >"$rootfs/standin/admin" <<'EOF'
#!/bin/sh
read -r method path _
while read -r line && [ "$(printf %s "$line" | tr -d '\r')" != "" ]; do :; done
if [ "$method" = POST ] && [ "$path" = /quitquitquit ]; then
    printf 'HTTP/1.1 200 OK\r\nContent-Length: 0\r\nConnection: close\r\n\r\n'
    touch /tmp/quit
else
    printf 'HTTP/1.1 405 Method Not Allowed\r\nContent-Length: 0\r\nConnection: close\r\n\r\n'
fi
EOF
    printf '#!/bin/sh\necho "stand-in-postgres-ok"\n' >"$rootfs/standin/db"
    chmod 0755 "$rootfs/cloud-sql-proxy" "$rootfs"/standin/*
}

# A stand-in for postgres:16-alpine's client tools: they "connect" through the proxy
# stand-in on 127.0.0.1:5432 and fail like the real ones when nothing listens there.
sv__recipe_postgres() {
    local rootfs=$1 tool
    sv_rootfs_busybox "$rootfs"
    for tool in psql pg_dump; do
        cat >"$rootfs/usr/local/bin/$tool" <<'EOF'
#!/bin/sh
# Stand-in for a PostgreSQL client (see scripts/podman-env.sh).
reply=$(nc -w 2 127.0.0.1 5432 </dev/null 2>/dev/null)
if [ "$reply" != stand-in-postgres-ok ]; then
    echo "$(basename "$0"): could not connect to server at 127.0.0.1:5432" >&2
    exit 2
fi
echo "-- $(basename "$0") stand-in: $*"
EOF
        chmod 0755 "$rootfs/usr/local/bin/$tool"
    done
}

# A stand-in for cr.fluentbit.io/fluent/fluent-bit: at the real binary's path, it serves the
# health endpoint (127.0.0.1:2020/api/v1/health) and the forward port (24224) that the sidecar
# spec's probes query, and exits 0 on SIGTERM, as Fluent Bit does after flushing.
sv__recipe_fluent_bit() {
    local rootfs=$1
    sv_rootfs_busybox "$rootfs"
    mkdir -p "$rootfs/fluent-bit/bin" "$rootfs/fluent-bit/etc"
    cat >"$rootfs/fluent-bit/bin/fluent-bit" <<'EOF'
#!/bin/sh
# Stand-in for Fluent Bit (see scripts/podman-env.sh). Not a log processor.
case " $* " in *" --config="* | *" -c "*) ;; *) echo "stand-in: --config missing" >&2; exit 2 ;; esac
mkdir -p /tmp/www/api/v1
echo '{"status":"ok"}' >/tmp/www/api/v1/health
trap 'kill $(jobs -p) 2>/dev/null; echo "stand-in fluent-bit: SIGTERM, flushed, exiting 0" >&2; exit 0' TERM
httpd -f -p 127.0.0.1:2020 -h /tmp/www &
nc -ll -p 24224 -e /bin/cat &
echo "stand-in fluent-bit: serving 127.0.0.1:2020/api/v1/health and :24224" >&2
while :; do sleep 1 & wait $!; done
EOF
    chmod 0755 "$rootfs/fluent-bit/bin/fluent-bit"
}

sv_image_busybox() { sv_import busybox sv__recipe_busybox -- 'ENV PATH=/usr/local/bin:/bin'; }
sv_image_dind_base() {
    sv_import dind-base sv__recipe_dind "${SV_DIND_FILES[@]}" -- \
        'ENV PATH=/usr/local/bin:/bin' 'ENV DOCKER_TLS_CERTDIR=/certs' 'ENTRYPOINT ["dockerd-entrypoint.sh"]' \
        'VOLUME /var/lib/docker'
}
# docker:27-cli: the files of dind-base (docker:dind is built FROM docker:cli, so both have
# docker-entrypoint.sh and the CLI), with the cli image's ENTRYPOINT and CMD.
sv_image_docker_cli() {
    local ctx=$SV_PODMAN_DIR/cache/docker-cli
    mkdir -p "$ctx" &&
        printf '%s\n' 'ARG BASE' 'FROM $BASE' 'ENTRYPOINT ["docker-entrypoint.sh"]' 'CMD ["sh"]' \
            >"$ctx/Containerfile" &&
        sv_build_dockerfile docker-cli "$ctx/Containerfile" "$ctx" "BASE=$SV_PREFIX/dind-base"
}
sv_image_redis() {
    sv_import redis sv__recipe_redis "${SV_REDIS_FILES[@]}" -- \
        'ENV PATH=/usr/local/bin:/bin' 'WORKDIR /data' 'CMD ["redis-server"]'
}
sv_image_cloud_sql_proxy() {
    sv_import cloud-sql-proxy sv__recipe_cloud_sql_proxy -- 'ENV PATH=/bin' 'ENTRYPOINT ["/cloud-sql-proxy"]'
}
sv_image_fluent_bit() {
    sv_import fluent-bit sv__recipe_fluent_bit -- 'ENV PATH=/fluent-bit/bin:/bin' \
        'ENTRYPOINT ["/fluent-bit/bin/fluent-bit", "--config=/fluent-bit/etc/fluent-bit.yaml"]'
}
sv_image_postgres() { sv_import postgres sv__recipe_postgres -- 'ENV PATH=/usr/local/bin:/bin'; }

# The infra ("pause") image of pods, which podman builds on first use: built here, under
# sv_podman_copy, rather than by the first `podman kube play`.
sv_image_pause() {
    [ -n "$(podman images --quiet --filter reference='localhost/podman-pause*')" ] && return 0
    local pod=sv-pause-warmup-$$
    sv_podman_copy pod create --name "$pod" >/dev/null && podman pod rm --force "$pod" >/dev/null
}

# sv_build_dockerfile NAME DOCKERFILE CONTEXT [BUILD-ARG...]: podman build, offline, unless an
# image built from the same Dockerfile, context files, build arguments and local base images is
# already there (the label of sv_import): a build costs about 2 s even when every step is cached.
sv_build_dockerfile() {
    local name=$1 file=$2 context=$3
    shift 3
    local args=() a key have
    for a in "$@"; do args+=(--build-arg "$a"); done
    key=$({
        cat "$file"
        (cd "$context" && find . -type f -print0 | sort -z | xargs -0r sha256sum)
        for a in "$@"; do
            printf '%s\n' "$a"
            case "${a#*=}" in "$SV_PREFIX"/*) podman image inspect --format '{{.Id}}' "${a#*=}" 2>/dev/null ;; esac
        done
    } | sha256sum | cut -c1-32)
    have=$(podman image inspect --format '{{index .Labels "io.supervisor.recipe"}}' "$SV_PREFIX/$name" 2>/dev/null)
    [ "$have" = "$key" ] && return 0
    sv_podman_copy build --quiet --pull=never --network none -f "$file" "${args[@]}" \
        --label "io.supervisor.recipe=$key" -t "$SV_PREFIX/$name" "$context" >/dev/null
}

# sv_image_supervisor BIN: the scratch image of docker/Dockerfile, from a prebuilt static BIN.
sv_image_supervisor() {
    local bin=$1 ctx
    [ -x "$bin" ] || { sv_log "no supervisor binary at $bin"; return 1; }
    ctx=$(mktemp -d "$SV_PODMAN_DIR/cache/ctx.XXXXXX") || return 1
    cp -p "$bin" "$ctx/supervisor"
    sv_build_dockerfile supervisor "$SV_REPO/docker/Dockerfile" "$ctx"
    local rc=$?
    rm -rf "$ctx"
    return $rc
}

# The wrapper images of docker/dind and docker/ci-agent, on the local stand-in bases.
sv_image_wrappers() {
    sv_build_dockerfile dind "$SV_REPO/docker/dind/Dockerfile" "$SV_REPO/docker/dind" \
        "DIND_IMAGE=$SV_PREFIX/dind-base" "SUPERVISOR_IMAGE=$SV_PREFIX/supervisor" &&
        sv_build_dockerfile ci-agent "$SV_REPO/docker/ci-agent/Dockerfile" "$SV_REPO/docker/ci-agent" \
            "AGENT_IMAGE=$SV_PREFIX/dind-base" "SUPERVISOR_IMAGE=$SV_PREFIX/supervisor"
}

# Everything the container tests need, under one lock. BIN: the static supervisor binary.
sv_images_all() {
    local bin=$1
    (
        flock 9 || exit 1
        sv_image_pause && sv_image_busybox && sv_image_dind_base && sv_image_docker_cli && sv_image_redis && sv_image_cloud_sql_proxy &&
            sv_image_postgres && sv_image_fluent_bit && sv_image_supervisor "$bin" && sv_image_wrappers &&
            podman image prune --force >/dev/null
    ) 9>"$SV_PODMAN_DIR/images.lock"
}

# What each local image stands in for: pairs of an image-name prefix used in examples/ and the
# local image (under $SV_PREFIX) that plays it here. scripts/play.sh maps images with it.
SV_STANDINS=(
    ghcr.io/supervisor-dev/supervisor: supervisor
    registry.example.com/dind-supervised: dind
    registry.example.com/ci-agent: ci-agent
    docker:27-cli docker-cli
    docker:cli docker-cli
    docker: dind-base
    redis:7-alpine redis
    postgres:16-alpine postgres
    gcr.io/cloud-sql-connectors/cloud-sql-proxy: cloud-sql-proxy
    cr.fluentbit.io/fluent/fluent-bit: fluent-bit
    busybox: busybox
)

# sv_images_for BIN LOCAL...: only the named local images (and what they are built on), under
# the same lock as sv_images_all. BIN: the static supervisor binary.
sv_images_for() {
    local bin=$1 name
    shift
    (
        flock 9 || exit 1
        sv_image_pause || exit 1
        for name in "$@"; do
            case "$name" in
            supervisor) sv_image_supervisor "$bin" ;;
            dind | ci-agent) sv_image_dind_base && sv_image_supervisor "$bin" && sv_image_wrappers ;;
            dind-base) sv_image_dind_base ;;
            docker-cli) sv_image_dind_base && sv_image_docker_cli ;;
            busybox | redis | postgres) "sv_image_$name" ;;
            cloud-sql-proxy) sv_image_cloud_sql_proxy ;;
            fluent-bit) sv_image_fluent_bit ;;
            *) sv_log "no recipe for the local image $name"; false ;;
            esac || exit 1
        done
    ) 9>"$SV_PODMAN_DIR/images.lock"
}

# Only what scripts/demo.sh needs.
sv_images_demo() { sv_images_for "$1" redis supervisor; }

# Sourced with an argument: that is DIR. (Sourced without one, bash would hand us the caller's
# "$1", so only a path-looking first argument counts.)
case "${1:-}" in
-*) sv_podman_init "" ;;
*) sv_podman_init "${1:-}" ;;
esac
