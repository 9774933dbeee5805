"""Shared test setup: offline, quiet, deterministic."""

import os

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("HF_DATASETS_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
os.environ.setdefault("MPLBACKEND", "Agg")


# --- vLLM's CPU build (the GPU host's stack, rehearsed): its own environment, built by `make vllm-env` -------
from pathlib import Path  # noqa: E402

import pytest  # noqa: E402

VLLM_PYTHON = Path(os.environ.get("SUPERSMALL_VLLM_PYTHON",
                                  Path(__file__).resolve().parents[1] / ".venv-vllm" / "bin" / "python"))


@pytest.fixture(scope="session")
def vllm_python() -> Path:
    """The python of the vLLM environment (``.venv-vllm``, or ``$SUPERSMALL_VLLM_PYTHON``); tests that run vLLM
    for real run their code there in a subprocess. Skipped where it is not built; CI (``CI`` set) builds it, so
    there a missing environment fails instead of skipping."""
    if not VLLM_PYTHON.is_file():
        (pytest.fail if os.environ.get("CI") else pytest.skip)(f"no vLLM environment at {VLLM_PYTHON}: run `make vllm-env` (vLLM's CPU build, ~4 GB) to "
                    "run the vLLM tests here")
    return VLLM_PYTHON
