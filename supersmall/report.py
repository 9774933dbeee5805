"""The replication report: the paper's numbers as data, and a verdict per claim from measured run cards.

Verdicts are ``reproduced``, ``not reproduced`` or ``not testable at this scale``, each with the
interval that decides it. On the tiny profile only the *direction* of a claim can be tested (the
task is not MATH-500); absolute numbers need the full-scale runs (``a6000x4``).
"""

from __future__ import annotations

import json
from collections import defaultdict
from pathlib import Path
from typing import Any

from supersmall.evaluate import wilson_interval

# SuperSmall-R1 (Lee & Choi 2025), MATH-500 accuracy (Table 6, Sec. 4.4), runtimes on 4x A6000 (Table 5)
PAPER = {
    "table6": {"base": 0.074, "kl-penalty": 0.134, "kl-nopenalty": 0.144, "no-kl": 0.350},
    "curriculum": {"level1-3": 0.350, "level4": 0.466, "level5": 0.442, "level5.5": 0.444},
    "table5_minutes": {"kl-penalty": 58.4, "kl-nopenalty": 58.0, "no-kl": 90.5, "level4-no-kl": 130.2,
                       "level5-no-kl": 142.6, "level6-no-kl": 138.0},
    "fig7_no_kl_per_level": {"1": 0.791, "2": 0.589, "3": 0.410},
    "fig8_no_kl_per_subject": {"Prealgebra": 0.524, "Algebra": 0.476, "Number Theory": 0.419,
                               "Counting & Probability": 0.342, "Geometry": 0.317},
    "speedup_over_base": 3.7,
}
REPRODUCED, NOT_REPRODUCED, NOT_TESTABLE = "reproduced", "not reproduced", "not testable at this scale"


def load_cards(runs_dir: str | Path) -> list[dict[str, Any]]:
    """Every training run card under ``runs_dir``, each with its folder relative to ``runs_dir``."""
    cards = []
    root = Path(runs_dir)
    for path in sorted(root.rglob("run_card.json")):
        card = json.loads(path.read_text())
        if card.get("kind") == "train" and card.get("status") == "complete":
            card["folder"] = str(path.parent.relative_to(root))
            cards.append(card)
    return cards


def _pooled(cards: list[dict[str, Any]], key: str = "final_accuracy") -> dict[str, float] | None:
    """Mean accuracy over runs, with a Wilson interval on the pooled problem count."""
    vals = [(c["metrics"][key], c["config"]["eval"]["problems_per_level"] * 5) for c in cards if key in c["metrics"]]
    if not vals:
        return None
    n = sum(v[1] for v in vals)
    k = round(sum(a * m for a, m in vals))
    lo, hi = wilson_interval(k, n)
    return {"accuracy": k / n, "ci_low": lo, "ci_high": hi, "runs": len(vals)}


def _by(cards, predicate):
    return [c for c in cards if predicate(c)]


def verdicts(cards: list[dict[str, Any]], scale: str = "tiny") -> list[dict[str, Any]]:
    """One row per paper claim: claim, paper, measured (with interval), verdict, and why."""
    rows: list[dict[str, Any]] = []

    def add(claim, paper, measured, verdict, why):
        rows.append({"claim": claim, "paper": paper, "measured": measured, "verdict": verdict, "why": why})

    no_kl = _by(cards, lambda c: c.get("arm") == "no-kl" and not c.get("stages"))
    base = _pooled(no_kl, "base_accuracy")
    final = _pooled(no_kl)
    if base and final:
        up = final["ci_low"] > base["ci_high"]
        add("ZeroGRPO improves the base model (Table 6: 7.4% -> 35.0%)", "7.4% -> 35.0%",
            f"{base['accuracy']:.1%} [{base['ci_low']:.1%}, {base['ci_high']:.1%}] -> {final['accuracy']:.1%} "
            f"[{final['ci_low']:.1%}, {final['ci_high']:.1%}] ({final['runs']} runs)",
            REPRODUCED if up else NOT_REPRODUCED, "the 95% intervals do not overlap" if up else "the intervals overlap")
        ratio = final["accuracy"] / max(base["accuracy"], 1e-9)
        add("'up to 3.7x' over the base (project page)", "3.7x", f"{ratio:.2f}x", NOT_TESTABLE,
            "a ratio depends on the base score, which depends on the task and the evaluation budget")
    arms = {arm: _pooled(_by(cards, lambda c, a=arm: c.get("arm") == a and not c.get("stages")
                             and "beta" not in c["folder"]))
            for arm in ("no-kl", "kl-nopenalty", "kl-penalty")}
    if all(arms.values()):
        best_kl = max(arms["kl-nopenalty"]["ci_high"], arms["kl-penalty"]["ci_high"])
        ok = arms["no-kl"]["ci_low"] > best_kl
        add("removing the KL term beats both KL arms (Table 6: 35.0% vs 14.4% / 13.4%)", "35.0 vs 14.4 / 13.4",
            ", ".join(f"{a} {v['accuracy']:.1%} [{v['ci_low']:.1%}, {v['ci_high']:.1%}]" for a, v in arms.items()),
            REPRODUCED if ok else NOT_REPRODUCED,
            "no-kl's interval lies above both KL arms" if ok else
            "the intervals overlap at the paper's default KL coefficients")
    staged = _by(cards, lambda c: c.get("config", {}).get("curriculum", {}).get("schedule") == "staged"
                 and c.get("stages") and c["metrics"].get("per_stage"))
    if staged:
        def at(card, name):
            return next((s for s in card["metrics"]["per_stage"] if s["stage"] == name), None)

        pairs = [(at(c, "level1-3"), at(c, "level4")) for c in staged]
        pairs = [p for p in pairs if p[0] and p[1]]
        if pairs:
            n = staged[0]["config"]["eval"]["problems_per_level"] * 5 * len(pairs)
            a = sum(p[0]["accuracy"] for p in pairs) / len(pairs)
            b = sum(p[1]["accuracy"] for p in pairs) / len(pairs)
            lo_a, hi_a = wilson_interval(round(a * n), n)
            lo_b, hi_b = wilson_interval(round(b * n), n)
            verdict = REPRODUCED if lo_b > hi_a else NOT_REPRODUCED
            add("a level-4 stage after level 1-3 raises accuracy (35.0% -> 46.6%)", "35.0% -> 46.6%",
                f"{a:.1%} [{lo_a:.1%}, {hi_a:.1%}] -> {b:.1%} [{lo_b:.1%}, {hi_b:.1%}]", verdict,
                "intervals do not overlap" if verdict == REPRODUCED else "no significant rise after the level-4 stage")
            easy = []
            for c in staged:
                first, last = at(c, "level1-3"), c["metrics"]["per_stage"][-1]
                if first:
                    easy.append((sum(first["per_level"][k] for k in ("1", "2")) / 2,
                                 sum(last["per_level"][k] for k in ("1", "2")) / 2))
            drop = sum(x - y for x, y in easy) / len(easy)
            add("training on the hardest level lowers levels 1-2 (forgetting)", "drop on L1-2",
                f"levels 1-2 drop by {100 * drop:.1f} points from after stage 1 to the end (mean of {len(easy)} runs)",
                REPRODUCED if all(x - y > 0.05 for x, y in easy) else NOT_REPRODUCED,
                "every run drops > 5 points" if all(x - y > 0.05 for x, y in easy) else "not every run drops > 5 points")
    add("MATH-500 accuracies (Table 6, Figs 7-8)", "35.0% (no-kl)", "-", NOT_TESTABLE if scale == "tiny" else "",
        "needs the full-scale runs on MATH-500 (a6000x4)")
    add("runtimes on 4x A6000 (Table 5)", "58-143 min", "-", NOT_TESTABLE if scale == "tiny" else "",
        "CPU miniature; compare `supersmall estimate` and the full-scale run cards")
    add("base 7.4% on MATH-500 vs DeepSeek's 80%+", "7.4%", "-", NOT_TESTABLE if scale == "tiny" else "",
        "the evaluation-settings sensitivity study (notebook 06) at full scale decides it")
    return rows


def per_level_table(cards: list[dict[str, Any]], arm: str = "no-kl") -> list[dict[str, Any]]:
    """Per-level accuracy of the plain ``arm`` runs (base -> final, Wilson 95%) beside the paper's Fig. 7.

    Levels are the tiny task's (operation families) on ``tiny`` and MATH-500's at full scale, so on
    ``tiny`` only the shape is comparable: gains per level, and which levels stay hard.
    """
    runs = _by(cards, lambda c: c.get("arm") == arm and not c.get("stages") and "beta" not in c.get("folder", "")
               and c["metrics"].get("per_level_final"))
    if not runs:
        return []
    n = runs[0]["config"]["eval"]["problems_per_level"] * len(runs)  # problems per level, pooled over runs
    rows = []
    for level in sorted(runs[0]["metrics"]["per_level_final"], key=int):
        row: dict[str, Any] = {"level": level, "paper no-kl (Fig. 7)": PAPER["fig7_no_kl_per_level"].get(level)}
        for when in ("base", "final"):
            acc = sum(c["metrics"][f"per_level_{when}"][level] for c in runs) / len(runs)
            lo, hi = wilson_interval(round(acc * n), n)
            row[f"measured {when}"] = f"{acc:.1%} [{lo:.1%}, {hi:.1%}]"
        rows.append(row)
    return rows


def runtime_table(cards: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Measured training time per run beside the paper's Table 5 (minutes)."""
    rows = []
    by_arm: dict[str, list[float]] = defaultdict(list)
    for c in cards:
        by_arm[c.get("arm", "?")].append(c["metrics"].get("train_seconds", 0.0))
    for arm, secs in sorted(by_arm.items()):
        rows.append({"arm": arm, "paper (min, 4x A6000)": PAPER["table5_minutes"].get(arm),
                     "measured (min, mean)": round(sum(secs) / len(secs) / 60, 2), "runs": len(secs)})
    return rows


def export(markdown_cells: list[str], out_dir: str | Path, name: str = "replication_report") -> dict[str, Path]:
    """Write the report as Markdown and HTML with nbconvert."""
    import nbformat
    from nbconvert import HTMLExporter, MarkdownExporter

    nb = nbformat.v4.new_notebook()
    nb.cells = [nbformat.v4.new_markdown_cell(text) for text in markdown_cells]
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    paths = {}
    for ext, exporter in (("md", MarkdownExporter()), ("html", HTMLExporter())):
        body, _ = exporter.from_notebook_node(nb)
        paths[ext] = out / f"{name}.{ext}"
        paths[ext].write_text(body)
    return paths
