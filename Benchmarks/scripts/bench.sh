#!/usr/bin/env bash
# `make bench`: installs what the benchmarks need when missing (nginx, webdis, wrk, redis),
# builds chat-service and bench-batch-write in release mode, runs bench.py, then writes the
# dated table and chart under Benchmarks/results/ and the table into the README.
#
# Knobs (environment): BENCH_DURATION (s per wrk run, 10), BENCH_REPEATS (3), BENCH_FULL=1 (adds
# the 1M-chat sync), BENCH_SYNC_SIZES ("10000 100000"),
# BENCH_SECTIONS ("batch batch-cluster read sync sync-latency sync-multi"; e.g. BENCH_SECTIONS=batch-cluster
# BENCH_NO_README=1 for the cluster batch write alone),
# BENCH_WRK_THREADS (2), BENCH_WRK_CONNECTIONS (64), BENCH_BATCH_SIZE (50), BENCH_IN_FLIGHT (50),
# BENCH_NO_README=1 (leave the README and docs/PERFORMANCE.md alone), BENCH_KEEP_WORKDIR=1 (keep logs after a failure).
# Sync sections:
#   BENCH_SYNC_REPEATS (1)       full refreshes per size and build; the median run by wall time is reported.
#                                Use 3 or more for an A/B: on the shared 2-core VM one 100k run's wall time
#                                moved by 15 % between two runs of the same binary (its CPU seconds by 6 %).
#   BENCH_BASELINE_BINARY        an older release chat-service (e.g. a worktree of the commit before a change,
#                                built with `swift build -c release --product chat-service`): `sync` runs it
#                                too, alternating old/new per size, and `sync-latency` runs its default; the
#                                report shows both and new ÷ old. The stub is always this build's.
#   BENCH_LATENCY_CHATS (20000)  chats of the `sync-latency` refresh
#   BENCH_LATENCY, BENCH_LATENCY_JITTER ("50ms", "10ms")  the stub's latency fault (PUT /admin/faults)
#   BENCH_INFLIGHT_SWEEP ("4 8 16 32 64")  the fixed PARTICIPANTS_MAX_BATCHES_IN_FLIGHT settings compared with
#                                the adaptive default (PARTICIPANTS_BATCH_CONCURRENCY=fixed|adaptive)
#   BENCH_LATENCY_REPEATS (3)    rounds of the latency sweep, taken round robin
#   BENCH_MULTI_CHATS (30000)    chats of the `sync-multi` refresh (three instances on one Redis)
#   BENCH_LINES_BASE (1bc4d36)   the commit whose Sources/Actors/{Sync,Coordination} line counts are compared
# Cluster batch write (`batch-cluster`): BENCH_CLUSTER_PRIMARIES (3), BENCH_CLUSTER_REPLICAS (0, replicas per
#                                primary) of the Redis Cluster the section starts on free loopback ports.
# bench-batch-write is built only when a batch section runs. A failed section is reported in the
# table and makes this script exit non-zero after the table is written.
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
sections="${BENCH_SECTIONS:-batch batch-cluster read sync sync-latency sync-multi}"
batch_args=()
if [[ " $sections " == *" batch "* || " $sections " == *" batch-cluster "* ]]; then
    echo "building bench-batch-write (release)"
    # A stale build plan would miss source files added to the root package since the last build.
    rm -f "$root/Benchmarks/.build/release/description.json" "$root/Benchmarks/.build/release.yaml"
    (cd "$root/Benchmarks" && swift build -c release --product bench-batch-write 2>&1 | quiet)
    bench_bin="$(cd "$root/Benchmarks" && swift build -c release --show-bin-path)"
    batch_args=(--bench-batch-write "$bench_bin/bench-batch-write")
fi

stamp="$(date -u +%Y-%m-%d-%H%M)"
results="$root/Benchmarks/results"
mkdir -p "$results"
# bench.py exits 3 when a section failed but the others ran: the table is still written, then
# this script fails.
status=0
python3 "$root/Benchmarks/scripts/bench.py" \
    --chat-service "$service_bin/chat-service" "${batch_args[@]}" --sections "$sections" \
    --output "$results/$stamp.json" || status=$?
[[ $status == 0 || $status == 3 ]] || exit "$status"
readme=(--readme "$root/README.md" --performance "$root/docs/PERFORMANCE.md")
[[ "${BENCH_NO_README:-0}" == 1 ]] && readme=()
python3 "$root/Benchmarks/scripts/report.py" "$results/$stamp.json" \
    --markdown "$results/$stamp.md" --svg "$results/$stamp.svg" "${readme[@]}"
echo "table: Benchmarks/results/$stamp.md, chart: Benchmarks/results/$stamp.svg"
[[ $status == 0 ]] || echo "some sections failed: see the table" >&2
exit "$status"
