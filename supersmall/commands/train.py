"""``supersmall train``: one GRPO / ZeroGRPO run (see :mod:`supersmall.train`)."""

from __future__ import annotations

from pathlib import Path


def register(sub) -> None:
    from supersmall.commands import add_set_argument

    p = sub.add_parser("train", help="train one GRPO/ZeroGRPO run and write a run card")
    p.add_argument("--profile", default="tiny", help="profile name or YAML path (default: tiny)")
    p.add_argument("--arm", default=None, help="no-kl | kl-nopenalty | kl-penalty (default: the profile's)")
    p.add_argument("--steps", type=int, default=None, help="optimizer steps (default: the profile's)")
    p.add_argument("--seed", type=int, default=None)
    p.add_argument("--backend", default=None, help="trl (GRPOTrainer) | minimal (the readable loop in grpo.py)")
    p.add_argument("--curriculum", default=None, help="staged | cumulative | shuffled")
    p.add_argument("--stages", default=None, help='curriculum stages, e.g. "1-3:20,4:20,5:20"')
    p.add_argument("--model", default=None, help="start from this model folder (default: the profile's model)")
    add_set_argument(p)
    p.add_argument("--no-resume", action="store_true", help="start over instead of resuming from the last checkpoint")
    p.add_argument("--no-eval", action="store_true", help="do not evaluate the trained model")
    p.add_argument("--out", required=True, help="output folder (run card, metrics.jsonl, model/)")
    p.set_defaults(handler=run)


def run(args) -> int:
    from supersmall import real, tiny
    from supersmall.commands import parse_sets
    from supersmall.errors import UserError
    from supersmall.train import quiet, train

    if args.model is not None and not (Path(args.model) / "config.json").is_file() and args.model not in (*tiny.SHIPPED_NAMES, real.NAME):
        raise UserError(f"--model {args.model!r} is not a model folder (no config.json): pass a folder written by "
                        "`supersmall train` (its model/ subfolder)")
    quiet()  # the console as clean as the notebooks': the kit's progress bar and results only
    card = train(args.profile, arm=args.arm, steps=args.steps, seed=args.seed, backend=args.backend,
                 out_dir=args.out, curriculum=args.curriculum, stages=args.stages, model=args.model,
                 resume=not args.no_resume, evaluate_model=not args.no_eval, evaluate_base=not args.no_eval,
                 **parse_sets(args.set))
    if not card:  # a non-zero rank under torchrun: rank 0 reports
        return 0
    print(summary_line(card["metrics"]) + f"; run card: {args.out}/run_card.json")
    return 0


def summary_line(m: dict) -> str:
    """``done in 40 s; accuracy 18.6% -> 60.4%, gain +41.8 points [37.0, 46.6]`` from a train run card's
    metrics (the curriculum stages' accuracies when there are several)."""
    line = f"done in {m['train_seconds']:.0f} s"
    stages = {k.removeprefix("accuracy_"): v for k, v in m.items()
              if k.startswith("accuracy_") and k not in ("accuracy_base", "accuracy_final")}
    if stages:
        line += "; stages " + ", ".join(f"{k} {100 * v:.1f}%" for k, v in stages.items())
    if "gain" in m:
        lo, hi = m["gain_interval"]
        line += (f"; accuracy {100 * m['accuracy_base']:.1f}% -> {100 * m['accuracy_final']:.1f}%, gain "
                 f"{100 * m['gain']:+.1f} points [{100 * lo:+.1f}, {100 * hi:+.1f}]")
    elif "accuracy_final" in m:
        line += f"; accuracy final {100 * m['accuracy_final']:.1f}%"
    return line
