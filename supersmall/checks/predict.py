"""Predict, then run: a question asked *before* an experiment, checked against what it measured.

    my_prediction = None   # edit: one of the choices, then run the experiment below
    ...experiment...
    predict("Does eq. 4 beat eq. 6 without scaling?", ["better", "worse", "no difference"],
            my_prediction, answer=verdict_to_choice(row), why="...")

In a headless run (no prediction made) the answer and the reason are printed and nothing fails.
"""

from __future__ import annotations

from collections.abc import Sequence


def predict(question: str, choices: Sequence[str], prediction: str | None, answer: str, why: str = "") -> bool | None:
    """Print whether ``prediction`` matches the measured ``answer`` (one of ``choices``), then why.
    Returns True / False, or None when no prediction was made."""
    if answer not in choices:
        raise ValueError(f"the measured answer {answer!r} is not one of the choices {list(choices)}")
    if prediction is not None and prediction not in choices:
        print(f"? your prediction {prediction!r} is not one of {list(choices)}: pick one of them")
        prediction = None
    print(f"Q: {question}")
    if prediction is None:
        print(f"  (no prediction made) measured: {answer}")
        result = None
    elif prediction == answer:
        print(f"  ✓ you predicted {prediction!r}; measured: {answer}")
        result = True
    else:
        print(f"  ✗ you predicted {prediction!r}; measured: {answer}")
        result = False
    if why:
        print(f"  why: {why}")
    return result


def verdict_choice(row: dict, better: str = "better", worse: str = "worse", none: str = "no clear difference") -> str:
    """Map a paired-evidence row (``report.paired``) to a choice: its interval above, below or across zero."""
    lo, hi = row["interval"]
    return better if lo > 0 else worse if hi < 0 else none
