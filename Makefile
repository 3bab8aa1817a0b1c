# Thin wrapper around CMake. Two commands do everything on a fresh Debian 12
# machine, as root:
#   make run    install what is missing, build, start Postgres (embedded unless
#               SLUICE_DATABASE_URL is set), sluice-control on :8790 and the
#               gateway on :8787 (SLUICE_STANDALONE=1: the gateway alone)
#   make test   install what is missing, build with ASan+UBSan, run every test,
#               then the integration tests again under ThreadSanitizer
# and, not part of the test suite:
#   make bench  wrk against the mock directly, through nginx and through Sluice
JOBS ?= $(shell nproc)
LISTEN ?= 127.0.0.1:8787

.PHONY: all setup build run test test-build test-tsan bench clean format

all: build

setup:
	@bash tools/setup.sh

build: setup
	cmake -S . -B build/release -G Ninja -DCMAKE_BUILD_TYPE=Release -DSL_TESTS=ON >/dev/null
	cmake --build build/release -j $(JOBS)

run: build
	@LISTEN=$(LISTEN) bash tools/run.sh build/release

test-build: setup
	cmake -S . -B build/test -G Ninja -DCMAKE_BUILD_TYPE=Debug -DSL_SANITIZE=ON \
	    -DSL_WERROR=$(if $(CI),ON,OFF) >/dev/null
	cmake --build build/test -j $(JOBS)

test: test-build
	bash tests/conformance/setup.sh
	cd build/test && ctest --output-on-failure -j $(JOBS) --timeout 300
	$(MAKE) --no-print-directory test-tsan

# ThreadSanitizer over the integration suite (worker threads, /metrics across
# workers, shutdown); the last step of `make test`.
test-tsan: setup
	cmake -S . -B build/tsan -G Ninja -DCMAKE_BUILD_TYPE=Debug -DSL_MIMALLOC=OFF \
	    -DCMAKE_C_FLAGS="-fsanitize=thread -g -O1" -DCMAKE_EXE_LINKER_FLAGS="-fsanitize=thread" >/dev/null
	cmake --build build/tsan -j $(JOBS)
	cd build/tsan && ctest --output-on-failure -j $(JOBS) -L integration

bench: build
	bash tests/bench/run.sh build/release
	bash tests/bench/control.sh build/release
	python3 tests/bench/snapshot.py build/release --doc docs/benchmarks.md

clean:
	rm -rf build

format:
	clang-format -i $$(git ls-files '*.c' '*.h')
