"""supersmall: teach and replicate RL-only math reasoning (ZeroGRPO) in small language models.

Submodules are imported lazily so ``import supersmall`` stays fast and GPU-only packages stay optional::

    from supersmall import grading, rewards, advantages, losses, curriculum
    supersmall.doctor.run()    # every check, one line each
"""

from __future__ import annotations

import importlib
from typing import Any

__version__ = "0.1.0"

_SUBMODULES = {
    # math
    "grading", "rewards", "advantages", "losses", "curriculum", "stats",
    # data
    "config", "paper", "data", "tiny", "runcard",
    # run
    "grpo", "train", "trl_args", "evaluate", "runner", "report", "experiments",
    # full scale (notebook 07 and the CLI) and repository tooling, in their own subpackages
    "fullscale", "tools",
    # face
    "cli", "plots", "widgets", "checks", "doctor", "exercises",
}


def __getattr__(name: str) -> Any:
    if name == "load_profile":
        return importlib.import_module("supersmall.config").load_profile
    if name in _SUBMODULES:
        return importlib.import_module(f"supersmall.{name}")
    raise AttributeError(f"module 'supersmall' has no attribute {name!r}")


__all__ = sorted(_SUBMODULES | {"load_profile", "__version__"})
