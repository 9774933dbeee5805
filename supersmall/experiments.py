"""The course's experiments: named training conditions, run for several seeds (both cores busy), compared
on the same problems with paired evidence, and the measured figures written to ``claims.json``.

    experiments.run("tiny", ["zerogrpo", "eq6-std"], runs_dir="runs/nb")            # trains what is missing
    row = experiments.compare("tiny", "eq6-std", "zerogrpo", "runs/nb", claim="eq. 7 changes accuracy")
    experiments.record("runs/nb", "length_penalty.difference", row)                  # -> runs/nb/claims.json

A condition is a set of profile overrides (:data:`CONDITIONS`); its runs live in
``<runs_dir>/shared/<condition>/seed<s>`` so every notebook that needs the ZeroGRPO baseline reuses the
same runs (a complete run of the same config and code is never trained twice).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from supersmall import paper, report
from supersmall.config import Profile, load_profile
from supersmall.evaluate import run_eval
from supersmall.runcard import code_version, read_metrics
from supersmall.train import train_many

# Every condition differs from "zerogrpo" (the paper's ZeroGRPO: eq. 6 + 7 reward, std-scaled group
# advantages, TRL's default per-sequence aggregation, no KL) in the keys it names.
CONDITIONS: dict[str, dict[str, Any]] = {
    "zerogrpo": {},
    "eq6-std": {"reward.name": "correctness"},  # no eq. 7 length penalty
    "eq6-mean": {"reward.name": "correctness", "train.scale_rewards": "none"},  # advantages r - mean, unscaled
    "eq4-mean": {"reward.name": "bipolar", "train.scale_rewards": "none"},  # +-1 reward, unscaled
    "zerogrpo-mean": {"train.scale_rewards": "none"},
    "dapo": {"train.loss_type": "dapo"},  # global token mean
    "dr_grpo": {"train.loss_type": "dr_grpo"},  # token sum / (G x L_max)
    "sequence": {"train.loss_type": "sequence", "train.backend": "minimal"},  # eq. 5 as printed
    "kl-nopenalty": {"train.arm": "kl-nopenalty"},  # KL loss, beta = train.beta_kl_loss
    "kl-penalty": {"train.arm": "kl-penalty"},  # KL in the reward, beta = train.beta_kl_reward
    "kl-loss-beta1": {"train.arm": "kl-nopenalty", "train.beta_kl_loss": 1.0},
    # Table 3 as written: the KL arms are standard GRPO with the bipolar reward (paper.arm_settings(..., "paper"))
    "kl-nopenalty-paper": {"train.arm": "kl-nopenalty", "reward.name": "bipolar"},
    "kl-penalty-paper": {"train.arm": "kl-penalty", "reward.name": "bipolar"},
}


def run_dir(runs_dir: str | Path, condition: str, seed: int) -> Path:
    return Path(runs_dir) / "shared" / condition / f"seed{seed}"


def _profile(profile: Profile | str) -> Profile:
    return load_profile(profile)


def run(profile: Profile | str, conditions: list[str], runs_dir: str | Path, seeds: list[int] | None = None,
        workers: int = 2, **overrides: Any) -> dict[str, dict[int, Path]]:
    """Train every (condition, seed) that is not complete yet, ``workers`` at a time, for
    ``notebooks.steps`` steps; returns ``{condition: {seed: run folder}}``. ``overrides`` apply to all."""
    p = _profile(profile)
    seeds = list(seeds or p.notebooks.seeds)
    unknown = [c for c in conditions if c not in CONDITIONS]
    if unknown:
        raise ValueError(f"unknown condition(s) {unknown}; known: {', '.join(CONDITIONS)}")
    jobs = [dict(profile=p, seed=s,
                 steps=p.notebooks.steps, out_dir=str(run_dir(runs_dir, c, s)),
                 **{**CONDITIONS[c], **overrides})
            for c in conditions for s in seeds]
    train_many(jobs, workers=workers, desc=f"{', '.join(conditions)} x {len(seeds)} seeds")
    return {c: {s: run_dir(runs_dir, c, s) for s in seeds} for c in conditions}


def base_eval(profile: Profile | str, runs_dir: str | Path) -> Path:
    """The base model, evaluated once for the whole series (``<runs_dir>/shared/base/eval``)."""
    p = _profile(profile)
    out = Path(runs_dir) / "shared" / "base" / "eval"
    run_eval(p.model.name_or_path, p, out, meta={"role": "base"}, progress=False)
    return out


def compare(profile: Profile | str, a: str, b: str, runs_dir: str | Path, claim: str, direction: int = +1,
            seeds: list[int] | None = None, levels: list[int] | None = None, paper_text: str = "") -> dict[str, Any]:
    """Paired evidence that condition ``b`` beats ``a`` (``direction=-1``: is worse): per seed on the same
    held-out problems, then across seeds (:func:`supersmall.report.paired`). ``a="base"`` pairs every seed
    of ``b`` with the one shared base evaluation."""
    p = _profile(profile)
    seeds = list(seeds or p.notebooks.seeds)

    def final(condition: str, seed: int):
        if condition == "base":
            return report.load_eval(base_eval(p, runs_dir))
        return report.load_eval(run_dir(runs_dir, condition, seed) / "eval" / "final")

    pairs = [(s, final(a, s), final(b, s)) for s in seeds]
    row = report.paired(claim, pairs, direction, paper_text, levels)
    if row is None:
        raise ValueError(f"{a} and {b} share no evaluated problems under {runs_dir}")
    return row


def metric(runs: dict[int, Path], key: str, last: int = 5) -> list[float]:
    """Per seed, the mean of a training metric over the last ``last`` logged steps (``metrics.jsonl``)."""
    out = []
    for folder in runs.values():
        vals = [m[key] for m in read_metrics(folder)[-last:] if m.get(key) is not None]
        out.append(sum(vals) / len(vals) if vals else float("nan"))
    return out


def record(runs_dir: str | Path, key: str, value: Any) -> Path:
    """Add one measured figure to ``<runs_dir>/claims.json`` (a verdict row, a number or a dict), with the
    code version; the README's figures are checked against this file."""
    path = Path(runs_dir) / "claims.json"
    data = json.loads(path.read_text()) if path.is_file() else {}
    data[key] = {"value": value, "code_version": code_version()}
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(data, indent=2, default=str) + "\n")
    return path


def curriculum_dir(runs_dir: str | Path, schedule: str, seed: int) -> Path:
    return Path(runs_dir) / "shared" / f"curriculum-{schedule}" / f"seed{seed}"


def series_claims(profile: Profile | str, runs_dir: str | Path) -> list[dict[str, Any]]:
    """The paper's claims, decided on the notebook series' own runs (notebooks 03-05): every claim whose
    runs exist, with per-seed paired evidence and the across-seed interval (the rows of
    :func:`supersmall.report.claims`, built from the shared conditions and the staged curriculum runs)."""
    p = _profile(profile)
    seeds = list(p.notebooks.seeds)
    rows: list[dict[str, Any]] = []
    specs = [("ZeroGRPO improves the base model", "base", "zerogrpo", "table6.base", "table6.no-kl"),
             ("no-kl beats kl-nopenalty", "kl-nopenalty", "zerogrpo", "table6.kl-nopenalty", "table6.no-kl"),
             ("no-kl beats kl-penalty", "kl-penalty", "zerogrpo", "table6.kl-penalty", "table6.no-kl")]
    for claim, a, b, pa, pb in specs:
        if all((run_dir(runs_dir, c, s) / "eval" / "final").is_dir() for c in {a, b} - {"base"} for s in seeds):
            rows.append(compare(p, a, b, runs_dir, claim, +1, seeds, paper_text=f"{report.paper_pct(pa)} -> {report.paper_pct(pb)} "
                                f"({paper.fact(pb).source})"))
    stage_claims = [("a level-4 stage raises accuracy", "level1-3", "level4", +1, None, "curriculum.level4"),
                    ("level-5 training lowers levels 1-2 (forgetting)", "level4", "level5", -1,
                     paper.value("curriculum.forgetting.levels"), "curriculum.forgetting")]
    for claim, a, b, direction, levels, key in stage_claims:
        folders = [(s, curriculum_dir(runs_dir, "staged", s) / "eval") for s in seeds]
        if all((f / a).is_dir() and (f / b).is_dir() for _, f in folders):
            pairs = [(s, report.load_eval(f / a), report.load_eval(f / b)) for s, f in folders]
            row = report.paired(claim, pairs, direction, f"{paper.value(key)} ({paper.fact(key).source})", levels)
            if row is not None:
                rows.append(row)
    return rows
