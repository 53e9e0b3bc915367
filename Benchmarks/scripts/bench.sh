#!/usr/bin/env bash
# `make bench`: installs what the benchmarks need when missing (nginx, webdis, wrk, redis),
# builds chat-service and bench-batch-write in release mode, runs bench.py, then writes the
# dated table and chart under Benchmarks/results/ and the table into the README.
#
# Knobs (environment): BENCH_DURATION (s per wrk run, 10), BENCH_REPEATS (3), BENCH_FULL=1 (adds
# the 1M-chat sync), BENCH_SYNC_SIZES ("10000 100000"), BENCH_SECTIONS ("batch read sync"),
# BENCH_WRK_THREADS (2), BENCH_WRK_CONNECTIONS (64), BENCH_BATCH_SIZE (50), BENCH_IN_FLIGHT (50),
# BENCH_NO_README=1 (leave the README and docs/PERFORMANCE.md alone), BENCH_KEEP_WORKDIR=1 (keep logs after a failure).
set -euo pipefail
root="$(cd "$(dirname "$0")/../.." && pwd)"
cd "$root"
export PATH="/opt/swift/usr/bin:$PATH"

"$root/scripts/install-deps.sh" nginx webdis wrk python3

# chat-service: the root package's release build (the one `make run` uses). bench-batch-write:
# the Benchmarks package, whose build renames the root's Runtime module (see its Package.swift).
quiet() { grep -vE "prohibited flag|^\[[0-9]+/[0-9]+\] " || true; }
echo "building chat-service (release)"
swift build -c release --product chat-service 2>&1 | quiet
service_bin="$(swift build -c release --show-bin-path)"
echo "building bench-batch-write (release)"
# A stale build plan would miss source files added to the root package since the last build.
rm -f "$root/Benchmarks/.build/release/description.json" "$root/Benchmarks/.build/release.yaml"
(cd "$root/Benchmarks" && swift build -c release --product bench-batch-write 2>&1 | quiet)
bench_bin="$(cd "$root/Benchmarks" && swift build -c release --show-bin-path)"

stamp="$(date -u +%Y-%m-%d-%H%M)"
results="$root/Benchmarks/results"
mkdir -p "$results"
python3 "$root/Benchmarks/scripts/bench.py" \
    --chat-service "$service_bin/chat-service" --bench-batch-write "$bench_bin/bench-batch-write" \
    --output "$results/$stamp.json"
readme=(--readme "$root/README.md" --performance "$root/docs/PERFORMANCE.md")
[[ "${BENCH_NO_README:-0}" == 1 ]] && readme=()
python3 "$root/Benchmarks/scripts/report.py" "$results/$stamp.json" \
    --markdown "$results/$stamp.md" --svg "$results/$stamp.svg" "${readme[@]}"
echo "table: Benchmarks/results/$stamp.md, chart: Benchmarks/results/$stamp.svg"
