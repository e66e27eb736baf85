# The two commands a newcomer needs: `make run` and `make test`. Everything else is a step of them.
JOBS ?= $(shell nproc)
DUET := build/release/duet

.PHONY: deps configure build run test bench asan debug format clean fuzz

deps:
	@bash scripts/install-deps.sh

configure: deps
	@cmake --preset release > /dev/null

build: configure
	@cmake --build build/release -j $(JOBS)

# The demo on the shipped models (models/README.md): evaluate the classifier on the Fashion-MNIST
# test set, draw one row per class with the generator (20 steps) and with its reflowed student (one
# step), let the classifier judge a few generated bags, classify and draw with the unified model
# (one network for both), quantise the classifier to int8 (accuracy and speed against the float
# file), then a short kernel benchmark.
CLASSIFIER := models/resnet20-fmnist.safetensors
GENERATOR := models/unet-xs-fmnist.safetensors
ONE_STEP := models/unet-xs-reflow-fmnist.safetensors
UNIFIED := models/unified-xs-fmnist.safetensors
run: build
	@mkdir -p out
	$(DUET) info -m $(CLASSIFIER)
	$(DUET) eval -m $(CLASSIFIER) --data fashion-mnist
	@if [ -f $(GENERATOR) ]; then \
	  $(DUET) sample -m $(GENERATOR) --class all --steps 20 --cfg 2 -s 7 -o out/classes.png && \
	  $(DUET) sample -m $(ONE_STEP) --class all --steps 1 --sampler euler -s 7 -o out/classes-1step.png && \
	  $(DUET) sample -m $(GENERATOR) --class bag -n 4 --steps 20 --cfg 2 -s 7 --out-dir out/bags && \
	  $(DUET) classify -m $(CLASSIFIER) --top 2 out/bags/*.png; fi
	@if [ -f $(UNIFIED) ]; then \
	  $(DUET) eval -m $(UNIFIED) --limit 2000 && \
	  $(DUET) sample -m $(UNIFIED) --class all --steps 20 --cfg 2 -s 7 -o out/unified-classes.png; fi
	$(DUET) quantize -m $(CLASSIFIER) -o out/resnet20-int8.safetensors --eval-limit 2000 --bench quick
	$(DUET) bench kernels --quick

test: build
	cd build/release && DUET_THREADS=2 ctest --output-on-failure -j 1

bench: build
	$(DUET) bench kernels

asan: deps
	cmake --preset asan > /dev/null && cmake --build build/asan -j $(JOBS)
	cd build/asan && ctest --output-on-failure

# Mutation fuzzing of every file input (checkpoints, run state, PNG, JPEG, IDX) under ASan:
# scripts/fuzz_inputs.py; FUZZ_CASES and FUZZ_SEED choose how many and which.
FUZZ_CASES ?= 400
FUZZ_SEED ?= 1
fuzz: build
	cmake --preset asan > /dev/null && cmake --build build/asan --target duet -j $(JOBS)
	python3 scripts/fuzz_inputs.py --duet build/asan/duet --cases $(FUZZ_CASES) --seed $(FUZZ_SEED)

debug: deps
	cmake --preset debug > /dev/null && cmake --build build/debug -j $(JOBS)

format:
	clang-format -i $$(git ls-files '*.cpp' '*.h')

clean:
	rm -rf build
