"""Instant feedback for exercises (Spinning Up style): run the student's function against the
library's reference on edge cases and random inputs; print a clear pass, or the first failing input
with expected vs got.

A check never crashes a notebook because a stub is not written yet: a ``NotImplementedError``
prints "not implemented yet" and returns ``False``. A *wrong* answer raises :class:`CheckFailed`
(an ``AssertionError``), so a solved notebook run under papermill fails loudly when it is wrong.

Topic modules (``supersmall/checks/<topic>.py``) define ``check_<name>(fn)`` with :func:`run_check`.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from typing import Any

NOT_IMPLEMENTED = "not implemented yet"


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
) -> bool:
    """Compare ``student`` with ``reference`` on every case; see the module docstring.

    Where the reference raises (an input it rejects, e.g. an empty list), the student must raise an
    exception of the same type. ``explain(expected, got)`` may add one line saying what differs.
    """
    cases = list(cases)
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
                continue
            want = _describe_error(expected_error) if expected_error is not None else _short(expected)
            raise CheckFailed(f"{where}\n  raised {type(e).__name__}: {e}\n  expected {want}") from e
        if expected_error is not None:
            raise CheckFailed(f"{where}\n  expected {_describe_error(expected_error)}\n  got      {_short(got)}")
        if not compare(expected, got):
            hint = explain(expected, got) if explain is not None else ""
            raise CheckFailed(
                f"{where}\n  expected {_short(expected)}\n  got      {_short(got)}" + (f"\n  {hint}" if hint else "")
            )
    if not quiet:
        print(f"[{name}] passed: {len(cases)} cases (edge cases and random inputs) agree with the library.")
    return True


def _describe_error(e: Exception) -> str:
    return f"{type(e).__name__} to be raised ({e})"


def cases_from(arg_lists: Sequence[Any], label: str = "") -> list[Case]:
    """Wrap plain argument tuples as :class:`Case` objects."""
    return [Case(args=a if isinstance(a, tuple) else (a,), label=label) for a in arg_lists]
