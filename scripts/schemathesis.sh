#!/usr/bin/env bash
# The HTTP contract check (`make contract`, run by .ci/run after `make test`): schemathesis, an
# outside fuzzer, against a running chat-service and the document it serves at /openapi.yaml
# (docs/openapi.yaml, compiled in).
#
# Starts, on free loopback ports, a redis-server, the stub upstream and the service (debug build,
# ADMIN_TOKEN and JWT_SECRET set, SQLite in a temporary folder), then runs every operation twice:
# once with credentials (a user JWT for the userJWT scheme, the admin token for adminToken; see
# the generated schemathesis.toml) and once without any. Checks: not_a_server_error,
# status_code_conformance, content_type_conformance, response_schema_conformance, over every
# phase (examples, coverage, fuzzing, stateful). Every answer is JSON, the HTTP server's own
# included (413 for a body over HTTP_MAX_BODY_SIZE, 400 for a request it cannot parse), so no
# check is switched off. The coverage phase also sends methods no operation declares, TRACE
# among them: each is answered 405 with `Allow` (docs/DECISIONS.md), so none is left out.
#
# Bounds: CONTRACT_MAX_EXAMPLES examples per operation (default 100), each pass under
# CONTRACT_TIMEOUT seconds (default 600); the two passes take about 2-3 minutes on the 2-core
# machine once the build is there. CONTRACT_SEED (default 17) makes a run repeatable. One worker:
# with two, hypothesis on Python 3.11 sometimes fails inside `ast.parse` ("AST constructor
# recursion depth mismatch"), an interpreter bug, not a finding.
# Reports (JUnit, and the service's log) go to .build/contract/.
set -euo pipefail
cd "$(dirname "$0")/.."
export PATH="/opt/swift/usr/bin:$PATH"

max_examples="${CONTRACT_MAX_EXAMPLES:-100}"
run_timeout="${CONTRACT_TIMEOUT:-600}"
seed="${CONTRACT_SEED:-17}"
schemathesis_version="4.32.5"
out="$PWD/.build/contract"
venv="$PWD/.build/contract-venv"

scripts/install-deps.sh python3-venv
swift build --product chat-service 2>&1 | { grep -vE "prohibited flag|^\[[0-9]+/[0-9]+\] " || true; }
binary="$(swift build --show-bin-path)/chat-service"

# Debian's Python (python3-venv above), whatever else is first on the PATH.
python=/usr/bin/python3
[[ -x "$python" ]] || python="$(command -v python3)"
if [[ "$("$venv/bin/schemathesis" --version 2>/dev/null)" != *"$schemathesis_version"* ]]; then
    rm -rf "$venv"
    "$python" -m venv "$venv"
    "$venv/bin/pip" install --quiet --disable-pip-version-check "schemathesis==$schemathesis_version"
fi

rm -rf "$out"
mkdir -p "$out"
work="$(mktemp -d /tmp/chat-contract.XXXXXX)"
pids=()
cleanup() {
    local pid
    for pid in "${pids[@]}"; do kill "$pid" 2>/dev/null || true; done
    for pid in "${pids[@]}"; do wait "$pid" 2>/dev/null || true; done
    rm -rf "$work"
}
trap cleanup EXIT

free_port() {
    "$python" -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1]); s.close()'
}
wait_for() {  # wait_for WHAT COMMAND...: up to 30 s
    local what="$1"
    shift
    for _ in $(seq 300); do
        "$@" >/dev/null 2>&1 && return 0
        sleep 0.1
    done
    echo "error: $what did not come up" >&2
    return 1
}

redis_port="$(free_port)"
redis-server --bind 127.0.0.1 --port "$redis_port" --save "" --appendonly no --dir "$work" \
    >"$out/redis.log" 2>&1 &
pids+=($!)
wait_for "redis-server" redis-cli -h 127.0.0.1 -p "$redis_port" ping

stub_port="$(free_port)"
"$binary" stub-upstream --host 127.0.0.1 --port "$stub_port" --chats 50 --participants-per-chat 5 \
    >"$out/stub-upstream.log" 2>&1 &
pids+=($!)
wait_for "the stub upstream" curl -sf "http://127.0.0.1:$stub_port/admin/stats"

http_port="$(free_port)"
jwt_secret="contract-jwt-secret"
admin_token="contract-admin-token"
env REDIS_URL="redis://127.0.0.1:$redis_port/0" \
    PARTICIPANTS_API_URL="http://127.0.0.1:$stub_port" \
    HTTP_HOST=127.0.0.1 HTTP_PORT="$http_port" GRPC_HOST=127.0.0.1 GRPC_PORT=0 \
    JWT_SECRET="$jwt_secret" ADMIN_TOKEN="$admin_token" \
    CHAT_SQLITE_PATH="$work/chat-service.sqlite3" INSTANCE_ID=contract SHUTDOWN_TIMEOUT=3s \
    "$binary" serve >"$out/service.log" 2>&1 &
service_pid=$!
pids+=("$service_pid")
base="http://127.0.0.1:$http_port"
wait_for "chat-service" curl -sf "$base/ready"

# The served document must be the file, byte for byte, as application/yaml. Schemathesis then
# reads the file: loaded from the service's URL it would leave out the operation serving it.
curl -sf -D "$work/served.headers" "$base/openapi.yaml" -o "$work/served.yaml"
cmp docs/openapi.yaml "$work/served.yaml"
grep -qi '^content-type: application/yaml' "$work/served.headers" \
    || { echo "error: GET /openapi.yaml is not application/yaml" >&2; exit 1; }

user_token="$(JWT_SECRET="$jwt_secret" "$binary" mint-token --subject alice --ttl 7200)"
export CONTRACT_USER_TOKEN="$user_token" CONTRACT_ADMIN_TOKEN="$admin_token"
# No cache: schemathesis would otherwise keep one in .schemathesis/ under the work tree.
common='[cache]
enabled = false'
echo "$common" >"$work/anonymous.toml"
cat >"$work/authenticated.toml" <<EOF
$common

[auth.openapi.userJWT]
bearer = "\${CONTRACT_USER_TOKEN}"

[auth.openapi.adminToken]
bearer = "\${CONTRACT_ADMIN_TOKEN}"
EOF

checks=not_a_server_error,status_code_conformance,content_type_conformance,response_schema_conformance
status=0
for pass in authenticated anonymous; do
    echo "== schemathesis, $pass: every operation of docs/openapi.yaml against $base"
    timeout "$run_timeout" "$venv/bin/schemathesis" --no-color --config-file "$work/$pass.toml" \
        run docs/openapi.yaml --url "$base" \
        --checks "$checks" \
        --max-examples "$max_examples" \
        --seed "$seed" \
        --workers 1 \
        --request-timeout 15 \
        --suppress-health-check all \
        --generation-database none \
        --report junit --report-junit-path "$out/$pass.junit.xml" || status=$?
    [[ $status -eq 0 ]] || { echo "schemathesis ($pass) failed: exit $status" >&2; break; }
done

# Whatever the fuzzer sent, the service must still be there and healthy.
if ! kill -0 "$service_pid" 2>/dev/null || ! curl -sf "$base/health" >/dev/null; then
    echo "error: chat-service did not survive the run; its log: $out/service.log" >&2
    tail -n 50 "$out/service.log" >&2
    status=1
fi
exit "$status"
