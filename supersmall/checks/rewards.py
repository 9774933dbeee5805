"""Checks for exercise 01: answer extraction and the paper's reward (eq. 6 + eq. 7)."""

from __future__ import annotations

import math
import random
import re
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
    hints = [(_first_box, "looks like the *first* box: a model often boxes a guess, then its final answer; "
                          "search from the end (str.rfind)"),
             (_flat_braces, "looks like the box ends at the first '}' (a regex such as \\boxed\\{([^}]*)\\}): count "
                            "the braces, +1 for '{' and -1 for '}', and stop where the depth returns to 0"),
             (_blank_kept, "an empty or whitespace-only box is no answer: return None, not ''")]
    return run_check("extract_answer", fn, grading.extract_answer, cases, hints=hints)


def _first_box(text):  # injected bug: the first complete box, not the last
    for end in range(1, len(text or "") + 1):
        if text[end - 1] == "}" and (answer := grading.extract_answer(text[:end])) is not None:
            return answer
    return grading.extract_answer(text)


def _flat_braces(text):  # injected bug: the answer stops at the first closing brace
    answer = grading.extract_answer(text)
    return answer[: answer.index("}")].strip() or None if answer and "}" in answer else answer


_BLANK_LAST = re.compile(r"\\(?:boxed|fbox)\{\s*\}(?!.*\\(?:boxed|fbox))", re.DOTALL)


def _blank_kept(text):  # injected bug: "\\boxed{ }" gives "" instead of None
    answer = grading.extract_answer(text)
    return "" if answer is None and text and _BLANK_LAST.search(text) else answer


def reference_length_penalty(completions, completion_ids, max_length, threshold=0.95, penalty=-0.1,
                             unit="tokens", strict=True, ceil_limit=False):
    """eq. 7 on token lengths (``len(completion_ids[i])``); the other arguments inject the common bugs."""
    lengths = ([len(rewards.completion_text(c)) for c in completions] if unit == "chars"
               else [len(ids) for ids in completion_ids])
    limit = threshold * max_length
    if ceil_limit:
        return [penalty if n > math.ceil(limit) else 0.0 for n in lengths]
    return rewards.length_penalty(lengths, max_length, threshold, penalty, strict=strict)


def check_length_penalty(fn: Callable[..., list[float]]) -> bool:
    """``fn(completions, completion_ids, max_length, threshold=0.95, penalty=-0.1)`` must match eq. 7: ``penalty``
    where the completion's *token* count ``len(completion_ids[i])`` is strictly greater than ``threshold * max_length``."""
    rng = random.Random(1)
    cases = [Case((["x" * 200, "y" * 30], [[0] * 40, [0] * 64], 64),
                  label="tokens, not characters: 200 characters in 40 tokens, 30 characters in 64 tokens"),
             Case((["a" * 10, "b" * 10, "c" * 10, ""], [[0] * 95, [0] * 96, [0] * 100, []], 100),
                  label="at and past the threshold: 95 tokens of 100 is not > 95"),
             Case((["x" * 95, "y" * 96], [[0] * 10, [0] * 10], 100), label="95 characters (not > 95) in 10 tokens"),
             Case((["short"] * 3, [[0] * 60, [0] * 61, [0] * 64], 64), label="L_max = 64: 0.95 * 64 = 60.8, so 61 is past it"),
             Case((["x"], [[0] * 10], 100), {"threshold": 0.1, "penalty": -1.0}, label="custom threshold and penalty")]
    for i in range(20):
        m = rng.randint(8, 512)
        k = rng.randint(1, 10)
        cases.append(Case((["z" * rng.randint(0, 3 * m) for _ in range(k)], [[0] * rng.randint(0, m) for _ in range(k)], m),
                          label=f"random #{i + 1}"))
    bug = reference_length_penalty
    hints = [(lambda *a, **k: bug(*a, **k, unit="chars", strict=False),
              "this still behaves like the buggy version: it counts characters and compares with >="),
             (lambda *a, **k: bug(*a, **k, unit="chars"),
              "looks like characters (len(text)): eq. 7's L counts tokens, len(completion_ids[i])"),
             (lambda *a, **k: bug(*a, **k, strict=False),
              "looks like >= where eq. 7 has >: a completion of exactly threshold * L_max tokens is not penalised"),
             (lambda *a, **k: bug(*a, **k, ceil_limit=True),
              "looks like a limit rounded up (ceil(0.95 * 64) = 61) then compared with >: 61 tokens are past 60.8; "
              "compare with the float threshold * max_length itself")]
    return run_check("length_penalty", fn, reference_length_penalty, cases, hints=hints)


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

    def reference(completions, answer, completion_ids, max_length, same=None, unit="tokens", penalty=-0.1):
        if same is None:
            return rewards.supersmall_reward(completions, answer=answer, completion_ids=completion_ids,
                                             max_length=max_length, unit=unit, penalty=penalty)
        r6 = [1.0 if same(grading.extract_answer(rewards.completion_text(c)), gold) else 0.0
              for c, gold in zip(completions, answer)]
        return [a + b for a, b in zip(r6, reference_length_penalty(completions, completion_ids, max_length))]

    def string_equal(pred, gold):
        return pred is not None and pred.strip() == str(gold).strip()

    hints = [(lambda *a: reference(*a, same=string_equal),
              "looks like string equality: 0.5 and \\frac{1}{2} are the same value; use grading.is_equivalent"),
             (lambda *a: reference(*a, penalty=0.0), "looks like eq. 6 alone: add eq. 7's length penalty"),
             (lambda *a: reference(*a, unit="chars"),
              "looks like the penalty reads characters: eq. 7 counts tokens, len(completion_ids[i])")]
    return run_check("supersmall_reward", fn, reference, cases, hints=hints)
