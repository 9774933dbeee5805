"""The papers' facts, each with its source and a kind: ``paper`` (printed) or ``choice`` (the kit's).

The values live in ``paper.yaml`` next to this file, the one place the kit keeps a published number::

    >>> from supersmall import paper
    >>> paper.value("table6.no-kl")
    0.35
    >>> paper.fact("arms.kl-penalty.beta_kl_reward").kind   # the paper gives no coefficient
    'choice'
    >>> paper.arm_settings("kl-penalty", reading="paper")["reward.name"]
    'bipolar'
    >>> paper.fact("table6.no-kl").at              # document 000 (the paper), line 243
    '000:243'

Every ``paper`` fact has a locator ``at``: ``"000:243"`` is line 243 of document 000 in the papers' plain-text
copies (``../shared/seeds/``, see its README), or a named outside source (a data set, a repository).
"""

from __future__ import annotations

import copy
import difflib
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import Any

import yaml

from supersmall import stats

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
    at: str = ""  # where to find it: "000:156" (document 000, line 156), ranges "000:187-189", or a named source

    def __str__(self) -> str:
        at = f" at {self.at}" if self.at else ""
        note = f"; {self.note}" if self.note else ""
        return f"{self.key} = {self.value!r} ({self.kind}, {self.source}{at}{note})"


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
        table[key] = Fact(key, value, str(entry["source"]), entry["kind"], str(entry.get("note", "")),
                          str(entry.get("at", "")))
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

    ``reading="paper"``: Table 3 as written, the KL arms are standard GRPO (eq. 2) with the bipolar reward
    (eq. 4, the kit's reading), kl-penalty keeps a KL loss beside its reward penalty, and no-kl has
    eqs. 6-7. ``"isolated"``: every arm gets eqs. 6-7 and kl-penalty has the reward penalty only, so only
    the KL differs. The KL coefficients are the kit's choices (see ``paper.facts("arms.")``).
    """
    if arm not in ARMS:
        raise ValueError(f"unknown arm {arm!r}: use one of {', '.join(ARMS)}")
    _check(reading, ARM_READINGS, "arm")
    return {
        "train.beta_kl_loss": _pick(f"arms.{arm}.beta_kl_loss", reading),
        "train.beta_kl_reward": value(f"arms.{arm}.beta_kl_reward"),
        "train.kl_penalty_loss": arm == "kl-penalty" and bool(_pick(f"arms.{arm}.kl_loss", reading)),
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


def pct(key: str) -> str:
    """A paper fact that is a fraction, as a percentage (``table6.no-kl`` -> ``35.0%``)."""
    return f"{value(key):.1%}"


def cite(key: str) -> str:
    """Where the paper says a fact: its source and locator (``Table 6, 000:243``; see :class:`Fact`)."""
    f = fact(key)
    return f"{f.source}, {f.at}" if f.at else f.source


def errata() -> list[dict[str, str]]:
    """What the paper (or its project page) gets wrong, leaves ambiguous or contradicts, each row worked out
    from the paper's own numbers and citing where it says so (``cite``: document:line in the seeds)."""
    v, counts = value, MATH500_LEVEL_COUNTS

    def row(topic, kind, says, gives, note=""):
        return {"topic": topic, "kind": kind, "paper says": says, "its numbers give": gives, "note": note}

    ratio, other, better = v("derived.ratio_over_base"), v("derived.better_than_grpo_other_arm"), v("derived.better_than_grpo")
    return [
        row("gain over the base", "error (project page)",
            f"+{ratio - 1:.1%} ({cite('derived.ratio_over_base')}); the project page: up to "
            f"{v('claims.ratio_over_base_project_page')}x ({cite('claims.ratio_over_base_project_page')})",
            f"{pct('table6.no-kl')} / {pct('table6.base')} = {ratio:.2f}x = +{ratio - 1:.1%}: the paper "
            f"is right; {v('claims.ratio_over_base_project_page')}x reads +{ratio - 1:.1%} as {ratio - 1:.2f}x",
            fact("derived.ratio_over_base").note),
        row("gain over standard GRPO", "ambiguity",
            f"more than {v('claims.better_than_grpo_text')}x ({cite('claims.better_than_grpo_text')})",
            f"{pct('table6.no-kl')} / {pct('table6.kl-penalty')} = {other:.2f}x against kl-penalty, the "
            f"arm the text sets against kl-nopenalty (holds); {pct('table6.no-kl')} / "
            f"{pct('table6.kl-nopenalty')} = {better:.2f}x against kl-nopenalty (does not)",
            "Table 3 calls both KL arms standard GRPO; on the text's own reading the claim holds"),
        row("MATH-500 problems per level", "error",
            f"{v('claims.problems_per_level_text')} per level ({cite('claims.problems_per_level_text')})",
            " / ".join(str(counts[lv]) for lv in sorted(counts))
            + f" (levels {min(counts)}-{max(counts)}, {sum(counts.values())} in all; {cite('math500.level_counts')})"),
        row("forgetting after level 5", "contradiction",
            f"{v('curriculum.forgetting')} ({cite('curriculum.forgetting.levels')}); and levels "
            f"{min(v('curriculum.stable_levels_text'))}-{max(v('curriculum.stable_levels_text'))} stayed stable in "
            "every curriculum "
            f"setting ({cite('curriculum.stable_levels_text')})",
            "both cannot hold: levels " + ", ".join(map(str, v("curriculum.forgetting.levels")))
            + " are inside 1-3; Fig. 10 (no numbers printed) would decide it",
            "the kit tests the first reading (levels 1-2 fall), as Sec. 4.4.2 (2) names it"),
        row("format term in the reward", "contradiction",
            f"{v('claims.format_term')} ({cite('claims.format_term')})",
            f"eq. 6 ({v('eq6.correct')} correct, {v('eq6.wrong')} wrong) + eq. 7 ({v('eq7.penalty')} when "
            f"len > {v('eq7.threshold')} L_max; {cite('eq7.penalty')}): no format term",
            fact("claims.format_term").note),
        row("base accuracy", "suspect",
            f"{pct('table6.base')} ({cite('table6.base')})",
            f"{v('deepseek.math500_reported'):.1%} reported for the same model ({cite('deepseek.math500_reported')})",
            fact("table6.base").note),
        row("one run", "stated limitation",
            f"{v('claims.single_run')} run per arm, no seed variance and no intervals ({cite('claims.single_run')})",
            "every difference above rests on one seed; the kit decides each claim on at least "
            f"{stats.MIN_SEEDS} seeds (5 for the paper's claims), its interval counting seeds and problems"),
        row("level-4 accuracy 'more than twofold'", "error",
            f"{v('claims.level4_twofold_text')} ({pct('curriculum.level1-3.on_level4')} -> "
            f"{pct('curriculum.level4.on_level4')}; {cite('claims.level4_twofold_text')})",
            f"{v('curriculum.level4.on_level4')} / {v('curriculum.level1-3.on_level4')} = "
            f"{v('curriculum.level4.on_level4') / v('curriculum.level1-3.on_level4'):.2f}x: just under twofold",
            fact("claims.level4_twofold_text").note),
    ]
