#!/usr/bin/env bash
# `swift test "$@"`, with the failures printed again at the end when it fails: a CI log is read
# from its tail, and the thousands of log lines of a parallel run bury the one that failed.
# The first argument is the time limit in seconds (timeout(1)); the rest go to `swift test`.
set -uo pipefail
limit=$1
shift
log=$(mktemp "${TMPDIR:-/tmp}/swift-test.XXXXXX.log")
timeout "$limit" swift test "$@" 2>&1 | tee "$log"
status=${PIPESTATUS[0]}
if [[ $status -ne 0 ]]; then
    echo
    echo "=== swift test failed (exit $status); its failures again (full log: $log) ==="
    # Swift Testing marks a failed expectation and a failed test with ✘; XCTest says "error:".
    grep -E -A 6 "✘ Test .*recorded an issue|error: -\[|Fatal error|ERROR: AddressSanitizer|WARNING: ThreadSanitizer|SUMMARY:" "$log" | head -n 200
    grep -E "^✘ (Test|Suite) " "$log" | head -n 50
    # Alternations, not bracket expressions: in the C locale of a CI shell ✔ is three bytes.
    [[ $status -eq 124 ]] && echo "timed out after $limit s; the tests still running:" && \
        comm -23 <(grep -oE "^◇ Test [^ ]+" "$log" | sort -u) \
            <(grep -oE "^(✔|✘) Test [^ ]+" "$log" | sed -E 's/^(✔|✘)/◇/' | sort -u) | head -n 50
    exit "$status"
fi
rm -f "$log"
