#!/usr/bin/env bash
# Runs every chaos scenario (tests/ChaosTests) and the property/fuzz suites, then renders the
# figures they measured into a report. Exit status: non-zero when any test failed (the report is
# written either way).
#   CHAOS=full (default, `make chaos`): full-length faults, 100k bad requests; writes docs/RELIABILITY.md
#   CHAOS=fast (`make chaos-fast`, CI): shortened faults, 10k bad requests; writes .build/chaos/RELIABILITY-fast.md
# CHAOS_OUTPUT overrides where the report goes.
set -uo pipefail
cd "$(dirname "$0")/.."
export PATH="/opt/swift/usr/bin:$PATH"
scripts/install-deps.sh || exit 1
swift build --build-tests 2>&1 | { grep -vE "prohibited flag|^\[[0-9]+/[0-9]+\] " || true; }
[[ ${PIPESTATUS[0]} -eq 0 ]] || exit 1

export CHAOS="${CHAOS:-full}"
CHAT_SERVICE_BINARY="$(swift build --show-bin-path)/chat-service"
export CHAT_SERVICE_BINARY
mkdir -p .build/chaos
results="$PWD/.build/chaos/results-$CHAOS.jsonl"
rm -f "$results" .build/chaos/*-"$CHAOS".log
export CHAOS_REPORT="$results"
if [[ $CHAOS == full ]]; then output="${CHAOS_OUTPUT:-docs/RELIABILITY.md}"; else output="${CHAOS_OUTPUT:-.build/chaos/RELIABILITY-$CHAOS.md}"; fi

status=0
logs=()
run() { # name filter timeout-seconds
    local log=".build/chaos/$1-$CHAOS.log"
    logs+=(--log "$1=$log")
    echo "== $1 ($CHAOS)"
    timeout "$3" swift test --skip-build --filter "$2" >"$log" 2>&1
    local code=$?
    grep -E "^(✘|✔ Suite|✔ Test run|✘ Test run)" "$log" | grep -v "^✘ Test .* recorded an issue" | cut -c1-300
    [[ $code -eq 0 ]] || { echo "   failed with status $code (log: $log)"; status=1; }
}
run scenarios ChaosTests 3600
for suite in RESPFuzzTests EntryCodecPropertyTests UpstreamDecoderPropertyTests EnvironmentPropertyTests; do
    run "$suite" "$suite" 1200
done

python3 scripts/chaos_report.py --results "$results" --mode "$CHAOS" "${logs[@]}" >"$output.tmp" && mv "$output.tmp" "$output"
echo "report: $output"
exit $status
