"""The papers' facts, each with its source and a kind: ``paper`` (printed) or ``choice`` (the kit's).

The values live in ``paper.yaml`` next to this file, the one place the kit keeps a published number::

    >>> from supersmall import paper
    >>> paper.value("table6.no-kl")
    0.35
    >>> paper.fact("arms.kl-penalty.beta_kl_reward").kind   # the paper gives no coefficient
    'choice'
    >>> paper.arm_settings("kl-penalty", reading="paper")["reward.name"]
    'bipolar'
"""

from __future__ import annotations

import copy
import difflib
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import Any

import yaml

PATH = Path(__file__).with_name("paper.yaml")
KINDS = ("paper", "choice")


@dataclass(frozen=True)
class Fact:
    """One number, text or list from a paper (``kind="paper"``) or chosen by the kit (``"choice"``)."""

    key: str
    value: Any
    source: str
    kind: str
    note: str = ""

    def __str__(self) -> str:
        note = f"; {self.note}" if self.note else ""
        return f"{self.key} = {self.value!r} ({self.kind}, {self.source}{note})"


class UnknownFact(KeyError, ValueError):
    """A key that ``paper.yaml`` does not have; the message names the closest keys."""

    __str__ = Exception.__str__  # a plain sentence, not KeyError's quoted repr


@cache
def _table() -> dict[str, Fact]:
    raw = yaml.safe_load(PATH.read_text())
    table: dict[str, Fact] = {}
    for key, entry in raw.items():
        if entry.get("kind") not in KINDS or not entry.get("source"):
            raise ValueError(f"{PATH.name}: {key} needs kind in {KINDS} and a source")
        if "ratio" in entry:  # derived: value(a) / value(b), computed here so no number is typed twice
            top, bottom = (table[k].value for k in entry["ratio"])
            value = top / bottom
        else:
            value = entry["value"]
        table[key] = Fact(key, value, str(entry["source"]), entry["kind"], str(entry.get("note", "")))
    return table


def fact(key: str) -> Fact:
    """The fact stored under ``key`` (e.g. ``"table6.no-kl"``); an unknown key names close ones."""
    table = _table()
    if key not in table:
        close = difflib.get_close_matches(key, list(table), n=3, cutoff=0.5)
        hint = f"did you mean {', '.join(close)}?" if close else "see paper.facts() for the keys"
        raise UnknownFact(f"no paper fact {key!r}: {hint}")
    return table[key]


def value(key: str) -> Any:
    """The value of :func:`fact` ``key`` (a copy, so editing it changes nothing here)."""
    return copy.deepcopy(fact(key).value)


def facts(prefix: str = "") -> list[Fact]:
    """All facts whose key starts with ``prefix``, in the order of ``paper.yaml``."""
    return [f for k, f in _table().items() if k.startswith(prefix)]


def _pick(key: str, reading: str) -> Any:
    """The value for one reading (``key.reading``) where the readings differ, else the shared one."""
    table = _table()
    return table[f"{key}.{reading}"].value if f"{key}.{reading}" in table else value(key)


def _check(reading: str, allowed: tuple[str, ...], what: str) -> None:
    if reading not in allowed:
        raise ValueError(f"unknown {what} reading {reading!r}: use one of {', '.join(allowed)}")


ARMS: tuple[str, ...] = tuple(value("arms.order"))
ARM_READINGS: tuple[str, ...] = tuple(value("arms.readings"))
CURRICULUM_READINGS: tuple[str, ...] = tuple(value("stages.readings"))
MATH500_LEVEL_COUNTS: dict[int, int] = dict(value("math500.level_counts"))
MATH500_SUBJECT_COUNTS: dict[str, int] = dict(value("math500.subject_counts"))


def arm_settings(arm: str, reading: str = "isolated") -> dict[str, Any]:
    """Profile overrides (dotted keys) for one of Table 3's arms.

    ``reading="paper"``: Table 3 as written, the KL arms are standard GRPO with the bipolar reward
    (eq. 4, the kit's reading) and no-kl has eqs. 6-7. ``"isolated"``: every arm gets eqs. 6-7, so
    only the KL differs. The KL coefficients are the kit's choices (see ``paper.facts("arms.")``).
    """
    if arm not in ARMS:
        raise ValueError(f"unknown arm {arm!r}: use one of {', '.join(ARMS)}")
    _check(reading, ARM_READINGS, "arm")
    return {
        "train.beta_kl_loss": value(f"arms.{arm}.beta_kl_loss"),
        "train.beta_kl_reward": value(f"arms.{arm}.beta_kl_reward"),
        "reward.name": _pick(f"arms.{arm}.reward", reading),
    }


def stages(reading: str = "staged") -> dict[str, dict[str, Any]]:
    """The curriculum stages, name -> ``{"levels": [...], "steps": int, "start_from": str}``.

    ``"staged"`` trains each stage on its new level only, ``"cumulative"`` on every level up to it
    (Sec. 4.4.1 "widened the training range up to difficulty 4"); both readings are the kit's.
    """
    _check(reading, CURRICULUM_READINGS, "curriculum")
    return {name: {"levels": list(_pick(f"stages.{name}.levels", reading)),
                   "steps": value("stages.steps"),
                   "start_from": value(f"stages.{name}.start_from")}
            for name in value("stages.order")}


def table5_minutes() -> dict[str, float]:
    """Table 5's training time per run (minutes on 4x RTX A6000)."""
    return {f.key.removeprefix("table5."): f.value for f in facts("table5.")}
