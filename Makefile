PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
BENCH_STAMP := $(VENV)/.bench-installed

.PHONY: test test-fast lint bench demo clean nemesis

$(STAMP): setup.cfg pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e '.[test,lint]'
	touch $(STAMP)

# The whole suite, with the 25 slowest tests and their times at the end.
test: $(STAMP)
	$(BIN)/python -m pytest -q --durations=25 $(PYTEST_ARGS)

# All but the tests marked slow (real chordchat processes, network namespaces).
test-fast: $(STAMP)
	$(BIN)/python -m pytest -q --durations=25 -m "not slow" $(PYTEST_ARGS)

# The bench extra (kademlia, matplotlib) goes into the same .venv, for the benchmark only.
$(BENCH_STAMP): $(STAMP) setup.cfg
	$(BIN)/pip install --quiet -e '.[bench]'
	touch $(BENCH_STAMP)

# Quick by default (minutes); `make bench BENCH_ARGS=--full` for the whole study.
# Some phases only: `make bench BENCH_ARGS='--only chat merge'` (to bench/.cache/only/).
bench: $(BENCH_STAMP)
	$(BIN)/python -m bench $(BENCH_ARGS)

demo: $(STAMP)
	$(BIN)/python -m tui.demo $(DEMO_ARGS)

# Randomized faults across namespace hosts, then the history checker (needs root):
# `make nemesis SEED=23 MINUTES=10` replays seed 23's schedule for ten minutes.
SEED ?=
MINUTES ?= 10
HOSTS ?= 8
nemesis: $(STAMP)
	$(BIN)/python -m tests.support.nemesis $(if $(SEED),--seed $(SEED)) --minutes $(MINUTES) --hosts $(HOSTS)

lint: $(STAMP)
	$(BIN)/ruff check core tui tests bench

clean:
	rm -rf $(VENV) build *.egg-info .pytest_cache
