# Thin wrapper around CMake. Two commands do everything on a fresh Debian 12
# machine, as root:
#   make run    install what is missing, build, start the gateway on :8787
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
	@echo "sluice-gateway on http://$(LISTEN) (standalone, header-driven). Try:"
	@echo "  curl http://$(LISTEN)/v1/chat/completions -H 'x-sluice-provider: openai' \\"
	@echo "    -H \"Authorization: Bearer \$$OPENAI_API_KEY\" -H 'content-type: application/json' \\"
	@echo "    -d '{\"model\":\"gpt-4o-mini\",\"messages\":[{\"role\":\"user\",\"content\":\"hi\"}]}'"
	exec ./build/release/dataplane/sluice-gateway --listen $(LISTEN)

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

clean:
	rm -rf build

format:
	clang-format -i $$(git ls-files '*.c' '*.h')
