"""Instant feedback for exercises (Spinning Up style): run the student's function against the
library's reference on edge cases and random inputs; print a clear pass, or the first failing input
with expected vs got.

A check never crashes a notebook because a stub is not written yet: a ``NotImplementedError``
prints "not implemented yet" and returns ``False``. A *wrong* answer raises :class:`CheckFailed`
(an ``AssertionError``), so a solved notebook run under papermill fails loudly when it is wrong.

Targeted hints: a check may pass ``hints``, pairs ``(buggy_reference, message)`` where
``buggy_reference`` is the reference with one likely mistake injected (the population std, a missing
mask, ``>=`` for ``>``). When the student's function fails, it also runs on the remaining cases, and
the buggy reference that agrees with the student on the failing case and on (nearly) every other case
adds its message to the failure: "hint: looks like the population std (ddof=0) ..." (see
:func:`_hint_lines`). A hint never fires for a correct function (it passes), nor for a function that
many cases tell apart from the injected bug.
``alternatives`` are other references that are also right (TRL's epsilon beside the kit's, say).

Topic modules (``supersmall/checks/<topic>.py``) define ``check_<name>(fn)`` with :func:`run_check`.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from typing import Any

NOT_IMPLEMENTED = "not implemented yet"
Hint = tuple[Callable[..., Any], str]  # (the reference with one bug injected, what to tell the student)


class CheckFailed(AssertionError):
    """The student's function disagrees with the reference on some input."""


@dataclass
class Case:
    """One input: positional and keyword arguments, and a label shown on failure.

    ``raises``: where the reference rejects this input, the exception types a student may raise
    instead (default: the reference's own type).
    """

    args: tuple = ()
    kwargs: dict | None = None
    label: str = ""
    raises: tuple[type[BaseException], ...] | None = None

    def describe(self) -> str:
        parts = [_short(a) for a in self.args]
        parts += [f"{k}={_short(v)}" for k, v in (self.kwargs or {}).items()]
        text = ", ".join(parts)
        return f"{self.label}: ({text})" if self.label else f"({text})"


def _short(value: Any, limit: int = 300) -> str:
    text = repr(value)
    return text if len(text) <= limit else text[: limit - 3] + "..."


def close(a: Any, b: Any, atol: float = 1e-5, rtol: float = 1e-4) -> bool:
    """Equality that tolerates float noise, for numbers, sequences and torch tensors."""
    try:
        import torch

        if isinstance(a, torch.Tensor) or isinstance(b, torch.Tensor):
            ta, tb = torch.as_tensor(a, dtype=torch.float64), torch.as_tensor(b, dtype=torch.float64)
            if ta.shape != tb.shape:
                return False
            return bool(torch.allclose(ta, tb, atol=atol, rtol=rtol, equal_nan=True))
    except ImportError:  # pragma: no cover - torch is a dependency
        pass
    if isinstance(a, float) or isinstance(b, float):
        if a is None or b is None or isinstance(a, (str, bytes)) or isinstance(b, (str, bytes)):
            return False
        if math.isnan(a) and math.isnan(b):
            return True
        return math.isclose(a, b, abs_tol=atol, rel_tol=rtol)
    if isinstance(a, (list, tuple)) and isinstance(b, (list, tuple)):
        return len(a) == len(b) and all(close(x, y, atol, rtol) for x, y in zip(a, b))
    return a == b


def run_check(
    name: str,
    student: Callable[..., Any],
    reference: Callable[..., Any],
    cases: Iterable[Case],
    compare: Callable[[Any, Any], bool] = close,
    quiet: bool = False,
    explain: Callable[[Any, Any], str] | None = None,
    hints: Sequence[Hint] = (),
    alternatives: Sequence[Callable[..., Any]] = (),
) -> bool:
    """Compare ``student`` with ``reference`` on every case; see the module docstring.

    Where the reference raises (an input it rejects, e.g. an empty list), the student must raise an
    exception of the same type. ``explain(expected, got)`` may add one line saying what differs;
    ``hints`` add a targeted line for a recognised bug; a case also passes when the student agrees with
    one of ``alternatives`` (references that are right too).
    """
    cases = list(cases)
    seen: list[tuple[Case, Any]] = []  # (case, what the student returned or raised) so far
    for i, case in enumerate(cases):
        where = f"[{name}] case {i + 1}/{len(cases)} {case.describe()}"
        try:
            expected = reference(*case.args, **(case.kwargs or {}))
            expected_error: Exception | None = None
        except Exception as e:  # the reference rejects this input: the student must raise the same type
            expected, expected_error = None, e
        try:
            got = student(*case.args, **(case.kwargs or {}))
        except NotImplementedError:
            print(f"[{name}] {NOT_IMPLEMENTED}: replace the `raise NotImplementedError` with your code.")
            return False
        except Exception as e:  # the student's bug, shown with the input that triggered it
            if expected_error is not None and isinstance(e, case.raises or type(expected_error)):
                seen.append((case, _Raised(e)))
                continue
            want = _describe_error(expected_error) if expected_error is not None else _short(expected)
            seen.append((case, _Raised(e)))
            raise CheckFailed(f"{where}\n  raised {type(e).__name__}: {e}\n  expected {want}"
                              + _hint_lines(hints, seen, cases[i + 1:], student, compare)) from e
        seen.append((case, got))
        if expected_error is not None:
            raise CheckFailed(f"{where}\n  expected {_describe_error(expected_error)}\n  got      {_short(got)}"
                              + _hint_lines(hints, seen, cases[i + 1:], student, compare))
        if not compare(expected, got) and not any(_agrees(alt, case, got, compare) for alt in alternatives):
            hint = explain(expected, got) if explain is not None else ""
            raise CheckFailed(
                f"{where}\n  expected {_short(expected)}\n  got      {_short(got)}" + (f"\n  {hint}" if hint else "")
                + _hint_lines(hints, seen, cases[i + 1:], student, compare)
            )
    if not quiet:
        print(f"[{name}] passed: {len(cases)} cases (edge cases and random inputs) agree with the library.")
    return True


@dataclass
class _Raised:
    """What a function raised instead of returning (a hint's buggy reference may raise the same)."""

    error: BaseException


def _agrees(fn: Callable[..., Any], case: Case, got: Any, compare: Callable[[Any, Any], bool]) -> bool:
    """Whether ``fn`` on ``case`` gives what the student gave (returned value, or exception type)."""
    try:
        value = fn(*case.args, **(case.kwargs or {}))
    except Exception as e:
        return isinstance(got, _Raised) and isinstance(got.error, type(e))
    if isinstance(got, _Raised):
        return False
    try:
        return bool(compare(value, got))
    except Exception:  # a comparison that cannot even be made is a disagreement
        return False


HINT_AGREEMENT = 0.9  # a hint needs the failing case and at least this share of all cases to agree


def _hint_lines(hints: Sequence[Hint], seen: list[tuple[Case, Any]], rest: Sequence[Case],
                student: Callable[..., Any], compare: Callable[[Any, Any], bool]) -> str:
    """The ``hint:`` lines of the buggy references that best explain the student's function.

    Only on failure: the student also runs on the cases after the failing one. A buggy reference is a
    candidate when it agrees with the student on the failing case and on at least ``HINT_AGREEMENT`` of all
    cases (a student's bug seldom matches the injected one on every odd input); of the candidates, those that
    agree on the most cases are shown, so a function with two bugs is told about the pair where a hint names
    both, not about one of them."""
    if not hints:
        return ""
    failing = seen[-1]
    everything = list(seen)
    for case in rest:
        try:
            everything.append((case, student(*case.args, **(case.kwargs or {}))))
        except Exception as e:
            everything.append((case, _Raised(e)))
    scored = []
    for buggy, message in hints:
        if _agrees(buggy, failing[0], failing[1], compare):
            agree = sum(_agrees(buggy, case, got, compare) for case, got in everything)
            if agree >= HINT_AGREEMENT * len(everything):
                scored.append((agree, message))
    best = max((agree for agree, _ in scored), default=0)
    return "".join(f"\n  hint: {message}" for agree, message in scored if agree == best)


def _describe_error(e: Exception) -> str:
    return f"{type(e).__name__} to be raised ({e})"


def cases_from(arg_lists: Sequence[Any], label: str = "") -> list[Case]:
    """Wrap plain argument tuples as :class:`Case` objects."""
    return [Case(args=a if isinstance(a, tuple) else (a,), label=label) for a in arg_lists]
