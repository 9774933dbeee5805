"""The replication report: a verdict per claim of the paper, from paired per-seed evidence.

Each claim compares two models on the *same* problems, one seed at a time (paired difference,
bootstrap interval, exact McNemar), then across seeds (Student-t interval of the per-seed
differences); :func:`supersmall.stats.verdict` reads that interval (``stats.VERDICT_RULE``). The
base model is one shared evaluation, paired with each seed's trained model. Only evaluations of
one ``series`` (config + code version) are used together; the others are listed, never pooled.

Inputs are evaluation folders ``<runs>/eval/<name>/`` holding ``run_card.json`` (kind ``eval``,
with ``role``, ``arm``, ``stage``, ``seed``, ``series``) and ``records.jsonl`` (one line per sample);
``write_report("runs", "runs/report")`` writes verdicts.json, report.md and report.html.
"""

from __future__ import annotations

import json
import math
import warnings
from collections import defaultdict
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from supersmall import paper, stats
from supersmall.runcard import find_run_cards, read_run_card

RECORDS = "records.jsonl"
FIRST_STAGE = "level1-3"  # Table 3's arms are trained on Level 1-3 only


@dataclass
class EvalRun:
    """One evaluation: which model it scored, and its score on every problem."""

    name: str
    path: Path
    role: str  # base | trained
    arm: str | None
    stage: str | None
    seed: int | None
    series: str | None
    per_problem: dict[int, float]  # problem index -> mean correct over its samples (pass@1)
    level_of: dict[int, int] = field(default_factory=dict)  # problem index -> level
    summary: dict[str, Any] = field(default_factory=dict)
    created: str = ""
    reading: str | None = None  # the arm reading (isolated | paper) when the card records it

    @property
    def per_level(self) -> dict[int, dict[int, float]]:
        """level -> {problem index: score}."""
        out: dict[int, dict[int, float]] = defaultdict(dict)
        for i, score in self.per_problem.items():
            out[self.level_of.get(i, 0)][i] = score
        return dict(out)

    def scores(self, levels: list[int] | None = None) -> dict[int, float]:
        """Per-problem scores, only of ``levels`` when given."""
        if levels is None:
            return dict(self.per_problem)
        return {i: s for i, s in self.per_problem.items() if self.level_of.get(i) in levels}

    def accuracy(self, levels: list[int] | None = None) -> float:
        """Mean score (pass@1) over the problems, only of ``levels`` when given; NaN when there are none."""
        scores = self.scores(levels)
        return sum(scores.values()) / len(scores) if scores else math.nan


class Evals(list):
    """The :class:`EvalRun` s of one ``series``; ``skipped`` says which cards were left out and why."""

    def __init__(self, runs=(), series: str | None = None, skipped: list[str] | None = None):
        super().__init__(runs)
        self.series, self.skipped = series, list(skipped or [])


def _records(path: Path) -> tuple[dict[int, float], dict[int, int]]:
    correct: dict[int, list[float]] = defaultdict(list)
    level_of: dict[int, int] = {}
    with path.open() as fh:
        for line in fh:
            if line.strip():
                rec = json.loads(line)
                correct[int(rec["index"])].append(1.0 if rec.get("correct") else 0.0)
                if rec.get("level") is not None:
                    level_of[int(rec["index"])] = int(rec["level"])
    return {i: sum(v) / len(v) for i, v in correct.items()}, level_of


def load_evals(runs_dir: str | Path, series: str | None = None) -> Evals:
    """Complete evaluation runs under ``runs_dir`` of one ``series``.

    ``series=None`` takes the series of the most recently created evaluation card. Cards of other
    series, unfinished cards and folders without records are left out, listed in ``.skipped`` and
    in a warning.
    """
    root, found, skipped = Path(runs_dir), [], []
    for card_path in find_run_cards(root, kind="eval") if root.is_dir() else []:
        card, folder = read_run_card(card_path), card_path.parent
        if card.get("status") != "complete":
            skipped.append(f"{folder}: status {card.get('status')!r}")
        elif not (folder / RECORDS).is_file():
            skipped.append(f"{folder}: no {RECORDS}")
        else:
            found.append((card, folder, card_path.stat().st_mtime))
    if series is None and found:
        series = max(found, key=lambda c: (c[0].get("created") or "", c[2]))[0].get("series")
    runs = []
    for card, folder, _ in found:
        if card.get("series") != series:
            skipped.append(f"{folder}: series {card.get('series')!r}, not {series!r}")
            continue
        runs.append(load_eval(folder))
    if skipped:
        warnings.warn(f"{len(skipped)} evaluation card(s) left out: " + "; ".join(skipped), stacklevel=2)
    return Evals(runs, series, skipped)


def paper_pct(key: str) -> str:
    """A paper fact that is a fraction, as a percentage (``table6.no-kl`` -> ``35.0%``)."""
    return f"{paper.value(key):.1%}"


@dataclass(frozen=True)
class _Claim:
    claim: str
    a: tuple[str, str] | None  # (arm, stage) of the reference model; None = the base model
    b: tuple[str, str]  # (arm, stage) of the model the paper says is better (or worse, direction -1)
    direction: int
    paper: str
    levels_key: str | None = None  # a paper fact holding the levels the claim is about


def _claim_specs() -> list[_Claim]:
    t6 = "(paper, Table 6)"
    return [
        _Claim("ZeroGRPO improves the base model", None, ("no-kl", FIRST_STAGE), +1,
               f"{paper_pct('table6.base')} -> {paper_pct('table6.no-kl')} on MATH-500 {t6}"),
        _Claim("no-kl beats kl-nopenalty", ("kl-nopenalty", FIRST_STAGE), ("no-kl", FIRST_STAGE), +1,
               f"{paper_pct('table6.no-kl')} vs {paper_pct('table6.kl-nopenalty')} {t6}"),
        _Claim("no-kl beats kl-penalty", ("kl-penalty", FIRST_STAGE), ("no-kl", FIRST_STAGE), +1,
               f"{paper_pct('table6.no-kl')} vs {paper_pct('table6.kl-penalty')} {t6}"),
        _Claim("a level-4 stage raises accuracy", ("no-kl", FIRST_STAGE), ("no-kl", "level4"), +1,
               f"{paper_pct('curriculum.level1-3')} -> {paper_pct('curriculum.level4')} "
               f"(paper, {paper.fact('curriculum.level4').source})"),
        _Claim("level-5 training lowers levels 1-2 (forgetting)", ("no-kl", "level4"), ("no-kl", "level5"), -1,
               f"{paper.value('curriculum.forgetting')} (paper, {paper.fact('curriculum.forgetting').source})",
               levels_key="curriculum.forgetting.levels"),
    ]


def _kl_note(runs: list[EvalRun]) -> str:
    readings = {r.reading for r in runs} - {None}
    if readings == {"paper"}:
        return ("Table 3 reading: the KL arms used the bipolar reward (the kit's reading of 'standard GRPO'), "
                "so reward and KL change together, as in the paper.")
    which = "these runs (isolated reading)" if readings == {"isolated"} else "if these runs are the isolated reading, they"
    return (f"The paper's KL arms also changed the reward (Table 3: standard GRPO); {which} changed only "
            "the KL, so they test a narrower claim.")


def _fmt(x: float) -> str:
    return f"{x:+.1%}" if math.isfinite(x) else ("-inf" if x < 0 else "+inf")


def interval_points(interval: list[float]) -> str:
    """A paired interval of fractions in percentage points: ``[0.314, 0.433]`` -> ``[+31.4, +43.3]``."""
    return f"[{100 * interval[0]:+.1f}, {100 * interval[1]:+.1f}]"


def points(row: dict[str, Any]) -> str:
    """A :func:`paired` row's mean difference and interval in points: ``+37.3 points [+31.4, +43.3]``."""
    return f"{100 * row['mean_difference']:+.1f} points {interval_points(row['interval'])}"


def load_eval(path: str | Path) -> EvalRun:
    """One evaluation folder (``run_card.json`` + ``records.jsonl``) as an :class:`EvalRun`."""
    folder = Path(path)
    card = read_run_card(folder)
    per_problem, level_of = _records(folder / RECORDS)
    return EvalRun(name=card.get("name") or folder.name, path=folder, role=card.get("role") or "trained",
                   arm=card.get("arm"), stage=card.get("stage"), seed=card.get("seed"), series=card.get("series"),
                   per_problem=per_problem, level_of=level_of, summary=card.get("metrics") or {},
                   created=card.get("created") or "", reading=card.get("reading"))


def paired(claim: str, pairs: list[tuple[Any, EvalRun, EvalRun]], direction: int = +1, paper_text: str = "",
           levels: list[int] | None = None, note: str = "") -> dict[str, Any] | None:
    """A verdict from paired evidence: for each ``(seed, a, b)`` the paired difference b - a on the problems
    both scored (of ``levels`` only, when given), then the across-seed interval and the verdict in the
    claimed ``direction``. None when no pair shares a problem. Used by :func:`claims` and the notebooks::

        paired("mean-only advantages beat std", [(s, load_eval(a[s]), load_eval(b[s])) for s in seeds])
    """
    per_seed, used, acc = [], [], []
    for seed, a, b in pairs:
        sa, sb = a.scores(levels), b.scores(levels)
        common = sorted(set(sa) & set(sb))
        if not common:
            continue
        xa, xb = [sa[i] for i in common], [sb[i] for i in common]
        per_seed.append({"seed": seed, **stats.paired_difference(xa, xb)})
        acc.append((sum(xa) / len(xa), sum(xb) / len(xb)))
        used += [str(r.path / "run_card.json") for r in (a, b) if str(r.path / "run_card.json") not in used]
    if not per_seed:
        return None
    s = stats.across_seeds([p["difference"] for p in per_seed])
    where = f" on levels {', '.join(map(str, levels))}" if levels else ""
    mean_a, mean_b = (sum(x) / len(acc) for x in zip(*acc))
    measured = (f"{mean_a:.1%} -> {mean_b:.1%}{where}: mean paired difference {_fmt(s['mean'])} over "
                f"{s['n_seeds']} seed(s) [{_fmt(s['ci_low'])}, {_fmt(s['ci_high'])}]; per seed "
                + ", ".join(f"{p['seed']}: {_fmt(p['difference'])} (n={p['n']})" for p in per_seed))
    return {"claim": claim, "paper": paper_text, "measured": measured, "interval": [s["ci_low"], s["ci_high"]],
            "mean_difference": s["mean"], "verdict": stats.verdict(s["ci_low"], s["ci_high"], direction),
            "direction": direction, "n_seeds": s["n_seeds"], "rule": stats.VERDICT_RULE, "note": note,
            "per_seed": per_seed, "run_cards": used}


def claims(evals: list[EvalRun]) -> list[dict[str, Any]]:
    """One row per claim whose runs exist: the paper's number, the measured paired difference
    (b - a, per seed and across seeds), the across-seed interval and the verdict."""
    base = sorted((r for r in evals if r.role == "base"), key=lambda r: r.created, reverse=True)
    trained: dict[tuple, EvalRun] = {}
    for r in sorted(evals, key=lambda r: r.created):  # a later card of the same model replaces an earlier one
        if r.role != "base" and r.seed is not None:
            trained[(r.arm, r.stage or FIRST_STAGE, r.seed)] = r
    rows = []
    for spec in _claim_specs():
        pairs = []
        for seed in sorted(s for (arm, stage, s) in trained if (arm, stage) == spec.b):
            a = (next((r for r in base if r.seed == seed), base[0] if base else None) if spec.a is None
                 else trained.get((*spec.a, seed)))
            if a is not None:
                pairs.append((seed, a, trained[(*spec.b, seed)]))
        note = _kl_note([r for r in evals if (r.arm, r.stage or FIRST_STAGE) == spec.a]) if spec.a and \
            spec.a[0].startswith("kl-") else ""
        row = paired(spec.claim, pairs, spec.direction, spec.paper,
                     paper.value(spec.levels_key) if spec.levels_key else None, note)
        if row is not None:  # nothing measured to decide it: the claim is left out, not left blank
            rows.append(row)
    return rows


def _paper_ref(run: EvalRun, level: int | None) -> paper.Fact | None:
    """The paper's number for this model (and level), where the paper prints one."""
    stage = run.stage or FIRST_STAGE
    if run.role == "base":
        keys = ["table6.base"] if level is None else []
    elif level is None:
        keys = [f"table6.{run.arm}"] if stage == FIRST_STAGE else [f"curriculum.{stage}"] if run.arm == "no-kl" else []
    else:
        keys = [f"fig7.{run.arm}.level{level}"] if stage == FIRST_STAGE else []
        keys += [f"curriculum.{stage}.on_level{level}"] if run.arm == "no-kl" else []
    for key in keys:
        try:
            return paper.fact(key)
        except paper.UnknownFact:
            continue
    return None


def absolute_table(evals: list[EvalRun]) -> list[dict[str, Any]]:
    """Per run (all problems, then each level): accuracy with a Wilson 95% interval beside the paper's
    number (Table 6, Sec. 4.4, Fig. 7) where it prints one. Plain rows, no verdict."""
    rows = []
    for run in sorted(evals, key=lambda r: (r.role != "base", r.arm or "", r.stage or "", r.seed or 0)):
        subsets = [(None, run.per_problem)] + sorted((lv, s) for lv, s in run.per_level.items())
        for level, scores in subsets:
            n = len(scores)
            accuracy = sum(scores.values()) / n if n else math.nan
            lo, hi = stats.wilson_interval(round(sum(scores.values())), n)
            ref = _paper_ref(run, level)
            rows.append({"run": run.name, "role": run.role, "arm": run.arm, "stage": run.stage, "seed": run.seed,
                         "subset": "all" if level is None else f"level {level}", "n": n, "accuracy": accuracy,
                         "ci_low": lo, "ci_high": hi, "paper": ref.value if ref else None,
                         "paper_source": ref.source if ref else ""})
    return rows


def paper_errata() -> list[dict[str, str]]:
    """What the paper gets wrong (or leaves suspect), each worked out from its own numbers."""
    v, src, counts = paper.value, (lambda key: paper.fact(key).source), paper.MATH500_LEVEL_COUNTS

    def row(topic, says, gives, note=""):
        return {"topic": topic, "paper says": says, "its numbers give": gives, "note": note}

    return [
        row("gain over the base", f"up to {v('claims.ratio_over_base_project_page')}x "
            f"({src('claims.ratio_over_base_project_page')})", f"{paper_pct('table6.no-kl')} / {paper_pct('table6.base')} = "
            f"{v('derived.ratio_over_base'):.2f}x ({src('derived.ratio_over_base')})",
            paper.fact("derived.ratio_over_base").note),
        row("gain over standard GRPO", f"more than {v('claims.better_than_grpo_text')}x "
            f"({src('claims.better_than_grpo_text')})", f"{paper_pct('table6.no-kl')} / {paper_pct('table6.kl-nopenalty')} = "
            f"{v('derived.better_than_grpo'):.2f}x against the better KL arm, "
            f"{v('derived.better_than_grpo_other_arm'):.2f}x against the other ({src('derived.better_than_grpo')})"),
        row("MATH-500 problems per level", f"{v('claims.problems_per_level_text')} per level "
            f"({src('claims.problems_per_level_text')})", " / ".join(str(counts[lv]) for lv in sorted(counts))
            + f" (levels {min(counts)}-{max(counts)}, {sum(counts.values())} in all; {src('math500.level_counts')})"),
        row("format term in the reward", f"{v('claims.format_term')} ({src('claims.format_term')})",
            f"eq. 6 ({v('eq6.correct')} correct, {v('eq6.wrong')} wrong) + eq. 7 ({v('eq7.penalty')} when "
            f"len > {v('eq7.threshold')} L_max): no format term", paper.fact("claims.format_term").note),
        row("base accuracy", f"{paper_pct('table6.base')} ({src('table6.base')})",
            f"{v('deepseek.math500_reported'):.0%}+ reported for the same model ({src('deepseek.math500_reported')})",
            paper.fact("table6.base").note),
    ]


def _finite(obj: Any) -> Any:
    """JSON has no inf or NaN: write them as null."""
    if isinstance(obj, float) and not math.isfinite(obj):
        return None
    if isinstance(obj, dict):
        return {k: _finite(x) for k, x in obj.items()}
    if isinstance(obj, list):
        return [_finite(x) for x in obj]
    return obj


def _md_table(rows: list[dict[str, Any]], columns: list[str]) -> str:
    def cell(x: Any) -> str:
        if isinstance(x, float):
            return f"{x:.3f}" if math.isfinite(x) else str(x)
        return "" if x is None else str(x).replace("|", "\\|")

    lines = ["| " + " | ".join(columns) + " |", "|" + "---|" * len(columns)]
    lines += ["| " + " | ".join(cell(r.get(c)) for c in columns) + " |" for r in rows]
    return "\n".join(lines)


def write_report(runs_dir: str | Path, out_dir: str | Path, series: str | None = None,
                 rows: list[dict[str, Any]] | None = None) -> dict[str, Path]:
    """Write ``verdicts.json`` (the rows of :func:`claims`, or ``rows`` when given), ``report.md`` and
    ``report.html``."""
    evals = load_evals(runs_dir, series)
    rows = claims(evals) if rows is None else rows
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    paths = {"verdicts": out / "verdicts.json", "md": out / "report.md", "html": out / "report.html"}
    paths["verdicts"].write_text(json.dumps(_finite(rows), indent=2) + "\n")
    shown = [{**r, "interval": f"[{_fmt(r['interval'][0])}, {_fmt(r['interval'][1])}]"} for r in rows]
    left_out = "".join(f"\n- {s}" for s in evals.skipped)
    cells = [
        f"# Replication report\n\nSeries `{evals.series}`: {len(evals)} evaluation(s) under `{runs_dir}`."
        + (f"\n\nLeft out:{left_out}" if left_out else ""),
        "## Verdicts\n\n" + stats.VERDICT_RULE + "\n\n"
        + (_md_table(shown, ["claim", "paper", "measured", "interval", "n_seeds", "verdict"]) if rows
           else "No claim has the runs it needs yet.")
        + "".join(f"\n\n*{r['claim']}*: {r['note']}" for r in rows if r["note"]),
        "## Accuracy beside the paper (no verdict)\n\n"
        + _md_table(absolute_table(evals), ["run", "seed", "subset", "n", "accuracy", "ci_low", "ci_high",
                                            "paper", "paper_source"]),
        "## What the paper gets wrong\n\n"
        + _md_table(paper_errata(), ["topic", "paper says", "its numbers give", "note"]),
    ]
    # nbformat/nbconvert are heavy: imported only when a report is exported
    import nbformat
    from nbconvert import HTMLExporter, MarkdownExporter

    nb = nbformat.v4.new_notebook()
    nb.cells = [nbformat.v4.new_markdown_cell(text) for text in cells]
    for ext, exporter in (("md", MarkdownExporter()), ("html", HTMLExporter())):
        paths[ext].write_text(exporter.from_notebook_node(nb)[0])
    return paths
