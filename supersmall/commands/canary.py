"""``supersmall canary``: a few steps of every planned run and a few evaluation problems, measured, before the
long run; the whole replication projected; ``DIR/canary.json`` and one go / no-go sentence
(see :mod:`supersmall.fullscale.canary`)."""

from __future__ import annotations


def register(sub) -> None:
    from supersmall.commands import add_set_argument

    p = sub.add_parser("canary", help="measure a few steps of every planned run and a few evaluations; go / no-go")
    p.add_argument("--profile", default="a6000x4", help="a6000x4 | single-gpu | rehearsal (CPU) | YAML")
    p.add_argument("--steps", type=int, default=2, help="steps per run (>= 2: the first carries warm-up)")
    p.add_argument("--eval-problems", type=int, default=4, help="evaluation problems of the base model")
    p.add_argument("--arms", default=None, help="comma-separated arms (default: replicate's)")
    p.add_argument("--worst-case", action="store_true",
                   help="every rollout and evaluation sample runs to its cap (min_tokens): worst-case time and memory")
    add_set_argument(p)
    p.add_argument("--out", required=True, help="output folder (canary.json, the short runs)")
    p.set_defaults(handler=run)


def run(args) -> int:
    from supersmall.commands import parse_sets
    from supersmall.errors import UserError
    from supersmall.fullscale.canary import canary

    if args.eval_problems < 1:
        raise UserError(f"--eval-problems must be >= 1, got {args.eval_problems}")
    arms = [a.strip() for a in args.arms.split(",") if a.strip()] if args.arms else None
    result = canary(args.profile, args.out, steps=args.steps, eval_problems=args.eval_problems, arms=arms,
                    overrides=parse_sets(args.set), worst_case=args.worst_case)
    for r in result["runs"]:
        per_step = "n/a" if r["seconds_per_step"] is None else f"{r['seconds_per_step']:.1f} s/step"
        peak = "n/a" if r["peak_memory_gb"] is None else f"{r['peak_memory_gb']:.1f} GB"
        print(f"{r['arm']:<13} {r['stage']:<9} {per_step:>12}  peak {peak}"
              + (f" (model {r['predicted_memory_gb']:.1f})" if r["predicted_memory_gb"] is not None else " (RSS, CPU)"))
    print(result["verdict"])
    return 0 if result["ok"] else 1
