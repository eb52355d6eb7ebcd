# Thin wrapper over CMake. `make demo` and `make test` are the two commands in README.md.
BUILD      ?= build
ASAN_BUILD ?= build-asan
JOBS       ?= $(shell nproc)
ASSETS     ?= $(abspath ../shared/assets)
CMAKE_ARGS ?=

.PHONY: all deps build demo test test-asan bench clean

all: build

deps:
	@./scripts/install-deps.sh

$(BUILD)/CMakeCache.txt:
	cmake -S . -B $(BUILD) -DCMAKE_BUILD_TYPE=Release -DHY_ASSETS_DIR=$(ASSETS) $(CMAKE_ARGS)

build: deps $(BUILD)/CMakeCache.txt
	cmake --build $(BUILD) -j $(JOBS)

demo: build
	@./scripts/demo.sh $(BUILD)/hotyolo $(ASSETS)

test: build
	cd $(BUILD) && ctest --output-on-failure -j $(JOBS)

# Same tests under AddressSanitizer + LeakSanitizer + UBSan (CI runs this too).
test-asan: deps
	cmake -S . -B $(ASAN_BUILD) -DCMAKE_BUILD_TYPE=RelWithDebInfo -DHY_ASSETS_DIR=$(ASSETS) \
	  -DHY_SANITIZE_ADDRESS=ON -DHY_SANITIZE_UNDEFINED=ON -DHY_BUILD_BENCH=OFF $(CMAKE_ARGS)
	cmake --build $(ASAN_BUILD) -j $(JOBS)
	cd $(ASAN_BUILD) && HY_TEST_SANITIZED=1 ctest --output-on-failure -j $(JOBS)

bench: build
	@./scripts/bench.sh $(BUILD) $(ASSETS)

clean:
	rm -rf $(BUILD) $(ASAN_BUILD)
