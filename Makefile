# chat-service developer targets. `make run` and `make test` are the two the README promises.
.PHONY: run test test-unit test-integration build clean compose-config

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

clean:
	rm -rf .build .run

compose-config: ## validate compose/docker-compose.yml, with and without the sentinel profile (what CI checks)
	@command -v docker-compose >/dev/null || scripts/install-deps.sh docker-compose
	docker-compose -f compose/docker-compose.yml config
	docker-compose -f compose/docker-compose.yml --profile sentinel config --quiet
