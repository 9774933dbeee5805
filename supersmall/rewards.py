"""The papers' reward functions, as TRL reward functions.

Every function here takes ``completions`` (strings, or TRL conversational lists
``[{"role": "assistant", "content": ...}]``) plus keyword arguments, and returns one float per
completion, so it can be passed straight to ``trl.GRPOTrainer(reward_funcs=[...])``: TRL passes the
dataset's columns (``answer``, ...) and ``completion_ids`` as keyword arguments.

SuperSmall-R1 (Lee & Choi 2025)::

    eq. 4  bipolar       R = +1 if correct else -1
    eq. 6  correctness   R =  1 if correct else  0
    eq. 7  length        R = -0.1 if len(y) > 0.95 * L_max else 0   (tokens, strict ">": the paper
                         says neither; both are parameters)
           total         R = eq. 6 + eq. 7                            (supersmall_reward)

Open-RS (Dang & Ngo 2025): ``format_reward`` + ``accuracy`` (experiment 2), or ``format_reward`` +
``cosine_reward`` (experiment 3: cosine replaces accuracy).
Small-Math-R1: ``structured_reward``.
"""

from __future__ import annotations

import math
import re
from collections.abc import Callable, Sequence
from functools import partial
from typing import Any

from supersmall import grading

Completion = str | list[dict[str, Any]]


# --- inputs -----------------------------------------------------------------------------------------
def completion_text(completion: Completion) -> str:
    """The text of a plain or conversational completion (the last message's content)."""
    if isinstance(completion, str):
        return completion
    if isinstance(completion, list) and completion and isinstance(completion[-1], dict):
        return str(completion[-1].get("content", ""))
    if isinstance(completion, list) and not completion:
        return ""
    raise TypeError(f"a completion must be a string or a list of messages, got {type(completion).__name__}")


def _texts(completions: Sequence[Completion]) -> list[str]:
    return [completion_text(c) for c in completions]


def _gold(n: int, answer: Sequence[Any] | None, kwargs: dict[str, Any], answer_column: str) -> list[str]:
    gold = kwargs.get(answer_column) if answer_column != "answer" else answer
    if gold is None:
        raise ValueError(f"missing gold answers: pass the {answer_column!r} column (TRL passes dataset columns "
                         f"as keyword arguments; set answer_column= if yours has another name)")
    if len(gold) != n:
        raise ValueError(f"{answer_column!r} has {len(gold)} items but completions has {n}")
    return [str(g) for g in gold]


def lengths_of(completions: Sequence[Completion], completion_ids: Sequence[Sequence[int]] | None = None,
               unit: str = "tokens") -> list[int]:
    """Completion lengths in tokens (from ``completion_ids``) or characters."""
    if unit == "chars":
        return [len(t) for t in _texts(completions)]
    if unit != "tokens":
        raise ValueError(f"unit must be 'tokens' or 'chars', got {unit!r}")
    if completion_ids is None:
        raise ValueError("completion_ids is needed to measure lengths in tokens (TRL passes it); "
                         "or use unit='chars'")
    if len(completion_ids) != len(completions):
        raise ValueError(f"completion_ids has {len(completion_ids)} items but completions has {len(completions)}")
    return [len(ids) for ids in completion_ids]


def _correct(completions: Sequence[Completion], gold: list[str], timeout: float) -> list[bool]:
    preds = [grading.extract_answer(t) for t in _texts(completions)]
    return grading.grade_batch(preds, gold, timeout=timeout)


# --- SuperSmall-R1 ----------------------------------------------------------------------------------
def correctness(completions: Sequence[Completion], answer: Sequence[Any] | None = None,
                answer_column: str = "answer", timeout: float = 1.0, **kwargs: Any) -> list[float]:
    """eq. 6: 1.0 if the last ``\\boxed{}`` equals the gold answer, else 0.0."""
    gold = _gold(len(completions), answer, kwargs, answer_column)
    return [1.0 if ok else 0.0 for ok in _correct(completions, gold, timeout)]


def bipolar(completions: Sequence[Completion], answer: Sequence[Any] | None = None,
            answer_column: str = "answer", timeout: float = 1.0, **kwargs: Any) -> list[float]:
    """eq. 4: +1.0 if correct, -1.0 otherwise (the reward the paper reports failing on small models)."""
    return [2 * r - 1 for r in correctness(completions, answer, answer_column, timeout, **kwargs)]


def length_penalty(lengths: Sequence[int], max_length: int, threshold: float = 0.95, penalty: float = -0.1,
                   strict: bool = True) -> list[float]:
    """eq. 7: ``penalty`` where ``length > threshold * max_length`` (``>=`` when ``strict=False``), else 0."""
    limit = threshold * max_length
    return [penalty if (n > limit if strict else n >= limit) else 0.0 for n in lengths]


def supersmall_reward(completions: Sequence[Completion], answer: Sequence[Any] | None = None,
                      completion_ids: Sequence[Sequence[int]] | None = None, max_length: int | None = None,
                      threshold: float = 0.95, penalty: float = -0.1, unit: str = "tokens", strict: bool = True,
                      answer_column: str = "answer", timeout: float = 1.0, **kwargs: Any) -> list[float]:
    """eq. 6 + eq. 7: the paper's proposed reward. ``max_length`` is L_max (max_completion_length)."""
    if max_length is None:
        raise ValueError("max_length (the completion limit L_max of eq. 7) is required; "
                         "use build_reward(profile.reward, max_completion_length) to bind it")
    r6 = correctness(completions, answer, answer_column, timeout, **kwargs)
    r7 = length_penalty(lengths_of(completions, completion_ids, unit), max_length, threshold, penalty, strict)
    return [a + b for a, b in zip(r6, r7)]


# --- Open-RS ----------------------------------------------------------------------------------------
_THINK = re.compile(r"<think>.*?</think>", re.DOTALL)


def format_reward(completions: Sequence[Completion], think_prefilled: bool = False, **kwargs: Any) -> list[float]:
    """Open-RS format reward: 1.0 if the completion has ``<think>...</think>``, else 0.0.

    With ``think_prefilled=True`` (the chat template already opened ``<think>``, as R1-Distill's does)
    only the closing ``</think>`` can appear in the completion, and that is what is checked.
    """
    texts = _texts(completions)
    if think_prefilled:
        return [1.0 if "</think>" in t and "<think>" not in t.split("</think>", 1)[0] else 0.0 for t in texts]
    return [1.0 if _THINK.search(t) else 0.0 for t in texts]


def accuracy(completions: Sequence[Completion], answer: Sequence[Any] | None = None, answer_column: str = "answer",
             timeout: float = 1.0, **kwargs: Any) -> list[float]:
    """Open-RS accuracy reward: the same verdict as eq. 6 (math-verify)."""
    return correctness(completions, answer, answer_column, timeout, **kwargs)


def cosine_reward(completions: Sequence[Completion], answer: Sequence[Any] | None = None,
                  completion_ids: Sequence[Sequence[int]] | None = None, max_length: int = 1000,
                  min_value_wrong: float = -1.0, max_value_wrong: float = -0.5, min_value_correct: float = 0.5,
                  max_value_correct: float = 1.0, unit: str = "tokens", answer_column: str = "answer",
                  timeout: float = 1.0, **kwargs: Any) -> list[float]:
    """Open-RS cosine length reward: short correct answers earn most, long wrong ones are penalised least.

    ``r = lo + (hi - lo) * (1 + cos(pi * len / max_length)) / 2`` with (lo, hi) = (min, max)_correct
    when correct, and (max_wrong, min_wrong) when wrong. Two pitfalls of the public implementation are
    avoided: lengths are tokens (not characters) by default, and a gold answer that cannot be parsed
    scores 0.0 for every completion (a problem nobody can grade must not pay the policy for length).
    A length above ``max_length`` counts as ``max_length`` (the kit's choice: open-r1's formula wraps
    around there, so a longer answer would be paid more again).
    """
    gold = _gold(len(completions), answer, kwargs, answer_column)
    lengths = lengths_of(completions, completion_ids, unit)
    correct = _correct(completions, gold, timeout)
    gradable = {g: grading.is_parsable(g, timeout) for g in set(gold)}
    out = []
    for g, n, ok in zip(gold, lengths, correct):
        if not gradable[g]:
            out.append(0.0)
            continue
        cosine = math.cos(math.pi * min(n, max_length) / max_length)
        lo, hi = (min_value_correct, max_value_correct) if ok else (max_value_wrong, min_value_wrong)
        out.append(lo + 0.5 * (hi - lo) * (1.0 + cosine))
    return out


# --- Small-Math-R1 ----------------------------------------------------------------------------------
_SMR_FORMAT = re.compile(r"^\s*<think>.*?</think>\s*<answer>.*?</answer>\s*$", re.DOTALL)


def structured_reward(completions: Sequence[Completion], answer: Sequence[Any] | None = None,
                      completion_ids: Sequence[Sequence[int]] | None = None, target_length: int = 512,
                      weight: float = 0.5, unit: str = "tokens", answer_column: str = "answer",
                      timeout: float = 1.0, **kwargs: Any) -> list[float]:
    """Small-Math-R1's structured reward (format, length, answer; piecewise).

    Our reading of the partly garbled equation (paper-facts.md):
    r0 = 1 if ``<think>...</think><answer>...</answer>`` else 0; r1 = min(1, ln t / ln L_target);
    r2 = 1 if the ``<answer>`` is correct; FR = r0 + weight * r1; AR = r2;
    R = AR + FR if FR > 0 and AR = 1; R = -FR if FR > 0 and AR = 0; R = -(r0 + r1 + r2) if FR = 0.
    """
    gold = _gold(len(completions), answer, kwargs, answer_column)
    texts = _texts(completions)
    lengths = lengths_of(completions, completion_ids, unit)
    preds = [grading.extract_tagged(t, "answer") for t in texts]
    correct = grading.grade_batch(preds, gold, timeout=timeout)
    out = []
    for t, n, ok in zip(texts, lengths, correct):
        r0 = 1.0 if _SMR_FORMAT.match(t) else 0.0
        r1 = min(1.0, math.log(n) / math.log(target_length)) if n > 1 and target_length > 1 else 0.0
        r2 = 1.0 if ok else 0.0
        fr = r0 + weight * r1
        if fr > 0:
            out.append(r2 + fr if r2 == 1.0 else -fr)
        else:
            out.append(-(r0 + r1 + r2))
    return out


def reasoning_rate(completions: Sequence[Completion], **kwargs: Any) -> list[float]:
    """1.0 when the completion reasons (non-empty ``<think>...</think>``): a *metric*, given weight 0."""
    return [1.0 if grading.reasoned(t) else 0.0 for t in _texts(completions)]


# --- from a profile ---------------------------------------------------------------------------------
def _named(fn: Callable, name: str, **bound: Any) -> Callable:
    f = partial(fn, **bound)
    f.__name__ = name  # TRL logs rewards under the function's name
    return f


def build_reward(reward_cfg: Any, max_completion_length: int, think_prefilled: bool = False) -> list[Callable]:
    """TRL-ready reward functions for ``reward_cfg.name`` (a :class:`supersmall.config.RewardConfig`).

    ``think_prefilled``: the chat template opens ``<think>`` (R1-Distill), so the format reward
    looks for ``</think>`` only.
    """
    common = {"answer_column": reward_cfg.answer_column, "timeout": reward_cfg.grading_timeout}
    name = reward_cfg.name
    if name == "supersmall":
        return [_named(supersmall_reward, "supersmall", max_length=max_completion_length,
                       threshold=reward_cfg.length_threshold, penalty=reward_cfg.length_penalty,
                       unit=reward_cfg.length_unit, strict=reward_cfg.strict, **common)]
    if name == "correctness":
        return [_named(correctness, "correctness", **common)]
    if name == "bipolar":
        return [_named(bipolar, "bipolar", **common)]
    if name == "open_rs":  # Open-RS experiment 2: format + accuracy
        return [_named(format_reward, "format", think_prefilled=think_prefilled), _named(accuracy, "accuracy", **common)]
    if name == "open_rs_cosine":  # Open-RS experiment 3: cosine *replaces* accuracy
        return [_named(format_reward, "format", think_prefilled=think_prefilled),
                _named(cosine_reward, "cosine", max_length=max_completion_length, unit=reward_cfg.length_unit,
                       **common)]
    if name == "structured":
        return [_named(structured_reward, "structured", target_length=max_completion_length,
                       unit=reward_cfg.length_unit, **common)]
    raise ValueError(f"unknown reward {name!r}; valid: {', '.join(REWARDS)}")


CORRECT = "correct"  # the __name__ of :func:`correct_column`'s function (TRL's logs name it by what it wraps)


def correct_column(reward_cfg: Any) -> Callable:
    """eq. 6 alone (the grader's verdict, 1/0) as a TRL reward function named ``correct``, trained on with weight 0:
    what the no-signal split (:func:`supersmall.advantages.outcome_split`) reads, whatever the profile's reward."""
    return _named(correctness, CORRECT, answer_column=reward_cfg.answer_column, timeout=reward_cfg.grading_timeout)


REWARDS = ("supersmall", "correctness", "bipolar", "open_rs", "open_rs_cosine", "structured")


def reward_weights(reward_cfg: Any) -> list[float] | None:
    """TRL ``reward_weights`` in the order of :func:`build_reward`'s functions (None = all 1.0).

    The weights come with the config, by function name (``reward_cfg.weights``: Open-RS's format 1.0 +
    accuracy or cosine 2.0, which :class:`supersmall.config.RewardConfig` reads from ``paper.yaml``), so
    this module types no paper number.
    """
    by_name = getattr(reward_cfg, "weights", None) or {}
    if not by_name:
        return None
    return [float(by_name.get(f.__name__, 1.0)) for f in build_reward(reward_cfg, max_completion_length=1)]
