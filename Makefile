# Thin wrapper: the build is CMake, the stack scripts live in tools/.
BUILD      ?= build
BUILD_SAN  ?= build-asan
BUILD_FUZZ ?= build-fuzz
FUZZ_SECONDS ?= 300
JOBS       ?= $(shell nproc)
CMAKE_ARGS ?=

.PHONY: all deps build build-asan build-fuzz run test test-quarantine test-fast fuzz bench fmt fmt-check clean deploy-check

all: build

deps:
	@bash tools/install-deps.sh

build: deps
	@cmake -S . -B $(BUILD) -DCMAKE_BUILD_TYPE=RelWithDebInfo $(CMAKE_ARGS) >/dev/null
	@cmake --build $(BUILD) -j $(JOBS)

build-asan: deps
	@cmake -S . -B $(BUILD_SAN) -DCMAKE_BUILD_TYPE=Debug -DSB_SANITIZE=ON $(CMAKE_ARGS) >/dev/null
	@cmake --build $(BUILD_SAN) -j $(JOBS)

# The libFuzzer targets of tests/fuzz (clang), and only them.
build-fuzz: deps
	@CC=clang cmake -S . -B $(BUILD_FUZZ) -DSB_FUZZ=ON $(CMAKE_ARGS) >/dev/null
	@cmake --build $(BUILD_FUZZ) -j $(JOBS) --target sb_fuzz

# Build everything and run the platform locally until Ctrl-C.
run: build
	@bash tools/run-local.sh $(BUILD)

# The whole suite: unit + integration + format in the normal build, then under ASan+UBSan
# every unit test (runtime and services) and the fault-injection integration tests (label
# sanitize: outbox crash, Kafka outage, PostgreSQL restarts, realtime kill) against sanitized
# service binaries; then each fuzz target briefly over its seed corpus (label fuzz).
test: build build-asan build-fuzz
	@cd $(BUILD) && ctest --output-on-failure -j $(JOBS) --timeout 600 -LE quarantine
	@cd $(BUILD_SAN) && ctest --output-on-failure -j $(JOBS) --timeout 900 -L 'runtime|unit|sanitize'
	@cd $(BUILD_FUZZ) && ctest --output-on-failure -j $(JOBS) -L fuzz

# Tests in quarantine (label quarantine): each one fails on a bug that is open, named in the
# issue it belongs to and in docs/; run them by hand while fixing it. Today: it_ingest_http_test
# (after the broker restart, 3 acknowledged samples were missing from the topic in 2 of 4 runs).
test-quarantine: build
	@cd $(BUILD) && ctest --output-on-failure -j $(JOBS) --timeout 600 -L quarantine

# Every fuzz target for FUZZ_SECONDS each (FUZZ_TARGETS="a b" for some), JOBS at a time; the
# corpora grow in $(BUILD_FUZZ)/tests/fuzz/long/ and are reused by the next run.
fuzz: build-fuzz
	@FUZZ_JOBS=$(JOBS) bash tests/fuzz/run.sh long $(BUILD_FUZZ) $(FUZZ_SECONDS) $(FUZZ_TARGETS)

bench: build
	@bash bench/run.sh $(BUILD)

# Charts, argocd/, k8s/, Tiltfile, Dockerfiles and CI checked offline with the real tools;
# every rendered manifest lands in $(BUILD)/rendered/<env>/<chart>.yaml (tools/deploy/check.sh).
deploy-check: build
	@bash tools/deploy/check.sh $(BUILD)

fmt:
	@find services tools bench tests mesh -name '*.[ch]' 2>/dev/null | xargs -r clang-format -i

clean:
	rm -rf $(BUILD) $(BUILD_SAN) $(BUILD_FUZZ) .run
