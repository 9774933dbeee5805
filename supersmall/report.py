"""The replication report: a verdict per claim of the paper, from paired per-seed evidence.

Each claim compares two models on the *same* problems, one seed at a time (paired difference,
bootstrap interval, exact McNemar), then across seeds: :func:`supersmall.stats.decide` (the one rule,
``stats.VERDICT_RULE``: a t test whose standard error adds the seeds' spread to the problems' shared error,
Holm across the paper's five claims) and its p-value, MDE and size reading. The
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
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from supersmall import paper, stats
from supersmall.evaluation import RECORDS, Evaluation
from supersmall.runcard import find_run_cards, read_run_card

FIRST_STAGE = "level1-3"  # Table 3's arms are trained on Level 1-3 only


class Evals(list):
    """The :class:`~supersmall.evaluation.Evaluation` s of one ``series``; ``skipped`` says which cards were
    left out and why."""

    def __init__(self, runs=(), series: str | None = None, skipped: list[str] | None = None):
        super().__init__(runs)
        self.series, self.skipped = series, list(skipped or [])


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
        runs.append(Evaluation.load(folder))
    if skipped:
        warnings.warn(f"{len(skipped)} evaluation card(s) left out: " + "; ".join(skipped), stacklevel=2)
    return Evals(runs, series, skipped)


@dataclass(frozen=True)
class Claim:
    """One claim of the paper: model ``b`` beats model ``a`` (``direction=-1``: is worse). ``a`` and ``b``
    are (arm, stage); ``a=None`` is the base model. The replication report, the rehearsal and the tiny
    series (:func:`supersmall.experiments.series_claims`) all decide these same claims."""

    claim: str
    a: tuple[str, str] | None  # (arm, stage) of the reference model; None = the base model
    b: tuple[str, str]  # (arm, stage) of the model the paper says is better (or worse, direction -1)
    direction: int
    paper: str
    levels_key: str | None = None  # a paper fact holding the levels the claim is about
    effect_keys: tuple[str, str] | None = None  # paper facts (a, b): the paper's effect is value(b) - value(a)

    @property
    def levels(self) -> list[int] | None:
        return paper.value(self.levels_key) if self.levels_key else None

    @property
    def paper_effect(self) -> float | None:
        """The paper's difference b - a (a fraction), where it prints both numbers."""
        return paper.value(self.effect_keys[1]) - paper.value(self.effect_keys[0]) if self.effect_keys else None


def claim_specs() -> list[Claim]:
    """The paper's claims, in report order (the one definition)."""
    t6 = "(paper, Table 6)"
    return [
        Claim("ZeroGRPO improves the base model", None, ("no-kl", FIRST_STAGE), +1,
              f"{paper.pct('table6.base')} -> {paper.pct('table6.no-kl')} on MATH-500 {t6}",
              effect_keys=("table6.base", "table6.no-kl")),
        Claim("no-kl beats kl-nopenalty", ("kl-nopenalty", FIRST_STAGE), ("no-kl", FIRST_STAGE), +1,
              f"{paper.pct('table6.no-kl')} vs {paper.pct('table6.kl-nopenalty')} {t6}",
              effect_keys=("table6.kl-nopenalty", "table6.no-kl")),
        Claim("no-kl beats kl-penalty", ("kl-penalty", FIRST_STAGE), ("no-kl", FIRST_STAGE), +1,
              f"{paper.pct('table6.no-kl')} vs {paper.pct('table6.kl-penalty')} {t6}",
              effect_keys=("table6.kl-penalty", "table6.no-kl")),
        Claim("a level-4 stage raises accuracy", ("no-kl", FIRST_STAGE), ("no-kl", "level4"), +1,
              f"{paper.pct('curriculum.level1-3')} -> {paper.pct('curriculum.level4')} "
              f"(paper, {paper.fact('curriculum.level4').source})",
              effect_keys=("curriculum.level1-3", "curriculum.level4")),
        Claim("level-5 training lowers levels 1-2 (forgetting)", ("no-kl", "level4"), ("no-kl", "level5"), -1,
              f"{paper.value('curriculum.forgetting')} (paper, {paper.fact('curriculum.forgetting').source})",
              levels_key="curriculum.forgetting.levels"),
    ]


def _kl_note(runs: Sequence[Evaluation]) -> str:
    readings = {r.reading for r in runs} - {None}
    if readings == {"paper"}:
        return ("Table 3 reading: the KL arms used the bipolar reward (the kit's reading of 'standard GRPO'), "
                "so reward and KL change together, as in the paper.")
    which = "these runs (isolated reading)" if readings == {"isolated"} else "if these runs are the isolated reading, they"
    return (f"The paper's KL arms also changed the reward (Table 3: standard GRPO); {which} changed only "
            "the KL, so they test a narrower claim.")


def as_points(x: float) -> str:
    """A difference of fractions in percentage points, signed: 0.373 -> ``+37.3``."""
    return f"{100 * x:+.1f}" if math.isfinite(x) else ("-inf" if x < 0 else "+inf")


def interval_points(interval: list[float]) -> str:
    """A paired interval of fractions in percentage points: ``[0.314, 0.433]`` -> ``[+31.4, +43.3]``."""
    return f"[{as_points(interval[0])}, {as_points(interval[1])}]"


def points(row: dict[str, Any]) -> str:
    """A :func:`paired` row's mean difference and interval in points: ``+37.3 points [+31.4, +43.3]``."""
    return f"{as_points(row['mean_difference'])} points {interval_points(row['interval'])}"


def paired(claim: str, pairs: list[tuple[Any, Evaluation, Evaluation]], direction: int = +1, paper_text: str = "",
           levels: list[int] | None = None, note: str = "", paper_effect: float | None = None,
           size_transfers: bool = True, family: str = "exploratory",
           dropped_seeds: Sequence[Any] = (), margin: float | None = stats.MARGIN) -> dict[str, Any] | None:
    """A verdict from paired evidence: for each ``(seed, a, b)`` the paired difference b - a on the problems
    both scored (of ``levels`` only, when given), then :func:`supersmall.stats.decide` across seeds in the
    claimed ``direction``, its standard error two-level: the seeds' spread, and the problem-level error of the
    per-problem differences averaged over the seeds (on the problems every seed scored), which all seeds share.
    "absent" when the interval lies inside ±``margin``. None when no pair shares a problem. The row carries the
    decision beside the verdict (:data:`DECISION_KEYS`: ``p_value``, ``p_adjusted``, ``mde``, ``seeds_agree``
    and ``seeds_against`` (counts), the two parts of the standard error and their shares, ``size``,
    ``family``, ``reason``) and names the seeds left out (``dropped_seeds``: those given, and pairs that share
    no problem). Used by :func:`claims` and the notebooks::

        paired("mean-only advantages beat std", [(s, Evaluation.load(a[s]), Evaluation.load(b[s])) for s in seeds])
    """
    per_seed, used, dropped, by_problem = [], [], list(dropped_seeds), []
    for seed, a, b in pairs:
        sa, sb = a.scores(levels), b.scores(levels)
        if not set(sa) & set(sb):
            dropped.append(seed)
            continue
        per_seed.append({"seed": seed, **a.compare(b, levels)})  # Evaluation.compare: b - a, same problems
        by_problem.append({i: sb[i] - sa[i] for i in set(sa) & set(sb)})
        used += [c for c in (str(r.path / "run_card.json") for r in (a, b) if r.path) if c not in used]
    if not per_seed:
        return None
    shared = sorted(set.intersection(*(set(d) for d in by_problem)))  # problems every seed scored
    pse = stats.problem_level_se([[d[i] for i in shared] for d in by_problem]) if len(shared) >= 2 else None
    d = stats.decide([p["difference"] for p in per_seed], [p["se"] for p in per_seed], direction,
                     paper_effect, size_transfers, family, problem_se=pse, margin=margin)
    where = f" on levels {', '.join(map(str, levels))}" if levels else ""
    mean_a, mean_b = (sum(p[k] for p in per_seed) / len(per_seed) for k in ("accuracy_a", "accuracy_b"))
    measured = (f"{mean_a:.1%} -> {mean_b:.1%}{where}: mean paired difference {as_points(d['mean'])} points over "
                f"{d['n_seeds']} seed(s) {interval_points(d['interval'])}; per seed "
                + ", ".join(f"{p['seed']}: {as_points(p['difference'])} (n={p['n']})" for p in per_seed)
                + (f"; dropped: seed(s) {', '.join(map(str, dropped))}" if dropped else ""))
    decision = {k: d[k] for k in DECISION_KEYS}
    return {"claim": claim, "paper": paper_text, "measured": measured, "mean_difference": d["mean"], **decision,
            "dropped_seeds": dropped, "note": note, "per_seed": per_seed, "run_cards": used}


# What a row carries of its decision (stats.decide): enough to decide it again (adjust_family, the README)
DECISION_KEYS = ("verdict", "reason", "interval", "n_seeds", "p_value", "p_adjusted", "mde", "seeds_agree",
                 "seeds_against", "size", "paper_effect", "family", "direction", "margin", "sd", "se_seeds",
                 "se_problems", "share_seeds", "share_problems", "rule", "conditional")


def claim_row(spec: Claim, pairs: list[tuple[Any, Evaluation, Evaluation]], size_transfers: bool = True,
              dropped_seeds: Sequence[Any] = ()) -> dict[str, Any] | None:
    """:func:`paired` for one of the paper's claims (its text, direction, levels, effect, the KL note), in the
    family of the paper's claims (Holm-adjusted together by :func:`paper_family`)."""
    note = _kl_note([a for _, a, _ in pairs]) if spec.a and spec.a[0].startswith("kl-") else ""
    return paired(spec.claim, pairs, spec.direction, spec.paper, spec.levels, note, spec.paper_effect,
                  size_transfers, "paper claim", dropped_seeds)


def paper_family(rows: Sequence[dict[str, Any]]) -> list[dict[str, Any]]:
    """The paper's claims as one fixed family of ``len(claim_specs())`` (a claim without runs counts as p = 1):
    Holm-adjusted p-values and the verdicts that follow (:func:`supersmall.stats.adjust_family`); exploratory
    rows pass through unchanged. Every notebook that decides a paper claim decides it here."""
    return stats.adjust_family(rows, family_size=len(claim_specs()))


def claims(evals: Sequence[Evaluation], size_transfers: bool = True) -> list[dict[str, Any]]:
    """One row per claim whose runs exist: the paper's number, the measured paired difference
    (b - a, per seed and across seeds), the across-seed interval and the verdict, Holm-adjusted across the
    claims (:func:`paper_family`). A seed with one of the two models but not the other is named in
    ``dropped_seeds``. ``size_transfers``: read the interval against the paper's effect size (the paper's
    model and benchmark; False on a stand-in)."""
    base = sorted((r for r in evals if r.role == "base"), key=lambda r: r.created, reverse=True)
    trained: dict[tuple, Evaluation] = {}
    for r in sorted(evals, key=lambda r: r.created):  # a later card of the same model replaces an earlier one
        if r.role != "base" and r.seed is not None:
            trained[(r.arm, r.stage or FIRST_STAGE, r.seed)] = r
    rows = []
    for spec in claim_specs():
        pairs = []
        for seed in sorted(s for (arm, stage, s) in trained if (arm, stage) == spec.b):
            a = (next((r for r in base if r.seed == seed), base[0] if base else None) if spec.a is None
                 else trained.get((*spec.a, seed)))
            if a is not None:
                pairs.append((seed, a, trained[(*spec.b, seed)]))
        seen = {s for (arm, stage, s) in trained if (arm, stage) in (spec.a, spec.b)}
        dropped = sorted(seen - {seed for seed, _, _ in pairs})
        row = claim_row(spec, pairs, size_transfers, dropped)
        if row is not None:  # nothing measured to decide it: the claim is left out, not left blank
            rows.append(row)
    return paper_family(rows)


def _paper_ref(run: Evaluation, level: int | None) -> paper.Fact | None:
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


def absolute_table(evals: Sequence[Evaluation]) -> list[dict[str, Any]]:
    """Per run (all problems, then each level): accuracy with its 95% interval (``Evaluation.interval``)
    beside the paper's number (Table 6, Sec. 4.4, Fig. 7) where it prints one. Plain rows, no verdict."""
    rows = []
    for run in sorted(evals, key=lambda r: (r.role != "base", r.arm or "", r.stage or "", r.seed or 0)):
        for level in [None, *run.levels]:
            ref = _paper_ref(run, level)
            rows.append({"run": run.name, "role": run.role, "arm": run.arm, "stage": run.stage, "seed": run.seed,
                         "subset": "all" if level is None else f"level {level}",
                         **run.interval(None if level is None else [level]),
                         "paper": ref.value if ref else None, "paper_source": ref.source if ref else ""})
    return rows


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
    """Write ``verdicts.json`` (the rows of :func:`claims`, or ``rows`` when given; the paper's claims
    Holm-adjusted as one family), ``report.md`` and ``report.html``."""
    evals = load_evals(runs_dir, series)
    rows = paper_family(claims(evals) if rows is None else rows)
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    paths = {"verdicts": out / "verdicts.json", "md": out / "report.md", "html": out / "report.html"}
    paths["verdicts"].write_text(json.dumps(_finite(rows), indent=2) + "\n")
    shown = [{**r, "interval": f"{interval_points(r['interval'])} points", "seeds the claimed way": f"{r['seeds_agree']} of {r['n_seeds']}",
              "p": f"{r['p_value']:.2g}", "p (Holm)": f"{r['p_adjusted']:.2g}" if r["family"] == "paper claim"
              else "exploratory", "MDE": f"{as_points(r['mde'])} points",
              "dropped": ", ".join(map(str, r["dropped_seeds"]))} for r in rows]
    left_out = "".join(f"\n- {s}" for s in evals.skipped)
    cells = [
        f"# Replication report\n\nSeries `{evals.series}`: {len(evals)} evaluation(s) under `{runs_dir}`."
        + (f"\n\nLeft out:{left_out}" if left_out else ""),
        "## Verdicts\n\n" + stats.VERDICT_RULE + " " + stats.CONDITIONAL + " MDE: the smallest true difference "
        "the seeds and spread used find 80% of the time (two-sided 0.05).\n\n"
        + (_md_table(shown, ["claim", "paper", "measured", "interval", "seeds the claimed way", "p", "p (Holm)", "MDE",
                             "size", "dropped", "verdict", "reason"]) if rows
           else "No claim has the runs it needs yet.")
        + "".join(f"\n\n*{r['claim']}*: {r['note']}" for r in rows if r["note"]),
        "## Accuracy beside the paper (no verdict)\n\n"
        + _md_table(absolute_table(evals), ["run", "seed", "subset", "n", "accuracy", "ci_low", "ci_high",
                                            "paper", "paper_source"]),
        "## What the paper gets wrong\n\n"
        + _md_table(paper.errata(), ["topic", "kind", "paper says", "its numbers give", "note"]),
    ]
    # nbformat/nbconvert are heavy: imported only when a report is exported
    import nbformat
    from nbconvert import HTMLExporter, MarkdownExporter

    nb = nbformat.v4.new_notebook()
    nb.cells = [nbformat.v4.new_markdown_cell(text) for text in cells]
    for ext, exporter in (("md", MarkdownExporter()), ("html", HTMLExporter())):
        paths[ext].write_text(exporter.from_notebook_node(nb)[0])
    return paths


def seeds_needed(sd: float, effect: float, max_seeds: int = 50, min_seeds: int = stats.MIN_SEEDS,
                 problem_se: float = 0.0, family: str = "exploratory") -> int | None:
    """The fewest seeds whose minimum detectable effect is at most ``effect``: the whole verdict rule's
    (:func:`supersmall.stats.minimum_detectable_effect`, 80% power, two-sided 0.05, for a paper claim at Holm's
    worst step over the paper's claims), for per-seed differences spread by ``sd`` (a pilot's) and a
    problem-level standard error ``problem_se`` that no number of seeds removes. ``min_seeds``: the fewest
    the rule decides on. None when even ``max_seeds`` cannot (or there is no spread to plan with)."""
    if not (effect > 0 and math.isfinite(effect)):
        return None
    size = stats.PAPER_FAMILY_SIZE if family == "paper claim" else 1
    return next((n for n in range(2, max_seeds + 1)
                 if stats.minimum_detectable_effect(n, sd, min_seeds=min_seeds, problem_se=problem_se,
                                                    family_size=size) <= effect), None)
