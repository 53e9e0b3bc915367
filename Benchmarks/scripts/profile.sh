#!/usr/bin/env bash
# Profiles one read path of a release chat-service with perf while wrk drives it.
#   Benchmarks/scripts/profile.sh [l1|redis] [seconds]
# Starts redis-server, the stub upstream and the service on free loopback ports (temporary
# directory, all stopped on exit), warms the chat, records `perf record --call-graph dwarf` on the
# service during a wrk run and prints the heaviest symbols (self and with callees). The raw
# profile stays in $PROFILE_OUT (default /tmp/chat-service-profile.data) for `perf report -i`.
set -euo pipefail
root="$(cd "$(dirname "$0")/../.." && pwd)"
mode="${1:-l1}"
seconds="${2:-5}"
out="${PROFILE_OUT:-/tmp/chat-service-profile.data}"
bin="$root/.build/release/chat-service"
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

redis_port=$(port); stub_port=$(port); http_port=$(port)
redis-server --bind 127.0.0.1 --port "$redis_port" --save "" --appendonly no --dir "$work" >"$work/redis.log" 2>&1 &
pids+=($!)
"$bin" stub-upstream --host 127.0.0.1 --port "$stub_port" --chats 1000 --log-level warning >"$work/stub.log" 2>&1 &
pids+=($!)
l1_size=10000
[[ "$mode" == redis ]] && l1_size=0
REDIS_URL="redis://127.0.0.1:$redis_port/0" HTTP_HOST=127.0.0.1 HTTP_PORT="$http_port" \
    PARTICIPANTS_API_URL="http://127.0.0.1:$stub_port" JWT_SECRET=profile-secret ADMIN_TOKEN=profile-admin \
    PARTICIPANTS_ENABLE_BACKGROUND_SYNC=false PARTICIPANTS_L1_SIZE="$l1_size" LOG_LEVEL=warning \
    "$bin" serve >"$work/service.log" 2>&1 &
service=$!
pids+=("$service")
for _ in $(seq 100); do curl -sf -o /dev/null "http://127.0.0.1:$http_port/ready" && break; sleep 0.1; done
token=$(JWT_SECRET=profile-secret "$bin" mint-token --ttl 3600)
url="http://127.0.0.1:$http_port/v1/chats/chat-1/participants"
for _ in 1 2; do curl -sf -o /dev/null -H "Authorization: Bearer $token" "$url"; done

wrk -t2 -c64 -d"$((seconds + 2))s" -H "Authorization: Bearer $token" "$url" >"$work/wrk.txt" &
wrk_pid=$!
sleep 1
perf record -F 499 --call-graph dwarf,16384 -p "$service" -o "$out" -- sleep "$seconds" 2>/dev/null
wait "$wrk_pid"
grep -E "Requests/sec|Latency" "$work/wrk.txt"
echo "== self time"
perf report -i "$out" --no-children --sort symbol -g none 2>/dev/null | grep -vE "^#|^$" | head -25 | cut -c1-160
echo "== with callees"
perf report -i "$out" --children --sort symbol -g none 2>/dev/null | grep -vE "^#|^$" | grep -v "\[k\]" | head -40 | cut -c1-160
