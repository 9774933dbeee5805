# Two commands do everything on a fresh machine with Python 3.10+ and pip:
#   make run    set up .venv, then run the whole notebook series on the tiny CPU profile -> runs/nb/
#   make test   set up .venv, then run the test suite (what CI runs)
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

.PHONY: run test setup lint notebooks exercises doctor clean book
run: setup
	$(BIN)/supersmall notebooks run --profile $(PROFILE) --out $(OUT)

book: setup
	$(BIN)/python -m supersmall.tools.book --executed $(OUT) --out runs/book

test: setup
	$(BIN)/python -m pytest -q -ra

setup: $(VENV)/.installed

$(VENV)/.installed: pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install -q $(TORCH_INDEX) "$(TORCH_SPEC)"
	$(BIN)/python -m pip install -q -e ".[dev]"
	touch $@

lint: setup
	$(BIN)/ruff check .
	$(BIN)/nbstripout --verify notebooks/*.ipynb solutions/*.ipynb exercises/*.ipynb

exercises: setup
	$(BIN)/supersmall exercises build

doctor: setup
	$(BIN)/supersmall doctor

clean:
	rm -rf runs .pytest_cache .ruff_cache

# `make vllm-env`: the GPU host's stack (vLLM's CPU build) in .venv-vllm/, for the vLLM rehearsal
include make/vllm.mk
