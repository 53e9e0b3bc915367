# chat-service developer targets. `make run` and `make test` are the two the README promises.
.PHONY: run test test-unit test-integration build clean bench bench-micro

run:            ## run the service on 127.0.0.1:8082 with a local redis-server
	scripts/run-local.sh

test:           ## the whole default test suite (what CI runs)
	scripts/test.sh

test-unit:      ## unit tests only, no servers
	scripts/test.sh --filter UnitTests

test-integration: ## integration tests against real redis-server processes
	scripts/test.sh --filter IntegrationTests

build:
	swift build

bench:          ## end-to-end benchmarks against redis-benchmark, nginx and webdis (docs/PERFORMANCE.md)
	Benchmarks/scripts/bench.sh

bench-micro:    ## package-benchmark micro benchmarks: codec, RESP, supervisor, L1
	cd Benchmarks && PATH="/opt/swift/usr/bin:$$PATH" swift package benchmark

clean:
	rm -rf .build .run
