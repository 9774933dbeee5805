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

from supersmall import paper
from supersmall.curriculum import difficulty_level, parse_levels
from supersmall.errors import UserError

FIXTURES = Path(__file__).parent / "fixtures"
DEEPMATH_HUB = "zwhe99/DeepMath-103K"
MATH500_HUB = "HuggingFaceH4/MATH-500"
# Open-RS (Dang & Ngo 2025): the 7,000-problem mix of experiments 2-3. Column names are our reading
# of the public datasets (problem / answer; DeepScaleR: problem / answer), stated as an assumption.
# The mix's counts are paper.yaml's ``openrs.data.mix``, under these keys.
OPEN_RS_SOURCES = {"open-s1": "knoveleng/open-s1", "open-deepscaler": "knoveleng/open-deepscaler",
                   "deepscaler-easy": "agentica-org/DeepScaleR-Preview-Dataset"}
# DeepSeek's recommended instruction for R1 models (the profiles' ``data.instruction``)
BOXED_INSTRUCTION = "Please reason step by step, and put your final answer within \\boxed{}."
TEMPLATES = ("raw", "chat")


class DataUnavailable(UserError):
    """A hub dataset is needed but cannot be reached."""


def hub_offline() -> bool:
    return os.environ.get("HF_HUB_OFFLINE", "0").lower() not in ("", "0", "false", "no")


def _load(name_or_path: str, split: str, what: str):
    """A ``datasets.Dataset`` from a local file or the hub, with the one-sentence offline error."""
    import datasets

    path = Path(name_or_path)
    shipped = FIXTURES.parent.parent / path  # a profile's "supersmall/fixtures/..." path, from any folder
    if not path.is_absolute() and not path.exists() and shipped.exists():
        path = shipped
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


def load_deepmath(levels: Any = None, scheme: str = "round", source: str | None = None, limit: int | None = None,
                  instruction: str = BOXED_INSTRUCTION, counts: dict[str, int] | None = None):
    """DeepMath-103K as a ``datasets.Dataset`` with ``prompt``, ``answer``, ``level``, ``difficulty``, ``topic``.

    ``levels``: e.g. ``"1-3"``, ``4`` or ``[4, 5]`` (:func:`supersmall.curriculum.parse_levels`);
    difficulty is mapped to a level with :func:`supersmall.curriculum.difficulty_level` under
    ``scheme``. Rows whose difficulty is missing, NaN or negative are skipped, never fatal; pass a
    dict as ``counts`` to get ``{"bad_difficulty": n}`` back.
    """
    ds = _load(source or DEEPMATH_HUB, "train", "load_deepmath")
    missing = {"question", "final_answer", "difficulty"} - set(ds.column_names)
    if missing:
        raise UserError(f"load_deepmath: the data lacks the columns {sorted(missing)} (DeepMath's schema: "
                        "question, final_answer, difficulty, topic, r1_solution_1..3)")
    keep = None if levels is None else set(parse_levels(levels))
    before = len(ds)
    ds = ds.filter(lambda r: _level_or_none(r["difficulty"], scheme) is not None)
    if counts is not None:
        counts["bad_difficulty"] = before - len(ds)

    def convert(row: dict[str, Any]) -> dict[str, Any]:
        return {"prompt": format_prompt(row["question"], "chat", instruction), "answer": str(row["final_answer"]),
                "level": difficulty_level(float(row["difficulty"]), scheme), "topic": row.get("topic") or ""}

    ds = ds.map(convert, remove_columns=[c for c in ds.column_names if c not in ("difficulty",)])
    if keep is not None:
        ds = ds.filter(lambda r: r["level"] in keep)
    if limit is not None:
        ds = ds.select(range(min(limit, len(ds))))
    return ds


def _level_or_none(difficulty: Any, scheme: str) -> int | None:
    try:
        return difficulty_level(float(difficulty), scheme)
    except (TypeError, ValueError):
        return None


def load_math500(source: str | None = None, template: str = "chat", instruction: str = BOXED_INSTRUCTION):
    """MATH-500 (``problem``, ``answer``, ``level``, ``subject``, ``unique_id``, plus ``prompt``).

    ``source=None``: the hub, or the vendored copy (``supersmall/fixtures/math500.jsonl``) when
    ``HF_HUB_OFFLINE`` is set; ``source="vendored"``: always the copy; else a local file.
    """
    if source == "vendored" or (source is None and hub_offline()):
        source = str(FIXTURES / "math500.jsonl")
    ds = _load(source or MATH500_HUB, "test", "load_math500")
    return ds.map(lambda r: {"prompt": format_prompt(r["problem"], template, instruction), "answer": str(r["answer"])})


def load_open_rs_mix(sources: dict[str, str] | None = None, counts: dict[str, int] | None = None,
                     seed: int | None = None):
    """The Open-RS mix (``paper.value("openrs.data.mix")``: 3,000 open-s1 + 3,000 open-deepscaler + 1,000 raw
    DeepScaleR problems), shuffled with Open-RS's seed (``openrs.seed``) unless ``seed`` is given.

    ``sources`` maps open-s1 / open-deepscaler / deepscaler-easy to hub ids or local files. The paper takes
    1,000 *easier* raw DeepScaleR problems (004:137) without saying how they were chosen; the kit takes a
    random 1,000 (a choice).
    """
    import datasets

    sources = {**OPEN_RS_SOURCES, **(sources or {})}
    counts = counts or paper.value("openrs.data.mix")
    seed = paper.value("openrs.seed") if seed is None else seed
    parts = []
    for key, n in counts.items():
        ds = _load(sources[key], "train", f"load_open_rs_mix ({key})").shuffle(seed=seed)
        ds = ds.select(range(min(n, len(ds))))
        if "problem" not in ds.column_names or "answer" not in ds.column_names:
            raise UserError(f"load_open_rs_mix: {key} needs 'problem' and 'answer' columns, has {ds.column_names}")
        parts.append(ds.map(lambda r, k=key: {"prompt": format_prompt(r["problem"], "chat"), "answer": str(r["answer"]),
                                               "source": k}, remove_columns=ds.column_names))
    return datasets.concatenate_datasets(parts).shuffle(seed=seed)


def format_prompt(problem: str, template: str = "chat", instruction: str | None = BOXED_INSTRUCTION
                  ) -> str | list[dict[str, str]]:
    """The kit's one prompt format, for training and evaluation alike: the problem + the instruction.

    ``template="chat"``: one user message (TRL, or :func:`prompt_text`, applies the model's chat
    template); ``"raw"``: the plain text, for models without a chat template (the tiny profile).
    """
    if template not in TEMPLATES:
        raise ValueError(f"template must be one of {', '.join(TEMPLATES)}, got {template!r}")
    content = f"{problem}\n{instruction}" if instruction else problem
    return content if template == "raw" else [{"role": "user", "content": content}]


def prompt_text(prompt: str | list[dict[str, str]], tokenizer: Any) -> str:
    """The text a model sees: a plain prompt as is, a conversational one through the tokenizer's chat
    template with the generation prompt (as TRL renders it for training)."""
    if isinstance(prompt, str):
        return prompt
    if getattr(tokenizer, "chat_template", None) is None:
        raise ValueError("a conversational prompt needs a tokenizer with a chat template (use template='raw')")
    return tokenizer.apply_chat_template(prompt, tokenize=False, add_generation_prompt=True)


def drop_long_prompts(rows: list[dict[str, Any]], tokenizer: Any, max_tokens: int) -> tuple[list[dict[str, Any]], int]:
    """Rows whose prompt fits ``max_tokens`` template tokens (Table 4's max prompt length), and how many were
    dropped. TRL 1.16 has no prompt-length setting, so the kit filters before training."""
    kept = [r for r in rows if len(tokenizer(prompt_text(r["prompt"], tokenizer), add_special_tokens=False)
                                   ["input_ids"]) <= max_tokens]
    return kept, len(rows) - len(kept)


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


def train_rows(profile: Any, counts: dict[str, int] | None = None) -> list[dict[str, Any]]:
    """The training pool for a full-scale profile (``data.train``: deepmath or open_rs)."""
    d = profile.data
    if d.train == "deepmath":
        ds = load_deepmath(levels=None, scheme=profile.curriculum.scheme, source=d.source, instruction=d.instruction,
                           counts=counts)
    elif d.train == "open_rs":
        ds = load_open_rs_mix()
    else:
        raise UserError(f"unknown data.train {d.train!r}; valid: tiny, deepmath, open_rs")
    return [dict(r) for r in ds]
