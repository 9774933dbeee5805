"""supersmall: teach and replicate RL-only math reasoning (ZeroGRPO) in small language models.

Submodules are imported lazily so ``import supersmall`` stays fast and GPU-only packages stay optional::

    from supersmall import grading, rewards, advantages, losses, curriculum
    supersmall.doctor()
"""

from __future__ import annotations

import importlib
from typing import Any

__version__ = "0.1.0"

_SUBMODULES = {
    "config", "runcard", "runner", "exercises", "checks", "diagnose", "grading", "rewards",
    "advantages", "losses", "curriculum", "data", "tiny", "train", "evaluate", "launch", "plots",
    "widgets", "cli", "report",
}


def __getattr__(name: str) -> Any:
    if name == "doctor":
        return importlib.import_module("supersmall.diagnose").doctor
    if name == "load_profile":
        return importlib.import_module("supersmall.config").load_profile
    if name in _SUBMODULES:
        return importlib.import_module(f"supersmall.{name}")
    raise AttributeError(f"module 'supersmall' has no attribute {name!r}")


__all__ = sorted(_SUBMODULES | {"doctor", "load_profile", "__version__"})
