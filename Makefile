# The two commands a newcomer needs: `make run` and `make test`. Everything else is a step of them.
JOBS ?= $(shell nproc)
DUET := build/release/duet

.PHONY: deps configure build run test bench asan debug format clean

deps:
	@bash scripts/install-deps.sh

configure: deps
	@cmake --preset release > /dev/null

build: configure
	@cmake --build build/release -j $(JOBS)

# The main job that exists so far: describe the built-in ResNet-20, then a short kernel benchmark.
run: build
	$(DUET) info --arch resnet20
	$(DUET) bench kernels --quick

test: build
	cd build/release && DUET_THREADS=2 ctest --output-on-failure -j 1

bench: build
	$(DUET) bench kernels

asan: deps
	cmake --preset asan > /dev/null && cmake --build build/asan -j $(JOBS)
	cd build/asan && ctest --output-on-failure

debug: deps
	cmake --preset debug > /dev/null && cmake --build build/debug -j $(JOBS)

format:
	clang-format -i $$(git ls-files '*.cpp' '*.h')

clean:
	rm -rf build
