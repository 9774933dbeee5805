"""The course's experiments: named training conditions, run for several seeds (both cores busy), compared
on the same problems with paired evidence, and the measured figures written to ``claims.json``.

    experiments.run("tiny", ["zerogrpo", "eq6-std"], runs_dir="runs/nb")            # trains what is missing
    row = experiments.paired("tiny", "eq6-std", "zerogrpo", "runs/nb", claim="eq. 7 changes accuracy")
    experiments.record("runs/nb", "length_penalty.difference", row)                  # -> runs/nb/claims.json

A condition is a set of profile overrides (:data:`CONDITIONS`); its runs live in
``<runs_dir>/shared/<condition>/seed<s>`` so every notebook that needs the ZeroGRPO baseline reuses the
same runs (a complete run of the same config and code is never trained twice). Their evaluations are read
with :func:`evaluation` (the folder layout is written down once, in :func:`eval_dir`).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from supersmall import paper, report
from supersmall.config import Profile, load_profile
from supersmall.evaluate import run_eval
from supersmall.evaluation import RECORDS, Evaluation
from supersmall.pool import train_many
from supersmall.runcard import code_version, read_metrics


def _tight(p: Profile) -> int:
    """A third of the profile's completion limit (at least 4 tokens): eq. 7's stress-test limit."""
    return max(4, p.train.max_completion_length // 3)


# A value may be a function of the profile (resolved by :func:`overrides`).
# Every condition differs from "zerogrpo" (the paper's ZeroGRPO: eq. 6 + 7 reward, std-scaled group
# advantages (scale_rewards "group"), the profile's loss_type, no KL) in the keys it names.
CONDITIONS: dict[str, dict[str, Any]] = {
    "zerogrpo": {},
    "eq6-std": {"reward.name": "correctness"},  # no eq. 7 length penalty
    # eq. 7's stress test: a completion limit a third of the profile's (choice), where answers reach 0.95 L_max so
    # eq. 7 acts, and the arms are evaluated at that same limit (a model trained to fit 16 tokens is judged on 16).
    # With whole-token lengths, len > 0.95 x 16 = 15.2 means len = 16 = L_max: at this limit eq. 7 is a
    # truncation penalty (it hits exactly the answers cut at the limit), not a graded length cost.
    "zerogrpo-tight": {"train.max_completion_length": _tight, "eval.max_new_tokens": _tight},
    "eq6-tight": {"reward.name": "correctness", "train.max_completion_length": _tight, "eval.max_new_tokens": _tight},
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
    # kl-penalty as standard GRPO (eq. 2): its KL loss (beta_kl_loss) stays beside the reward penalty
    "kl-penalty-paper": {"train.arm": "kl-penalty", "reward.name": "bipolar", "train.kl_penalty_loss": True},
    # Off-policy updates and the modern variants (notebook 05, section 6). The readable loop (backend minimal, equal
    # to TRL's loss on one batch: tests/test_grpo.py) logs every update, the reused batches' clip included. mu = 4
    # updates per sampled batch (choice, measured on tiny: the clip acts on about a tenth of the tokens; TRL counts
    # updates, so 12 steps sample 3 batches): loss -min(r A, clip(r, 1-eps, 1+eps) A), r = pi / pi_old per token
    "offpolicy": {"train.num_iterations": 4, "train.backend": "minimal"},
    # its equal-samples control: on-policy, one update per batch, on as many sampled batches as offpolicy draws
    # (steps / mu), so "reuse each batch mu times" is compared at the same number of samples, not only of updates
    "offpolicy-samples": {"train.backend": "minimal", "steps": lambda p: max(1, p.notebooks.steps // 4)},
    # clip(r, 1-eps_low, 1+eps_high) with eps_high above eps_low (DAPO's clip-higher; the value: paper.yaml)
    "clip-higher": {"train.num_iterations": 4, "train.backend": "minimal",
                    "train.clip_eps_high": lambda p: paper.value("variants.dapo.clip_eps_high")},
    # GSPO: s_i = exp(mean_t log(pi / pi_old)) per sequence, clipped to [1-eps, 1+eps_high] far tighter than a token's
    # ratio (a mean of log-ratios moves far less than one token's ratio; the values: paper.yaml)
    "gspo": {"train.num_iterations": 4, "train.backend": "minimal", "train.importance_sampling_level": "sequence",
             "train.clip_eps": lambda p: paper.value("variants.gspo.clip_eps"),
             "train.clip_eps_high": lambda p: paper.value("variants.gspo.clip_eps_high")},
    # CISPO: -sg(min(r, eps_max)) A log pi, summed over the batch's tokens (TRL's cispo aggregates as dapo);
    # eps_max is train.clip_eps_high (as TRL's epsilon_high; the value: paper.yaml)
    "cispo": {"train.num_iterations": 4, "train.backend": "minimal", "train.loss_type": "cispo",
              "train.clip_eps_high": lambda p: paper.value("variants.cispo.eps_max")},
}


# The paper's arms (report.claim_specs) as the series' conditions
ARM_CONDITIONS = {"no-kl": "zerogrpo", "kl-nopenalty": "kl-nopenalty", "kl-penalty": "kl-penalty"}


def condition_overrides(profile: Profile | str, condition: str) -> dict[str, Any]:
    """The profile overrides of ``condition`` (:data:`CONDITIONS`) on ``profile``, functions of it resolved."""
    p = _profile(profile)
    return {k: v(p) if callable(v) else v for k, v in CONDITIONS[condition].items()}


def run_dir(runs_dir: str | Path, condition: str, seed: int) -> Path:
    return Path(runs_dir) / "shared" / condition / f"seed{seed}"


def curriculum_dir(runs_dir: str | Path, schedule: str, seed: int) -> Path:
    return run_dir(runs_dir, f"curriculum-{schedule}", seed)


def eval_dir(runs_dir: str | Path, condition: str, seed: int | None = None, stage: str = "final") -> Path:
    """Where the series keeps an evaluation: the shared base model's (``condition="base"``), a condition's
    final model, or a curriculum stage (``condition="curriculum-staged"``, ``stage="level4"``)."""
    if condition == "base":
        return Path(runs_dir) / "shared" / "base" / "eval"
    return run_dir(runs_dir, condition, seed) / "eval" / stage


def evaluation(runs_dir: str | Path, condition: str, seed: int | None = None, stage: str = "final") -> Evaluation:
    """One evaluation of the series (:func:`eval_dir`) as an :class:`~supersmall.evaluation.Evaluation`."""
    return Evaluation.load(eval_dir(runs_dir, condition, seed, stage))


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
    jobs = []
    for c in conditions:
        over = {**condition_overrides(p, c), **overrides}
        steps = over.pop("steps", p.notebooks.steps)  # a condition may train for fewer steps (an equal-samples control)
        jobs += [dict(profile=p, seed=s, steps=steps, out_dir=str(run_dir(runs_dir, c, s)), **over) for s in seeds]
    train_many(jobs, workers=workers, desc=f"{', '.join(conditions)} x {len(seeds)} seeds")
    return {c: {s: run_dir(runs_dir, c, s) for s in seeds} for c in conditions}


def base_eval(profile: Profile | str, runs_dir: str | Path) -> Path:
    """The base model, evaluated once for the whole series (``<runs_dir>/shared/base/eval``)."""
    p = _profile(profile)
    out = eval_dir(runs_dir, "base")
    run_eval(p.model.name_or_path, p, out, meta={"role": "base"}, progress=False)
    return out


def paired(profile: Profile | str, a: str, b: str, runs_dir: str | Path, claim: str, direction: int = +1,
           seeds: list[int] | None = None, levels: list[int] | None = None, paper_text: str = "",
           family: str = "exploratory") -> dict[str, Any]:
    """Paired evidence that condition ``b`` beats ``a`` (``direction=-1``: is worse): per seed on the same
    held-out problems, then across seeds: the row of :func:`supersmall.report.paired`, for conditions by
    name. ``a="base"`` pairs every seed of ``b`` with the one shared base evaluation."""
    p = _profile(profile)
    seeds = list(seeds or p.notebooks.seeds)
    if "base" in (a, b):
        base_eval(p, runs_dir)  # evaluated once for the series, on first use
    pairs = [(s, evaluation(runs_dir, a, s), evaluation(runs_dir, b, s)) for s in seeds]
    row = report.paired(claim, pairs, direction, paper_text, levels, family=family)
    if row is None:
        raise ValueError(f"{a} and {b} share no evaluated problems under {runs_dir}")
    return row


def final_metric(runs: dict[int, Path], key: str, last: int = 5) -> list[float]:
    """Per seed, a training metric at the end of training: its mean over the last ``last`` logged steps
    (``metrics.jsonl``)."""
    out = []
    for folder in runs.values():
        vals = [m[key] for m in read_metrics(folder)[-last:] if m.get(key) is not None]
        out.append(sum(vals) / len(vals) if vals else float("nan"))
    return out


def phase_means(folder: str | Path, keys: list[str], fraction: float = 0.2) -> dict[str, dict[str, float]]:
    """A run's training metrics averaged over its first and its last ``fraction`` of logged steps
    (``metrics.jsonl``; the health panel's alarms read the last fifth): ``{"first": {key: mean}, "last": ...}``,
    NaN for a metric the run never logged."""
    history = read_metrics(folder)
    k = max(1, int(len(history) * fraction))

    def mean(rows: list[dict[str, Any]], key: str) -> float:
        vals = [r[key] for r in rows if r.get(key) is not None]
        return sum(vals) / len(vals) if vals else float("nan")

    return {part: {key: mean(rows, key) for key in keys} for part, rows in (("first", history[:k]), ("last", history[-k:]))}


def machine() -> str:
    """What makes a run's arithmetic this machine's: the CPU model, the kernels and threads PyTorch uses (and the
    environment that changes them, as ``../shared/tools/other-cpu`` does). Two records with the same machine and
    code version must agree bit for bit (:func:`supersmall.tools.readme.exact_mismatches`)."""
    import os
    import platform

    import torch

    cpu = next((line.split(":", 1)[1].strip() for line in Path("/proc/cpuinfo").read_text().splitlines()
                if line.startswith("model name")), platform.processor()) if Path("/proc/cpuinfo").is_file() else \
        platform.processor()
    env = ",".join(f"{k}={os.environ[k]}" for k in ("ATEN_CPU_CAPABILITY", "MKL_ENABLE_INSTRUCTIONS", "ONEDNN_MAX_CPU_ISA",
                                                      "OMP_NUM_THREADS", "MKL_NUM_THREADS") if k in os.environ)
    return (f"{platform.machine()} {cpu}; torch {torch.__version__} {torch.backends.cpu.get_cpu_capability()} "
            f"threads {torch.get_num_threads()}" + (f"; {env}" if env else ""))


def record(runs_dir: str | Path, key: str, value: Any) -> Path:
    """Add one measured figure to ``<runs_dir>/claims.json`` (a verdict row, a number or a dict), with the
    code version and the :func:`machine`; the README's figures are checked against this file."""
    path = Path(runs_dir) / "claims.json"
    data = json.loads(path.read_text()) if path.is_file() else {}
    data[key] = {"value": _portable(value, Path(runs_dir)), "code_version": code_version(), "machine": machine()}
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(data, indent=2, default=str) + "\n")
    return path


def _portable(value: Any, runs_dir: Path) -> Any:
    """``value`` with the verdict rows' ``run_cards`` inside ``runs_dir`` written relative to it, so that a
    claims file names the same cards on every machine and in every checkout (a copied series still finds them)."""
    if isinstance(value, list):
        return [_portable(v, runs_dir) for v in value]
    if not isinstance(value, dict):
        return value
    base = runs_dir.resolve()

    def card(path: str) -> str:
        full = Path(path).resolve()
        return full.relative_to(base).as_posix() if full.is_relative_to(base) else str(path)

    return {k: [card(c) for c in v] if k == "run_cards" else _portable(v, runs_dir) for k, v in value.items()}


def _claim_dir(runs_dir: str | Path, spec: report.Claim, side: tuple[str, str] | None, seed: int) -> Path:
    """The series' evaluation of one side of a claim: the base, an arm's condition, or a staged run's stage."""
    if side is None:
        return eval_dir(runs_dir, "base")
    if spec.b[1] != report.FIRST_STAGE:  # a curriculum claim: two stages of one staged run
        return eval_dir(runs_dir, "curriculum-staged", seed, side[1])
    return eval_dir(runs_dir, ARM_CONDITIONS[side[0]], seed)


def series_claims(profile: Profile | str, runs_dir: str | Path) -> list[dict[str, Any]]:
    """The paper's claims (:func:`supersmall.report.claim_specs`, the same ones the replication report
    decides), on the notebook series' own runs: an arm is its condition (:data:`ARM_CONDITIONS`), and a
    curriculum claim pairs two stages of one staged run. A claim is decided on the seeds that have both
    evaluations (the others are named in the row's ``dropped_seeds``), and the claims are Holm-adjusted as
    one family (:func:`supersmall.report.paper_family`); nothing is trained or evaluated here. The size of
    an effect is read against the paper's only when the profile trains the paper's model."""
    p = _profile(profile)
    size_transfers = p.model.name_or_path == paper.value("model.base")
    rows: list[dict[str, Any]] = []
    for spec in report.claim_specs():
        folders = [(s, _claim_dir(runs_dir, spec, spec.a, s), _claim_dir(runs_dir, spec, spec.b, s))
                   for s in p.notebooks.claim_seeds]
        have = [(s, fa, fb) for s, fa, fb in folders if (fa / RECORDS).is_file() and (fb / RECORDS).is_file()]
        if have:
            row = report.claim_row(spec, [(s, Evaluation.load(fa), Evaluation.load(fb)) for s, fa, fb in have],
                                   size_transfers, [s for s, _, _ in folders if s not in {h[0] for h in have}])
            if row is not None:
                rows.append(row)
    return report.paper_family(rows)


def run_pilot_and_plan(profile: Profile | str, runs_dir: str | Path, n_seeds: int | None = None,
                       pilot: str = "zerogrpo", family: str = "exploratory") -> dict[str, Any]:
    """Train the pilot (what is missing of it), then plan: the smallest difference in held-out accuracy an
    experiment can detect (80% power), from the spread of the pilot condition's seeds
    (:func:`supersmall.stats.planned_mde`). The pilot is ``pilot`` on the profile's ``notebooks.seeds``
    (trained here with :func:`run` if missing; ZeroGRPO is the series' shared baseline, so it costs nothing later). ``n_seeds``: the experiment's seeds (default: as many as the
    pilot's). Returns the plan with the pilot's per-seed accuracies and a one-line ``sentence``."""
    from supersmall import stats

    p = _profile(profile)
    runs = run(p, [pilot], runs_dir)[pilot]
    scores = {s: evaluation(runs_dir, pilot, s).accuracy() for s in runs}
    n = n_seeds or len(scores)
    n_problems = len(evaluation(runs_dir, pilot, next(iter(runs))).records)
    out = {**stats.planned_mde(list(scores.values()), n, n_problems, family), "pilot": pilot, "pilot_scores": scores}
    mde = out["mde"]
    out["sentence"] = (
        f"Planned from the pilot ({pilot} on {len(scores)} seeds: held-out accuracy sd {100 * out['sd']:.1f} points "
        f"between seeds): with {n} paired seeds this experiment detects a true difference of "
        + (f"{100 * mde:.1f} points or more 80% of the time; a smaller true effect will most likely read "
           "'inconclusive'." if mde != float("inf") else
           f"no size at all: {n} seeds are fewer than the verdict rule needs for a {family}."))
    return out
