# XDP offload simulator. `make sim` and `make test` set everything up on a fresh Debian machine.
.DEFAULT_GOAL := help
SHELL := /bin/bash
PY := .venv/bin/python
OFFLOAD := .venv/bin/offload
MULTIARCH := $(shell gcc -print-multiarch 2>/dev/null || echo x86_64-linux-gnu)
CLANG ?= clang
BPF_CFLAGS := -O2 -g -target bpf -mcpu=v3 -Wall -Werror -I/usr/include/$(MULTIARCH) -Iexamples/xdp
CORPUS_SRC := $(wildcard examples/xdp/*.c)
CORPUS_OBJ := $(patsubst examples/xdp/%.c,build/xdp/%.o,$(CORPUS_SRC))
PYTEST_ARGS ?=
# pytest workers (pytest-xdist): the machine has 2 cores; the RTL simulations dominate
TEST_JOBS ?= 2

.PHONY: help setup corpus test fuzz lint sim regression report clean
help:
	@echo "make setup   - system packages (apt-get) and .venv, idempotent"
	@echo "make corpus  - build the XDP corpus into build/xdp/"
	@echo "make test    - set up, build the corpus, run the test suite"
	@echo "make sim     - set up, build the corpus, run the default simulation set"
	@echo "make report  - set up, build the corpus, write the offload report (build/report/index.html)"
	@echo "make regression - RTL: cocotb unit and system testbenches, lint, yosys, then every"
	@echo "                  corpus program co-simulated (summary table, JUnit XML in build/rtl)"
	@echo "make fuzz    - the property and mutation tests with fresh random examples and ten"
	@echo "               times the budget (hypothesis profile 'explore'); make test is derandomized"
	@echo "make lint    - ruff"

setup: .venv/.installed
.venv/.installed: pyproject.toml scripts/setup.sh
	@scripts/setup.sh

# setup.sh also checks system packages every time (cheap), so a removed package is noticed.
.PHONY: syspkgs
syspkgs:
	@scripts/setup.sh

corpus: syspkgs $(CORPUS_OBJ)
build/xdp/%.o: examples/xdp/%.c $(wildcard examples/xdp/*.h)
	@mkdir -p $(dir $@)
	$(CLANG) $(BPF_CFLAGS) -c $< -o $@

# Hypothesis runs the derandomized "ci" profile (tests/conftest.py): same commit, same result.
test: syspkgs setup corpus
	.venv/bin/ruff check .
	HYPOTHESIS_PROFILE=ci $(PY) -m pytest -n $(TEST_JOBS) $(PYTEST_ARGS)

# Long searches: every hypothesis test with fresh random examples and 10x the budget. A
# failure prints the example and its reproduction blob; make it an @example or a test.
fuzz: syspkgs setup corpus
	HYPOTHESIS_PROFILE=explore $(PY) -m pytest -n $(TEST_JOBS) \
		$$(grep -rl "from hypothesis" tests --include='test_*.py') $(PYTEST_ARGS)

lint: setup
	.venv/bin/ruff check .

# The default scenario set: every corpus program on pipe and host, 64 B and IMIX at 100G.
sim: syspkgs setup corpus
	$(PY) -m offload.default_set

# The offload feasibility report: every corpus program on every target (build/report/).
REPORT_DIR ?= build/report
RTL_RESULTS ?= build/rtl/results
report: syspkgs setup corpus rtl-results
	$(OFFLOAD) report $(CORPUS_OBJ) -o $(REPORT_DIR) --maps-dir examples/xdp/scenarios \
		$(if $(wildcard $(RTL_RESULTS)/*.json),--rtl-results $(RTL_RESULTS)) $(REPORT_ARGS)

# RTL co-simulation results for the report: every program that maps, reusing results newer
# than their object and the RTL sources. A program that differs is flagged in the report.
# Back-pressure drawn up to 0.5 (offload.regression.REPORT_BACKPRESSURE): bounded cycles;
# make regression draws up to 0.99.
RTL_PACKETS ?= 200
RTL_REPORT_BACKPRESSURE ?= 0.5
.PHONY: rtl-results
rtl-results: syspkgs setup corpus
	-$(PY) -m offload.regression --reuse --packets $(RTL_PACKETS) --results $(RTL_RESULTS) \
		--max-backpressure $(RTL_REPORT_BACKPRESSURE)

# The RTL regression: unit and system testbenches, lint and yosys (tests/rtl, JUnit XML),
# then every corpus program through pipe_top (summary table, results, JUnit XML).
# WAVES=1 dumps FST waveforms into the build folders.
regression: syspkgs setup corpus
	@mkdir -p build/rtl
	$(PY) -m pytest tests/rtl -n $(TEST_JOBS) --junitxml=build/rtl/junit-tb.xml $(PYTEST_ARGS)
	$(PY) -m offload.regression --packets $(RTL_PACKETS) --results $(RTL_RESULTS) \
		--junit build/rtl/junit-system.xml --summary build/rtl/summary.md

clean:
	rm -rf build
