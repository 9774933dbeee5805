"""Datasets: DeepMath-103K (training), MATH-500 (evaluation), the Open-RS mix; prompt formatting.

Every loader reads the hub by default (what users run at full scale) or a local file with the same
columns (``source=path``: parquet, JSONL/JSON or arrow). When the hub is needed but unreachable
(``HF_HUB_OFFLINE=1`` or no network) the error is one sentence naming the ``source=`` alternative.
Rows come back with ``prompt`` and ``answer`` columns, ready for ``trl.GRPOTrainer``.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from supersmall.curriculum import difficulty_level
from supersmall.errors import UserError

FIXTURES = Path(__file__).parent / "fixtures"
DEEPMATH_HUB = "zwhe99/DeepMath-103K"
MATH500_HUB = "HuggingFaceH4/MATH-500"
# Open-RS (Dang & Ngo 2025): the 7,000-problem mix of experiments 2-3. Column names are our reading
# of the public datasets (problem / answer; DeepScaleR: problem / answer), stated as an assumption.
OPEN_RS_SOURCES = {"open-s1": "knoveleng/open-s1", "open-deepscaler": "knoveleng/open-deepscaler",
                   "deepscaler": "agentica-org/DeepScaleR-Preview-Dataset"}
OPEN_RS_MIX = {"open-s1": 3000, "open-deepscaler": 3000, "deepscaler": 1000}
BOXED_INSTRUCTION = "Please reason step by step, and put your final answer within \\boxed{}."


class DataUnavailable(UserError):
    """A hub dataset is needed but cannot be reached."""


def hub_offline() -> bool:
    return os.environ.get("HF_HUB_OFFLINE", "0").lower() not in ("", "0", "false", "no")


def _load(name_or_path: str, split: str, what: str):
    """A ``datasets.Dataset`` from a local file or the hub, with the one-sentence offline error."""
    import datasets

    path = Path(name_or_path)
    if path.suffix in (".parquet", ".jsonl", ".json", ".arrow") or path.exists():
        if not path.exists():
            raise UserError(f"{what}: local file {str(path)!r} does not exist")
        if path.suffix == ".arrow":
            return datasets.Dataset.from_file(str(path))
        kind = "parquet" if path.suffix == ".parquet" else "json"
        return datasets.load_dataset(kind, data_files=str(path), split="train")
    hint = f"{what} needs the hub dataset {name_or_path!r}; pass source='path/to/file.parquet|jsonl' (same columns)"
    if hub_offline():
        raise DataUnavailable(f"HF_HUB_OFFLINE is set: {hint}")
    try:
        return datasets.load_dataset(name_or_path, split=split)
    except (ConnectionError, OSError) as e:  # network down, DNS, proxy...
        raise DataUnavailable(f"the hub is unreachable ({type(e).__name__}): {hint}") from None


def _levels(levels: Any) -> set[int] | None:
    if levels is None:
        return None
    if isinstance(levels, int):
        return {levels}
    if isinstance(levels, str):
        from supersmall.curriculum import _parse_levels

        return set(_parse_levels(levels))
    return set(levels)


def load_deepmath(levels: Any = None, scheme: str = "round", source: str | None = None, limit: int | None = None):
    """DeepMath-103K as a ``datasets.Dataset`` with ``prompt``, ``answer``, ``level``, ``difficulty``, ``topic``.

    ``levels``: e.g. ``"1-3"``, ``4``, ``[4, 5]`` or a preset name (``"level1-3"``); difficulty is mapped
    to a level with :func:`supersmall.curriculum.difficulty_level` under ``scheme``.
    """
    ds = _load(source or DEEPMATH_HUB, "train", "load_deepmath")
    missing = {"question", "final_answer", "difficulty"} - set(ds.column_names)
    if missing:
        raise UserError(f"load_deepmath: the data lacks the columns {sorted(missing)} (DeepMath's schema: "
                        "question, final_answer, difficulty, topic, r1_solution_1..3)")
    keep = _levels(levels)

    def convert(row: dict[str, Any]) -> dict[str, Any]:
        return {"prompt": format_prompt(row["question"]), "answer": str(row["final_answer"]),
                "level": difficulty_level(float(row["difficulty"]), scheme),
                "topic": row.get("topic") or ""}

    ds = ds.map(convert, remove_columns=[c for c in ds.column_names if c not in ("difficulty",)])
    if keep is not None:
        ds = ds.filter(lambda r: r["level"] in keep)
    if limit is not None:
        ds = ds.select(range(min(limit, len(ds))))
    return ds


def load_math500(source: str | None = None):
    """MATH-500 (``problem``, ``answer``, ``level``, ``subject``, ``unique_id``, plus ``prompt``).

    ``source=None``: the hub, or the vendored copy (``supersmall/fixtures/math500.jsonl``) when
    ``HF_HUB_OFFLINE`` is set; ``source="vendored"``: always the copy; else a local file.
    """
    if source == "vendored" or (source is None and hub_offline()):
        source = str(FIXTURES / "math500.jsonl")
    ds = _load(source or MATH500_HUB, "test", "load_math500")
    return ds.map(lambda r: {"prompt": format_prompt(r["problem"]), "answer": str(r["answer"])})


def load_open_rs_mix(sources: dict[str, str] | None = None, counts: dict[str, int] | None = None, seed: int = 42):
    """The Open-RS mix: 3,000 open-s1 + 3,000 open-deepscaler + 1,000 raw DeepScaleR problems.

    ``sources`` maps open-s1 / open-deepscaler / deepscaler to hub ids or local files.
    """
    import datasets

    sources = {**OPEN_RS_SOURCES, **(sources or {})}
    counts = counts or OPEN_RS_MIX
    parts = []
    for key, n in counts.items():
        ds = _load(sources[key], "train", f"load_open_rs_mix ({key})").shuffle(seed=seed)
        ds = ds.select(range(min(n, len(ds))))
        if "problem" not in ds.column_names or "answer" not in ds.column_names:
            raise UserError(f"load_open_rs_mix: {key} needs 'problem' and 'answer' columns, has {ds.column_names}")
        parts.append(ds.map(lambda r, k=key: {"prompt": format_prompt(r["problem"]), "answer": str(r["answer"]),
                                               "source": k}, remove_columns=ds.column_names))
    return datasets.concatenate_datasets(parts).shuffle(seed=seed)


def format_prompt(problem: str, instruction: str | None = BOXED_INSTRUCTION) -> list[dict[str, str]]:
    """A conversational prompt (TRL applies the model's chat template): the problem + the ``\\boxed{}`` instruction."""
    content = f"{problem}\n{instruction}" if instruction else problem
    return [{"role": "user", "content": content}]


def template_opens_think(tokenizer: Any) -> bool:
    """Whether the chat template already opens ``<think>`` in the generation prompt (R1-Distill does).

    If it does, completions start *inside* the reasoning and never contain ``<think>``: a format
    reward must then look for ``</think>`` only (``rewards.format_reward(think_prefilled=True)``).
    """
    if getattr(tokenizer, "chat_template", None) is None:
        return False
    text = tokenizer.apply_chat_template([{"role": "user", "content": "1+1"}], tokenize=False,
                                         add_generation_prompt=True)
    return text.rstrip().endswith("<think>")


def train_rows(profile: Any) -> list[dict[str, Any]]:
    """The training pool for a full-scale profile (``data.train``: deepmath or open_rs)."""
    d = profile.data
    if d.train == "deepmath":
        ds = load_deepmath(levels=None, scheme=profile.curriculum.scheme, source=d.source)
    elif d.train == "open_rs":
        ds = load_open_rs_mix()
    else:
        raise UserError(f"unknown data.train {d.train!r}; valid: tiny, deepmath, open_rs")
    return [dict(r) for r in ds]
