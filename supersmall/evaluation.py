"""The one evaluation type: per-problem pass@1 computed once, accuracy with its 95% interval for any subset
(levels, a subject), the summary every evaluation folder holds, and the paired comparison with another
evaluation on the same problems. :mod:`supersmall.evaluate` produces evaluations (generate, grade, write the
folder); :mod:`supersmall.report`, :mod:`supersmall.experiments`, training and the notebooks read them here.

    ev = Evaluation.load("runs/t/eval/final")          # a folder run_eval wrote (or its records.jsonl)
    ev.accuracy(levels=[1, 2]), ev.interval(subject="Algebra"), ev.summary["per_level"]["3"]
    base.compare(ev)                                    # paired difference ev - base, same problems

Metric names, the same in summaries, run cards, JSON, plots and notebooks: ``accuracy`` (pass@1),
``ci_low``/``ci_high``, ``n`` (problems), ``truncated_fraction``, ``mean_length``, ``reasoning_rate``,
``boxed_rate``, ``samples``.
"""

from __future__ import annotations

import json
import math
from collections import defaultdict
from collections.abc import Sequence
from functools import cached_property
from pathlib import Path
from typing import Any

from supersmall import stats
from supersmall.runcard import read_run_card
from supersmall.stats import paired_difference

RECORDS = "records.jsonl"  # one line per sample, in every evaluation folder
SUMMARY_KEYS = ("accuracy", "ci_low", "ci_high", "n", "per_level", "per_subject", "truncated_fraction",
                "mean_length", "reasoning_rate", "boxed_rate", "samples")


def rate(scores: Sequence[float]) -> dict[str, float]:
    """Mean of per-problem scores with its 95% interval (:func:`supersmall.stats.mean_interval`: Wilson when
    every score is 0 or 1, a bootstrap over problems when pass@1 averages several samples)."""
    n = len(scores)
    acc = sum(scores) / n if n else math.nan
    lo, hi = stats.mean_interval(list(scores))
    return {"accuracy": acc, "ci_low": lo, "ci_high": hi, "n": n}


class Evaluation:
    """One evaluation: its records (one per sample), the settings that made them and, when read from a
    folder, its run card (``role``: base | trained, ``arm``, ``stage``, ``seed``, ``series``).

    Per-problem pass@1 (mean correct over a problem's samples) is computed once, here; accuracy, intervals,
    breakdowns, the summary and :meth:`compare` all read it. Build one from records
    (``Evaluation(records)``), from a folder or a ``records.jsonl`` (:meth:`load`), or with :func:`evaluate`.
    """

    def __init__(self, records: Sequence[dict[str, Any]], settings: dict[str, Any] | None = None,
                 card: dict[str, Any] | None = None, path: str | Path | None = None):
        self.records, self.settings, self.card = list(records), dict(settings or {}), dict(card or {})
        self.path = Path(path) if path is not None else None
        samples: dict[int, list[float]] = defaultdict(list)
        for r in self.records:
            samples[int(r["index"])].append(1.0 if r.get("correct") else 0.0)
        self.per_problem = {i: sum(v) / len(v) for i, v in samples.items()}  # problem index -> pass@1
        self.level_of = {int(r["index"]): int(r["level"]) for r in self.records if r.get("level") is not None}
        self.subject_of = {int(r["index"]): str(r["subject"]) for r in self.records if r.get("subject") is not None}
        c = self.card
        self.name = c.get("name") or (self.path.name if self.path else "")
        self.role = c.get("role") or "trained"
        self.arm, self.stage, self.seed, self.series = c.get("arm"), c.get("stage"), c.get("seed"), c.get("series")
        self.created, self.reading = c.get("created") or "", c.get("reading")  # reading: isolated | paper (KL arms)

    @classmethod
    def load(cls, path: str | Path) -> Evaluation:
        """An evaluation folder (``records.jsonl`` and, when present, ``run_card.json``) or a records file."""
        path = Path(path)
        folder, file = (path.parent, path) if path.suffix == ".jsonl" else (path, path / RECORDS)
        if not file.is_file():
            raise FileNotFoundError(f"no {file.name} at {str(file)!r}: evaluate first (supersmall eval)")
        records = [json.loads(line) for line in file.read_text().splitlines() if line.strip()]
        card = read_run_card(folder) if (folder / "run_card.json").is_file() else {}
        return cls(records, card.get("settings"), card, folder)

    @property
    def levels(self) -> list[int]:
        return sorted(set(self.level_of.values()))

    def scores(self, levels: Sequence[int] | None = None, subject: str | None = None) -> dict[int, float]:
        """Per-problem pass@1, only of ``levels`` and ``subject`` when given."""
        return {i: s for i, s in self.per_problem.items()
                if (levels is None or self.level_of.get(i) in levels)
                and (subject is None or self.subject_of.get(i) == subject)}

    def accuracy(self, levels: Sequence[int] | None = None, subject: str | None = None) -> float:
        """pass@1 over the problems (of ``levels`` / ``subject``); NaN when there are none."""
        return rate(list(self.scores(levels, subject).values()))["accuracy"]

    def interval(self, levels: Sequence[int] | None = None, subject: str | None = None) -> dict[str, float]:
        """``accuracy``, ``ci_low``, ``ci_high`` (95%, :func:`rate`) and ``n`` of a subset."""
        return rate(list(self.scores(levels, subject).values()))

    def breakdown(self, key: str) -> dict[str, dict[str, float]]:
        """:meth:`interval` per ``level`` or per ``subject``, keyed by its name as a string."""
        if key == "level":
            return {str(lv): self.interval(levels=[lv]) for lv in self.levels}
        if key == "subject":
            return {sub: self.interval(subject=sub) for sub in sorted(set(self.subject_of.values()))}
        raise ValueError(f"breakdown by 'level' or 'subject', got {key!r}")

    @cached_property
    def summary(self) -> dict[str, Any]:
        """What ``summary.json`` holds (:data:`SUMMARY_KEYS`): pass@1 with its interval, per level and subject,
        and per-sample rates."""
        recs, n = self.records, max(1, len(self.records))
        return {**self.interval(), "per_level": self.breakdown("level"), "per_subject": self.breakdown("subject"),
                "truncated_fraction": sum(bool(r.get("truncated")) for r in recs) / n,
                "mean_length": sum(r.get("length", 0) for r in recs) / n,
                "reasoning_rate": sum(bool(r.get("reasoned")) for r in recs) / n,
                "boxed_rate": sum(r.get("extracted") is not None for r in recs) / n, "samples": len(recs)}

    def compare(self, other: Evaluation, levels: Sequence[int] | None = None, n_boot: int = 2000,
                seed: int = 0) -> dict[str, Any]:
        """The paired difference ``other - self`` on the problems both scored (of ``levels`` when given):
        :func:`supersmall.stats.paired_difference` (bootstrap 95% interval, exact McNemar), plus each one's
        accuracy on those problems (``accuracy_a`` for self, ``accuracy_b`` for other)."""
        sa, sb = self.scores(levels), other.scores(levels)
        common = sorted(set(sa) & set(sb))
        if not common:
            raise ValueError("the two evaluations share no problems (compare needs the same dataset)")
        xa, xb = [sa[i] for i in common], [sb[i] for i in common]
        return {**paired_difference(xa, xb, n_boot=n_boot, seed=seed),
                "accuracy_a": sum(xa) / len(xa), "accuracy_b": sum(xb) / len(xb)}

    def to_jsonl(self, path: str | Path) -> Path:
        path = Path(path)
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text("".join(json.dumps(r) + "\n" for r in self.records))
        return path

    def __repr__(self) -> str:
        s = self.summary
        return (f"Evaluation({self.name!r}, accuracy={s['accuracy']:.3f} [{s['ci_low']:.3f}, {s['ci_high']:.3f}], "
                f"n={s['n']}, truncated_fraction={s['truncated_fraction']:.2f})")


__all__ = ["Evaluation", "rate", "RECORDS", "SUMMARY_KEYS"]
