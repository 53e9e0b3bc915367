#!/usr/bin/env bash
# Profiles a release chat-service with perf.
#   Benchmarks/scripts/profile.sh [l1|redis] [seconds]   one read path while wrk drives it
#   Benchmarks/scripts/profile.sh sync [chats]           a full refresh of N chats (default 100000)
# Starts redis-server, the stub upstream and the service on free loopback ports (temporary
# directory, all stopped on exit).
# - l1|redis: warms the chat, records `perf record --call-graph dwarf` on the service during a wrk
#   run and prints the heaviest symbols (self and with callees).
# - sync: the service as bench.py's sync section runs it (PARTICIPANTS_L1_SIZE=100000, background
#   sync off), `POST /internal/participants/refresh`, `perf record -F 499 -g` on the service from the
#   request until the job ends; prints the wall time, the CPU seconds (utime + stime) of the
#   service, the stub and redis-server during the run, and the heaviest symbols.
# The raw profile stays in $PROFILE_OUT (default /tmp/chat-service-profile.data) for
# `perf report -i`. PROFILE_BINARY profiles another chat-service (e.g. a baseline build);
# PROFILE_CALL_GRAPH overrides perf's call-graph mode (sync: fp, read paths: dwarf,16384).
set -euo pipefail
root="$(cd "$(dirname "$0")/../.." && pwd)"
export PATH="/opt/swift/usr/bin:$PATH"
mode="${1:-l1}"
case "$mode" in
    l1|redis) seconds="${2:-5}" ;;
    sync) chats="${2:-100000}" ;;
    *) echo "usage: $0 [l1|redis] [seconds] | sync [chats]" >&2; exit 2 ;;
esac
out="${PROFILE_OUT:-/tmp/chat-service-profile.data}"
bin="${PROFILE_BINARY:-$root/.build/release/chat-service}"
[[ -x "$bin" ]] || { echo "build first: swift build -c release --product chat-service" >&2; exit 1; }
command -v perf >/dev/null || { echo "perf is missing (apt-get install linux-perf)" >&2; exit 1; }

work="$(mktemp -d /tmp/chat-profile.XXXXXX)"
pids=()
cleanup() {
    for pid in "${pids[@]}"; do kill "$pid" 2>/dev/null || true; done
    wait 2>/dev/null || true
    rm -rf "$work"
}
trap cleanup EXIT INT TERM
port() { python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'; }
# Waits up to $1 tenths of a second for a command to succeed; fails with the log tail of $2.
wait_for() {
    local tries="$1" log="$2"; shift 2
    for _ in $(seq "$tries"); do "$@" && return 0; sleep 0.1; done
    echo "not ready in $((tries / 10)) s: $*; $log ends:" >&2; tail -20 "$log" >&2; exit 1
}
cpu() { awk '{ s = $0; sub(/.*\) /, "", s); split(s, f, " "); printf "%.2f\n", (f[12] + f[13]) / ticks }' ticks="$(getconf CLK_TCK)" "/proc/$1/stat"; }

redis_port=$(port); stub_port=$(port); http_port=$(port)
redis-server --bind 127.0.0.1 --port "$redis_port" --save "" --appendonly no --dir "$work" >"$work/redis.log" 2>&1 &
redis=$!
pids+=("$redis")
stub_chats=1000
[[ "$mode" == sync ]] && stub_chats="$chats"
"$bin" stub-upstream --host 127.0.0.1 --port "$stub_port" --chats "$stub_chats" --log-level warning >"$work/stub.log" 2>&1 &
stub=$!
pids+=("$stub")
l1_size=10000
[[ "$mode" == redis ]] && l1_size=0
[[ "$mode" == sync ]] && l1_size=100000
wait_for 100 "$work/redis.log" redis-cli -h 127.0.0.1 -p "$redis_port" ping >/dev/null
wait_for $((300 + stub_chats / 2000)) "$work/stub.log" curl -sf -o /dev/null "http://127.0.0.1:$stub_port/admin/stats"
# The environment of bench.py's start_service.
env -u PARTICIPANTS_MAX_BATCHES_IN_FLIGHT -u PARTICIPANTS_BATCH_CONCURRENCY -u PARTICIPANTS_BATCH_SIZE \
    REDIS_URL="redis://127.0.0.1:$redis_port/0" HTTP_HOST=127.0.0.1 HTTP_PORT="$http_port" \
    GRPC_HOST=127.0.0.1 GRPC_PORT=0 INSTANCE_ID=profile \
    PARTICIPANTS_API_URL="http://127.0.0.1:$stub_port" JWT_SECRET=profile-secret ADMIN_TOKEN=profile-admin \
    PARTICIPANTS_ENABLE_BACKGROUND_SYNC=false PARTICIPANTS_L1_SIZE="$l1_size" LOG_LEVEL=warning \
    "$bin" serve >"$work/service.log" 2>&1 &
service=$!
pids+=("$service")
wait_for 300 "$work/service.log" curl -sf -o /dev/null "http://127.0.0.1:$http_port/ready"

# The heaviest $1 symbols by self time and $2 by time with callees (user space), Swift names
# demangled. Whole files go through awk (no early-closed pipe, which pipefail would turn into a
# failure).
report() {
    local demangle=cat
    command -v swift-demangle >/dev/null && demangle="swift-demangle --simplified"
    perf report -i "$out" --no-children --sort symbol -g none >"$work/self.txt" 2>/dev/null
    perf report -i "$out" --children --sort symbol -g none >"$work/children.txt" 2>/dev/null
    echo "== self time"
    grep -vE "^#|^$" "$work/self.txt" | awk -v n="$1" 'NR <= n' | $demangle | cut -c1-200 | sed -E "s/[[:space:]]+$//"
    echo "== with callees"
    grep -vE "^#|^$" "$work/children.txt" | grep -v "\[k\]" | awk -v n="$2" 'NR <= n' | $demangle | cut -c1-200 | sed -E "s/[[:space:]]+$//"
}

if [[ "$mode" == sync ]]; then
    admin=(-H "Authorization: Bearer profile-admin")
    base="http://127.0.0.1:$http_port/internal/participants/refresh"
    sleep 1  # the instance takes the leader lock; the leader produces the run's batches
    before=("$(cpu "$service")" "$(cpu "$stub")" "$(cpu "$redis")")
    perf record -F 499 --call-graph "${PROFILE_CALL_GRAPH:-fp}" -p "$service" -o "$out" 2>"$work/perf.log" &
    perf_pid=$!
    started=$(date +%s.%N)
    job=$(curl -sf -X POST "${admin[@]}" "$base" | python3 -c 'import json, sys; print(json.load(sys.stdin)["job_id"])')
    deadline=$(( $(date +%s) + 120 + chats / 500 ))
    state=running
    while [[ "$state" == running || "$state" == queued ]]; do
        kill -0 "$service" 2>/dev/null || { echo "the service exited; its log ends:" >&2; tail -20 "$work/service.log" >&2; exit 1; }
        (( $(date +%s) < deadline )) || { echo "the refresh did not end by its deadline" >&2; exit 1; }
        sleep 0.1
        state=$(curl -sf "${admin[@]}" "$base/$job" | python3 -c 'import json, sys; print(json.load(sys.stdin).get("state"))')
    done
    ended=$(date +%s.%N)
    after=("$(cpu "$service")" "$(cpu "$stub")" "$(cpu "$redis")")
    kill -INT "$perf_pid"; wait "$perf_pid" || true
    curl -sf "${admin[@]}" "$base/$job"; echo
    python3 - "$chats" "$started" "$ended" "${before[@]}" "${after[@]}" <<'EOF'
import sys
chats, started, ended = int(sys.argv[1]), float(sys.argv[2]), float(sys.argv[3])
before, after = [float(x) for x in sys.argv[4:7]], [float(x) for x in sys.argv[7:10]]
wall = ended - started
cpu = {name: a - b for name, a, b in zip(("service", "stub", "redis-server"), after, before)}
print(f"full refresh of {chats:,} chats: {wall:.1f} s wall, {chats / wall:,.0f} chats/s")
for name, seconds in cpu.items():
    print(f"  CPU {name}: {seconds:.2f} s ({seconds / (chats / 1000):.3f} s per 1k chats, {100 * seconds / wall:.0f} % of wall)")
EOF
    report 40 40
    exit 0
fi

token=$(JWT_SECRET=profile-secret "$bin" mint-token --ttl 3600)
url="http://127.0.0.1:$http_port/v1/chats/chat-1/participants"
for _ in 1 2; do curl -sf -o /dev/null -H "Authorization: Bearer $token" "$url"; done

wrk -t2 -c64 -d"$((seconds + 2))s" -H "Authorization: Bearer $token" "$url" >"$work/wrk.txt" &
wrk_pid=$!
sleep 1
perf record -F 499 --call-graph "${PROFILE_CALL_GRAPH:-dwarf,16384}" -p "$service" -o "$out" -- sleep "$seconds" 2>/dev/null
wait "$wrk_pid"
grep -E "Requests/sec|Latency" "$work/wrk.txt"
report 25 40
