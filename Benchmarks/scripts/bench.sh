#!/usr/bin/env bash
# `make bench`: installs what the benchmarks need when missing (nginx, webdis, wrk, redis),
# builds chat-service and bench-batch-write in release mode, runs bench.py, then writes the
# dated table and chart under Benchmarks/results/ and the table into the README.
#
# Knobs (environment): BENCH_DURATION (s per wrk run, 10), BENCH_REPEATS (3), BENCH_FULL=1 (adds
# the 1M-chat sync), BENCH_SYNC_SIZES ("10000 100000"), BENCH_SECTIONS ("batch read sync"),
# BENCH_WRK_THREADS (2), BENCH_WRK_CONNECTIONS (64), BENCH_BATCH_SIZE (50), BENCH_IN_FLIGHT (50),
# BENCH_NO_README=1 (leave the README alone), BENCH_KEEP_WORKDIR=1 (keep logs after a failure).
set -euo pipefail
root="$(cd "$(dirname "$0")/../.." && pwd)"
cd "$root"
export PATH="/opt/swift/usr/bin:$PATH"

"$root/scripts/install-deps.sh" nginx webdis wrk python3

# One build tree: the Benchmarks package builds the root package's chat-service product too.
cd "$root/Benchmarks"
for product in chat-service bench-batch-write; do
    echo "building $product (release)"
    swift build -c release --product "$product" 2>&1 | { grep -vE "prohibited flag|^\[[0-9]+/[0-9]+\] " || true; }
done
bin="$(swift build -c release --show-bin-path)"
cd "$root"

stamp="$(date -u +%Y-%m-%d-%H%M)"
results="$root/Benchmarks/results"
mkdir -p "$results"
python3 "$root/Benchmarks/scripts/bench.py" \
    --chat-service "$bin/chat-service" --bench-batch-write "$bin/bench-batch-write" \
    --output "$results/$stamp.json"
readme=(--readme "$root/README.md")
[[ "${BENCH_NO_README:-0}" == 1 ]] && readme=()
python3 "$root/Benchmarks/scripts/report.py" "$results/$stamp.json" \
    --markdown "$results/$stamp.md" --svg "$results/$stamp.svg" "${readme[@]}"
echo "table: Benchmarks/results/$stamp.md, chart: Benchmarks/results/$stamp.svg"
