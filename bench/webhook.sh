#!/usr/bin/env bash
# The webhook under load on loopback: latency at a fixed rate (p50/p99 at 1,000 reviews/s, the
# goal being p99 <= 10 ms), the most it answers, the cost of a new TLS connection per review,
# and its memory and CPU meanwhile. Writes bench/results/webhook.md.
#
# Usage: bench/webhook.sh [--bin PATH] [--duration SECONDS] [--out FILE]
# The binary: --bin PATH, else the static release build (scripts/build-static.sh).
# The load tool is hey (Debian package `hey`), installed with apt-get when missing. Each
# review is the recorded Job pod of kubectl-supervise/tests/webhook/job-pod.json, opted in:
# every request is a full inject and patch, the webhook's most expensive answer. hey keeps its
# connections alive, as the API server does; its -q is a rate per connection (10 x 100/s).
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
repo="$(cd "$here/.." && pwd)"
bin=""
duration=30
out="$here/results/webhook.md"
while [ $# -gt 0 ]; do
    case "$1" in
        --bin) bin="$2"; shift 2 ;;
        --duration) duration="$2"; shift 2 ;;
        --out) out="$2"; shift 2 ;;
        -h|--help) sed -n '2,11p' "$0"; exit 0 ;;
        *) echo "bench/webhook.sh: unknown argument: $1" >&2; exit 2 ;;
    esac
done

if ! command -v hey >/dev/null; then
    echo "bench/webhook.sh: installing hey (apt-get)" >&2
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq hey >/dev/null
fi
if [ -z "$bin" ]; then
    supervisor=$(cd "$repo" && scripts/build-static.sh)
    bin="$repo/$(dirname "$supervisor")/kubectl-supervise"
fi
[ -x "$bin" ] || { echo "bench/webhook.sh: no binary at $bin" >&2; exit 2; }

tmp=$(mktemp -d)
pid=
cleanup() {
    if [ -n "$pid" ]; then kill "$pid" 2>/dev/null || true; wait "$pid" 2>/dev/null || true; fi
    [ -n "${KEEP_TMP:-}" ] || rm -rf "$tmp"
}
trap cleanup EXIT

# The certificate: the recipe of docs/kubectl-supervise.md, as the tests run it.
awk '/<!-- tests: kubectl-supervise\/tests\/webhook.rs runs the next block -->/ {f = 1; next}
     f && /^```sh/ {g = 1; next}  g && /^```/ {exit}  g' "$repo/docs/kubectl-supervise.md" > "$tmp/recipe.sh"
(cd "$tmp" && sh -e recipe.sh 2>/dev/null)
python3 -c 'import json, sys; json.dump(json.load(open(sys.argv[1])), open(sys.argv[2], "w"), separators=(",", ":"))' \
    "$repo/kubectl-supervise/tests/webhook/job-pod.json" "$tmp/review.json"

"$bin" webhook --cert "$tmp/tls.crt" --key "$tmp/tls.key" --listen 127.0.0.1:0 2> "$tmp/log" &
pid=$!
for _ in $(seq 100); do
    grep -q 'listening on https://' "$tmp/log" && break
    sleep 0.1
done
addr=$(grep -o 'listening on https://[^ ]*' "$tmp/log" | sed 's|listening on https://||')
[ -n "$addr" ] || { echo "bench/webhook.sh: the webhook did not start:" >&2; cat "$tmp/log" >&2; exit 1; }
url="https://$addr/mutate"
host=supervisor-webhook.supervisor-system.svc

status_kib() { awk -v k="$1:" '$1 == k {print $2}' "/proc/$pid/status"; }
cpu_ticks() { awk '{print $14 + $15}' "/proc/$pid/stat"; }
hey_run() {   # hey_run NAME ARGS...: the summary in $tmp/NAME.txt
    local name=$1; shift
    # -host: hey sends its URL's host:port as the TLS server name, which is not a host name;
    # the API server sends the Service's name, as this does.
    hey -m POST -T application/json -D "$tmp/review.json" -host "$host" "$@" "$url" > "$tmp/$name.txt"
}
field() {     # field NAME PATTERN: the number after PATTERN in hey's summary
    awk -v p="$2" 'index($0, p) { for (i = 1; i <= NF; i++) if ($i ~ /^[0-9.]+$/) { print $i; exit } }' "$tmp/$1.txt"
}
ms() { awk -v s="$1" 'BEGIN { printf "%.2f", s * 1000 }'; }
pct() { awk -v p="$2%" '$1 == p && $2 == "in" { print $3; exit }' "$tmp/$1.txt"; }
codes() { awk '/Status code distribution/ {f = 1; next} f && NF == 0 {exit} f {gsub(/^ +/, ""); printf "%s%s", sep, $0; sep = ", "}' "$tmp/$1.txt"; }
errors() { awk '/Error distribution/ {f = 1; next} f && NF {n++} END {print n + 0}' "$tmp/$1.txt"; }

load_before=$(cut -d' ' -f1 /proc/loadavg)
rss_idle=$(status_kib VmRSS)
hey_run warmup -n 500 -c 10 >/dev/null

# 1,000 reviews/s for $duration seconds, sampling the webhook's memory meanwhile.
ticks0=$(cpu_ticks)
hey_run rate -z "${duration}s" -c 10 -q 100 &
hey_pid=$!
rss_peak=0
while kill -0 "$hey_pid" 2>/dev/null; do
    r=$(status_kib VmRSS); [ "$r" -gt "$rss_peak" ] && rss_peak=$r
    sleep 0.5
done
wait "$hey_pid"
ticks1=$(cpu_ticks)
threads=$(status_kib Threads)
hz=$(getconf CLK_TCK)
cpu=$(awk -v t="$((ticks1 - ticks0))" -v hz="$hz" -v d="$duration" 'BEGIN { printf "%.0f", 100 * t / hz / d }')

# The most it answers (10 connections, no rate limit), one connection's round trips (the cost
# of one review), a new TLS connection per review, and GET /healthz at 1,000/s: what hey, TLS
# and this machine cost without a review.
hey_run max -z 10s -c 10
hey_run single -z 10s -c 1
hey_run fresh -z 10s -c 10 -q 20 -disable-keepalive
hey -host "$host" -z 10s -c 10 -q 100 "https://$addr/healthz" > "$tmp/healthz.txt"
rss_hwm=$(status_kib VmHWM)
load_after=$(cut -d' ' -f1 /proc/loadavg)

kill -TERM "$pid"; wait "$pid" || true; pid=

size=$(stat -c %s "$bin")
cpu_model=$(awk -F': ' '/model name/ {print $2; exit}' /proc/cpuinfo)
row() {       # row NAME LABEL
    printf '| %s | %s | %s | %s | %s | %s | %s | %s |\n' "$2" "$(field "$1" 'Requests/sec:')" \
        "$(ms "$(pct "$1" 50)")" "$(ms "$(pct "$1" 90)")" "$(ms "$(pct "$1" 99)")" \
        "$(ms "$(field "$1" 'Slowest:')")" "$(codes "$1")" "$(errors "$1")"
}
mkdir -p "$(dirname "$out")"
{
    echo "# kubectl-supervise webhook under load"
    echo
    echo "Written by \`bench/webhook.sh\` on $(date -u +%Y-%m-%d) ($(nproc) cores, $cpu_model;"
    echo "hey $(dpkg-query -W -f='${Version}' hey 2>/dev/null) from Debian, loopback). Each review is a Job's pod that opts in"
    echo "(kubectl-supervise/tests/webhook/job-pod.json): every answer is a full inject and a JSON"
    echo "Patch. Binary: $(basename "$bin"), $size bytes. Latencies in milliseconds, as hey"
    echo "measures them (TLS and HTTP included)."
    echo
    echo "| load | reviews/s | p50 | p90 | p99 | slowest | responses | errors |"
    echo "| --- | --- | --- | --- | --- | --- | --- | --- |"
    row rate "1,000/s for ${duration} s (10 kept-alive connections x 100/s)"
    row max "as fast as it answers, 10 s (10 kept-alive connections)"
    row single "as fast as it answers, 10 s (1 connection: one review's round trip)"
    row fresh "a new TLS connection per review, 200/s for 10 s"
    row healthz "GET /healthz, 1,000/s for 10 s (no review: hey, TLS and the machine)"
    echo
    echo "Memory (RSS): ${rss_idle} KiB idle, ${rss_peak} KiB at most during the 1,000/s run,"
    echo "${rss_hwm} KiB high-water mark over the whole benchmark. CPU during the 1,000/s run: ${cpu}%"
    echo "of one core. Threads after it: ${threads} (the runtime's, the signal and certificate"
    echo "threads, and the review thread of the blocking pool while it lives)."
    echo
    echo "Load average (1 min) on the machine: $load_before before, $load_after after: the machine"
    echo "is shared, and hey runs on the same 2 cores; numbers from a busy machine are upper bounds."
} > "$out"
cat "$out"
