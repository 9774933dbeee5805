"""Checks for exercise 01: answer extraction and the paper's reward (eq. 6 + eq. 7)."""

from __future__ import annotations

import random
from collections.abc import Callable

from supersmall import grading, rewards
from supersmall.checks.core import Case, run_check

_EDGE_TEXTS = [
    "\\boxed{17}", "no answer here", "first \\boxed{1} then \\boxed{2}", "\\boxed{\\frac{1}{2}}",
    "\\boxed{", "\\boxed{1", "\\fbox{x+1}", "\\boxed 5", "", "\\boxed{{a}{b}}", "\\boxed{}",
    None, "\\boxed{ }", "\\boxed{  \t }", "\\boxed{ 7 }", "\\boxed{3} and then \\boxed{ }",
]


def _random_text(rng: random.Random) -> str:
    inner = rng.choice(["17", "\\frac{3}{4}", "x^{2}", "\\sqrt{2}", "(1, 2)", "{a}"])
    parts = ["<think>", "reasoning", "</think>", f"\\boxed{{{inner}}}", "\\boxed{3}", "text"]
    rng.shuffle(parts)
    return " ".join(parts[: rng.randint(1, len(parts))])


def check_extract_answer(fn: Callable[[str], str | None]) -> bool:
    """``fn(text)`` must return the last ``\\boxed{...}`` content (nested braces, stripped) or None.

    None for no text (``None`` or ``""``), no box, unclosed braces, or an empty / whitespace-only box.
    """
    rng = random.Random(0)
    cases = [Case((t,), label="edge") for t in _EDGE_TEXTS]
    cases += [Case((_random_text(rng),), label=f"random #{i + 1}") for i in range(30)]
    return run_check("extract_answer", fn, grading.extract_answer, cases)


def check_length_penalty(fn: Callable[..., list[float]]) -> bool:
    """``fn(lengths, max_length, threshold=0.95, penalty=-0.1)`` must match eq. 7 (strict ``>``)."""
    rng = random.Random(1)
    cases = [Case(([95, 96, 100, 0], 100), label="at and past the threshold (95 is not > 95)"),
             Case(([60, 61, 64], 64), label="L_max = 64: 0.95 * 64 = 60.8"),
             Case(([10], 100), {"threshold": 0.1, "penalty": -1.0}, label="custom threshold and penalty")]
    for i in range(20):
        m = rng.randint(8, 512)
        cases.append(Case(([rng.randint(0, m) for _ in range(rng.randint(1, 10))], m), label=f"random #{i + 1}"))
    return run_check("length_penalty", fn, rewards.length_penalty, cases)


def check_supersmall_reward(fn: Callable[..., list[float]]) -> bool:
    """``fn(completions, answer, completion_ids, max_length)`` must equal eq. 6 + eq. 7."""
    rng = random.Random(2)
    cases = [Case((["\\boxed{17}", "\\boxed{18}", "none"], ["17", "17", "17"], [[0] * 5, [0] * 5, [0] * 5], 10),
                  label="right, wrong, no box"),
             Case((["\\boxed{17}", "\\boxed{18}"], ["17", "17"], [[0] * 10, [0] * 10], 10), label="both overlong"),
             Case(([[{"role": "assistant", "content": "\\boxed{4}"}]], ["4"], [[0] * 3], 10),
                  label="conversational completion"),
             # the grader matters: the same value written differently is correct, string equality is not enough
             Case((["\\boxed{0.5}", "\\boxed{\\frac{1}{2}}", "\\boxed{x=3}", "\\boxed{\\dfrac{1}{2}}"],
                   ["\\frac{1}{2}", "0.5", "3", "\\frac12"], [[0] * 4] * 4, 10),
                  label="equivalent forms (0.5 = 1/2, x=3 = 3): use grading.is_equivalent"),
             Case((["\\boxed{0.5}", "\\boxed{\\frac{1}{3}}", "\\boxed{2.0}"], ["\\frac{1}{2}", "0.5", "2"],
                   [[0] * 10, [0] * 3, [0] * 10], 10), label="equivalent and overlong, not equivalent, 2.0 = 2")]
    for i in range(15):
        n = rng.randint(1, 6)
        answers = [str(rng.randint(0, 20)) for _ in range(n)]
        comps = [f"<think>x</think>\\boxed{{{a if rng.random() < 0.5 else int(a) + 1}}}" for a in answers]
        ids = [[0] * rng.randint(1, 40) for _ in range(n)]
        cases.append(Case((comps, answers, ids, 40), label=f"random #{i + 1}"))

    def reference(completions, answer, completion_ids, max_length):
        return rewards.supersmall_reward(completions, answer=answer, completion_ids=completion_ids,
                                         max_length=max_length)

    return run_check("supersmall_reward", fn, reference, cases)
