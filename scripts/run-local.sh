#!/usr/bin/env bash
# Runs chat-service on 127.0.0.1:8082 (gRPC 9092) with a local redis-server (started on 127.0.0.1:6379 when
# nothing answers there), the stub upstream on 127.0.0.1:8090 (1000 chats) and the chat store
# in .run/chat-service.sqlite3, with demo secrets. Every variable can be overridden from the environment.
set -euo pipefail
cd "$(dirname "$0")/.."
export PATH="/opt/swift/usr/bin:$PATH"
scripts/install-deps.sh
swift build -c release --product chat-service 2>&1 | { grep -vE "prohibited flag|^\[[0-9]+/[0-9]+\] " || true; }
binary="$(swift build -c release --show-bin-path)/chat-service"
mkdir -p .run
if ! redis-cli -h 127.0.0.1 -p 6379 ping >/dev/null 2>&1; then
    echo "starting redis-server on 127.0.0.1:6379 (data in .run/)"
    redis-server --bind 127.0.0.1 --port 6379 --dir "$PWD/.run" --daemonize yes \
        --pidfile "$PWD/.run/redis.pid" --logfile "$PWD/.run/redis.log" --save "" --appendonly yes
    for _ in $(seq 50); do redis-cli -p 6379 ping >/dev/null 2>&1 && break; sleep 0.1; done
fi
export PARTICIPANTS_API_URL="${PARTICIPANTS_API_URL:-http://127.0.0.1:8090}"
if [[ "$PARTICIPANTS_API_URL" == "http://127.0.0.1:8090" ]] && ! curl -sf -o /dev/null http://127.0.0.1:8090/admin/stats; then
    echo "starting the stub upstream on 127.0.0.1:8090 (log in .run/stub-upstream.log)"
    "$binary" stub-upstream --host 127.0.0.1 --port 8090 --chats 1000 --participants-per-chat 20 \
        >"$PWD/.run/stub-upstream.log" 2>&1 &
    stub_pid=$!
    trap 'kill $stub_pid 2>/dev/null || true' EXIT
    for _ in $(seq 50); do curl -sf -o /dev/null http://127.0.0.1:8090/admin/stats && break; sleep 0.1; done
fi
export JWT_SECRET="${JWT_SECRET:-dev-jwt-secret}"
export ADMIN_TOKEN="${ADMIN_TOKEN:-dev-admin-token}"
export HTTP_HOST="${HTTP_HOST:-127.0.0.1}"
export GRPC_HOST="${GRPC_HOST:-127.0.0.1}"
# The chat store: SQLite in .run/ unless CHAT_STORE=postgres (with CHAT_POSTGRES_URL) is set.
export CHAT_SQLITE_PATH="${CHAT_SQLITE_PATH:-$PWD/.run/chat-service.sqlite3}"
# Not exec: the trap above stops the stub upstream when the service exits.
"$binary" serve
