# Thin wrapper over CMake. `make demo` and `make test` are the two commands in README.md.
BUILD      ?= build
ASAN_BUILD ?= build-asan
TSAN_BUILD ?= build-tsan
JOBS       ?= $(shell nproc)
ASSETS     ?= $(abspath ../shared/assets)
CMAKE_ARGS ?=

.PHONY: all deps deps-demo deps-bench build python demo test test-asan test-tsan fuzz fuzz-ci bench bench-train bench-finetune clean

all: build

deps:
	@./scripts/install-deps.sh

$(BUILD)/CMakeCache.txt:
	cmake -S . -B $(BUILD) -DCMAKE_BUILD_TYPE=Release -DHY_ASSETS_DIR=$(ASSETS) $(CMAKE_ARGS)

build: deps $(BUILD)/CMakeCache.txt
	cmake --build $(BUILD) -j $(JOBS)

# Python package (python/, docs/python.md): libhotyolo.so bundled into it, installed with
# Debian's pip and setuptools (no build isolation, offline) into PYTHON_VENV, a venv over the
# system's site packages (Debian's numpy). Use it with $(PYTHON_VENV)/bin/python, or activate it.
PYTHON      ?= /usr/bin/python3
PYTHON_VENV ?= $(BUILD)/venv
python: deps $(BUILD)/CMakeCache.txt
	cmake --build $(BUILD) -j $(JOBS) --target hotyolo_shared
	@[ -x $(PYTHON_VENV)/bin/pip ] || $(PYTHON) -m venv --system-site-packages $(PYTHON_VENV)
	HOTYOLO_LIBRARY=$(abspath $(BUILD))/libhotyolo.so $(PYTHON_VENV)/bin/pip install -q \
	  --no-build-isolation --no-deps --no-index --force-reinstall ./python
	@$(PYTHON_VENV)/bin/python -c 'import hotyolo; print("make python: hotyolo", hotyolo.__version__, "in", "$(PYTHON_VENV)", "library", hotyolo.library_path)'

# The demo installs only the build tools and the libraries hotyolo runs with (install-deps.sh
# --demo): not the test tools (Chromium, Prometheus, Node.js, clang, ...) that `make test` adds.
deps-demo:
	@./scripts/install-deps.sh --demo

demo: deps-demo $(BUILD)/CMakeCache.txt
	cmake --build $(BUILD) -j $(JOBS)
	@./scripts/demo.sh $(BUILD)/hotyolo $(ASSETS)

test: build
	cd $(BUILD) && ctest --output-on-failure -j $(JOBS)

# Same tests under AddressSanitizer + LeakSanitizer + UBSan (CI runs this too).
test-asan: deps
	cmake -S . -B $(ASAN_BUILD) -DCMAKE_BUILD_TYPE=RelWithDebInfo -DHY_ASSETS_DIR=$(ASSETS) \
	  -DHY_SANITIZE_ADDRESS=ON -DHY_SANITIZE_UNDEFINED=ON -DHY_BUILD_BENCH=OFF $(CMAKE_ARGS)
	cmake --build $(ASAN_BUILD) -j $(JOBS)
	cd $(ASAN_BUILD) && HY_TEST_SANITIZED=1 ctest --output-on-failure -j $(JOBS)

# The C test suites under ThreadSanitizer (not in CI: ~10 min on 2 cores), then one small
# `hotyolo bench`. The CLI scripts and the 138-image reference run are left out: TSan makes a
# forward pass ~20x slower, past their time limits.
test-tsan: deps
	cmake -S . -B $(TSAN_BUILD) -DCMAKE_BUILD_TYPE=RelWithDebInfo -DHY_ASSETS_DIR=$(ASSETS) \
	  -DHY_SANITIZE_THREAD=ON -DHY_BUILD_BENCH=OFF $(CMAKE_ARGS)
	cmake --build $(TSAN_BUILD) -j $(JOBS)
	cd $(TSAN_BUILD) && HY_TEST_SANITIZED=1 ctest --output-on-failure -j $(JOBS) -E '^(cli_|test_reference$$)'
	cd $(TSAN_BUILD) && ./hotyolo bench $(abspath $(ASSETS))/weights/yolov8n.pt --imgsz 64 --runs 3 --engines 1 \
	  --threads 2 >/dev/null # its reference loops run on 2 threads; TSan exits 66 on a report

# libFuzzer targets (fuzz/, docs/fuzzing.md) built with clang + ASan + UBSan in build-fuzz,
# each run FUZZ_SECONDS; exits non-zero on a finding (reproducers in build-fuzz/findings/).
FUZZ_SECONDS ?= 300
FUZZ_TARGETS ?=
fuzz: deps
	HY_ASSETS=$(ASSETS) FUZZ_SECONDS=$(FUZZ_SECONDS) ./scripts/fuzz.sh $(FUZZ_TARGETS)

# CI: every target for 60 s, two at a time (~5 min of fuzzing on 2 cores).
fuzz-ci: deps
	HY_ASSETS=$(ASSETS) FUZZ_SECONDS=60 FUZZ_JOBS=2 ./scripts/fuzz.sh

# Training speed (docs/bench.md): bench_train, hotyolo beside the PyTorch peer
# bench/train_peer.py (Debian's python3-torch, installed here by install-deps.sh --bench; the
# peer reports itself skipped when it cannot be installed).
BENCH_TRAIN_ARGS ?=
BENCH_TRAIN = $(BUILD)/bench_train --weights $(ASSETS)/weights/yolov8n.pt --peer bench/train_peer.py $(BENCH_TRAIN_ARGS)

deps-bench:
	@./scripts/install-deps.sh --bench || echo "make: the PyTorch peer could not be installed (its rows will say skipped)"

bench: build deps-bench
	@./scripts/bench.sh $(BUILD) $(ASSETS)
	@echo
	@$(BENCH_TRAIN)

bench-train: build deps-bench
	@$(BENCH_TRAIN)

# Issue 17's fine-tuning acceptance on datasets/bccd (pretrained --freeze 10 vs scratch vs staged
# unfreezing, 20 epochs each: about 3 x 3 min on 2 cores); FINETUNE_OUT keeps the runs.
FINETUNE_OUT ?=
bench-finetune: build
	@./bench/finetune.sh $(BUILD)/hotyolo $(ASSETS) $(FINETUNE_OUT)

clean:
	rm -rf $(BUILD) $(ASAN_BUILD) $(TSAN_BUILD) build-fuzz
