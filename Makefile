# chat-service developer targets. `make run` and `make test` are the two the README promises.
.PHONY: run test format lint test-unit test-integration contract build clean compose-config chaos chaos-fast sanitize-thread sanitize-address bench bench-micro

SHELL := /bin/bash
SWIFT_PATH := PATH=/opt/swift/usr/bin:$$PATH
# What the sanitizer targets run (chaos scenarios are skipped, as in `make test`). AddressSanitizer:
# every suite. ThreadSanitizer: the unit tests by default; `make sanitize-thread TSAN_FILTER=` runs
# every suite (CI runs the default), where a few timing-bound integration tests (leader TTLs, HTTP drain windows) can
# miss their windows under TSan's slowdown on a loaded machine (docs/RELIABILITY.md).
ASAN_FILTER ?=
TSAN_FILTER ?= --filter UnitTests
# How the AddressSanitizer target runs its test passes (arguments follow: time limit, swift test's).
# The suppressions cover one overflow inside Foundation (the file says which). At most 6 tests run
# at once: the sanitizer's slowdown on two cores otherwise starves timing-bound tests (leases,
# drain windows) of their windows, and the pass takes no longer for it.
ASAN_TEST = $(SWIFT_PATH) CHAT_SERVICE_BINARY=$(CURDIR)/.build-asan/debug/chat-service \
	ASAN_OPTIONS="detect_leaks=0 halt_on_error=1 suppressions=$(CURDIR)/scripts/asan-suppressions.txt" \
	SWT_EXPERIMENTAL_MAXIMUM_PARALLELIZATION_WIDTH=6 scripts/swift-test.sh

# Everything swift-format formats and checks (.swift-format); generated gRPC code opts out by its
# own swift-format-ignore-file comment.
FORMAT_PATHS := Package.swift Sources Tests Plugins Benchmarks/Package.swift Benchmarks/Sources Benchmarks/Benchmarks

run:            ## run the service on 127.0.0.1:8082 with a local redis-server
	scripts/run-local.sh

format:         ## formats the Swift code in place (swift-format, .swift-format)
	$(SWIFT_PATH) swift format format --in-place --recursive --parallel $(FORMAT_PATHS)

lint:           ## fails when a Swift file is not formatted as `make format` would (CI)
	$(SWIFT_PATH) swift format lint --strict --recursive --parallel $(FORMAT_PATHS)

test:           ## the whole default test suite (what CI runs); chaos scenarios are skipped
	scripts/test.sh

test-unit:      ## unit tests only, no servers
	scripts/test.sh --filter UnitTests

test-integration: ## integration tests against real redis-server processes
	scripts/test.sh --filter IntegrationTests

contract:       ## schemathesis against a running service and docs/openapi.yaml (CI, after make test)
	scripts/schemathesis.sh

chaos:          ## every chaos scenario at full length, then docs/RELIABILITY.md from the figures
	CHAOS=full scripts/chaos.sh

chaos-fast:     ## the chaos scenarios with short faults (CI); report in .build/chaos/RELIABILITY-fast.md
	CHAOS=fast scripts/chaos.sh

sanitize-thread: ## tests under ThreadSanitizer (TSAN_FILTER, default the unit tests), in .build-tsan
	scripts/install-deps.sh
	set -o pipefail; $(SWIFT_PATH) swift build --build-tests --sanitize=thread --scratch-path .build-tsan 2>&1 | { grep -vE "prohibited flag|Cannot export local symbol|^\[[0-9]+/[0-9]+\] " || true; }
	$(SWIFT_PATH) CHAT_SERVICE_BINARY=$(CURDIR)/.build-tsan/debug/chat-service TSAN_OPTIONS="halt_on_error=1 second_deadlock_stack=1 suppressions=$(CURDIR)/scripts/tsan.supp" \
		scripts/swift-test.sh 3000 --skip-build --sanitize=thread --scratch-path .build-tsan $(TSAN_FILTER)

sanitize-address: ## every suite under AddressSanitizer (ASAN_FILTER), in .build-asan
	scripts/install-deps.sh
	@# The build runs the EmbedText plugin tool, itself built with AddressSanitizer: its
	@# LeakSanitizer would fail the build over what the short-lived tool leaves at exit.
	set -o pipefail; $(SWIFT_PATH) ASAN_OPTIONS="detect_leaks=0" swift build --build-tests --sanitize=address --scratch-path .build-asan 2>&1 | { grep -vE "prohibited flag|Cannot export local symbol|^\[[0-9]+/[0-9]+\] " || true; }
	$(ASAN_TEST) 3000 --skip-build --sanitize=address --scratch-path .build-asan $(or $(ASAN_FILTER),--skip RedisClusterModeTests)
	@# The cluster suite alone after the rest: each of its tests starts six redis-servers, and beside
	@# the timing-bound suites under the sanitizer's slowdown that crowds them out of their windows.
	$(if $(ASAN_FILTER),,$(ASAN_TEST) 1200 --skip-build --sanitize=address --scratch-path .build-asan --filter RedisClusterModeTests)

build:
	swift build

bench:          ## end-to-end benchmarks against redis-benchmark, nginx and webdis (docs/PERFORMANCE.md)
	Benchmarks/scripts/bench.sh

bench-micro:    ## package-benchmark micro benchmarks: codec, RESP, supervisor, L1
	cd Benchmarks && PATH="/opt/swift/usr/bin:$$PATH" swift package benchmark

clean:
	rm -rf .build .build-tsan .build-asan .run

compose-config: ## validate compose/docker-compose.yml, without a profile and with the sentinel and cluster profiles (what CI checks)
	@command -v docker-compose >/dev/null || scripts/install-deps.sh docker-compose
	docker-compose -f compose/docker-compose.yml config
	docker-compose -f compose/docker-compose.yml --profile sentinel config --quiet
	docker-compose -f compose/docker-compose.yml --profile cluster config --quiet
