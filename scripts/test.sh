#!/usr/bin/env bash
# The whole default test suite: unit and integration tests against real redis-server processes
# that the tests start themselves on free loopback ports. Bounded: well under 30 minutes.
# Extra arguments go to `swift test` (e.g. --filter UnitTests).
set -euo pipefail
cd "$(dirname "$0")/.."
export PATH="/opt/swift/usr/bin:$PATH"
scripts/install-deps.sh
swift build --build-tests 2>&1 | { grep -vE "prohibited flag|^\[[0-9]+/[0-9]+\] " || true; }
# The subprocess tests run the chat-service binary that this build just produced.
CHAT_SERVICE_BINARY="$(swift build --show-bin-path)/chat-service"
export CHAT_SERVICE_BINARY
scripts/swift-test.sh 1500 --skip-build "$@"
