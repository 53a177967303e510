# Thin wrapper: the build is CMake, the stack scripts live in tools/.
BUILD      ?= build
BUILD_SAN  ?= build-asan
JOBS       ?= $(shell nproc)
CMAKE_ARGS ?=

.PHONY: all deps build build-asan run test test-fast bench fmt fmt-check clean

all: build

deps:
	@bash tools/install-deps.sh

build: deps
	@cmake -S . -B $(BUILD) -DCMAKE_BUILD_TYPE=RelWithDebInfo $(CMAKE_ARGS) >/dev/null
	@cmake --build $(BUILD) -j $(JOBS)

build-asan: deps
	@cmake -S . -B $(BUILD_SAN) -DCMAKE_BUILD_TYPE=Debug -DSB_SANITIZE=ON $(CMAKE_ARGS) >/dev/null
	@cmake --build $(BUILD_SAN) -j $(JOBS)

# Build everything and run the platform locally until Ctrl-C.
run: build
	@bash tools/run-local.sh $(BUILD)

# The whole suite: unit + integration + format in the normal build, then the
# runtime's tests again under ASan+UBSan.
test: build build-asan
	@cd $(BUILD) && ctest --output-on-failure -j $(JOBS) --timeout 600
	@cd $(BUILD_SAN) && ctest --output-on-failure -j $(JOBS) --timeout 600 -L runtime

bench: build
	@bash bench/run.sh $(BUILD)

fmt:
	@find services tools bench tests mesh -name '*.[ch]' 2>/dev/null | xargs -r clang-format -i

clean:
	rm -rf $(BUILD) $(BUILD_SAN) .run
