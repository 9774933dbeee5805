"""``supersmall train``: one ZeroGRPO run (see :mod:`supersmall.train`)."""

from __future__ import annotations


def register(sub) -> None:
    p = sub.add_parser("train", help="train one GRPO/ZeroGRPO run and write a run card")
    p.add_argument("--profile", default="tiny", help="profile name or YAML path (default: tiny)")
    p.add_argument("--arm", default=None, help="no-kl | kl-nopenalty | kl-penalty (default: the profile's)")
    p.add_argument("--steps", type=int, default=None, help="optimizer steps (default: the profile's)")
    p.add_argument("--seed", type=int, default=None)
    p.add_argument("--backend", default=None, help="trl (GRPOTrainer) | minimal (the readable loop)")
    p.add_argument("--curriculum", default=None, help="staged | cumulative | shuffled")
    p.add_argument("--stages", default=None, help='curriculum stages, e.g. "1-3:20,4:20,5:20"')
    p.add_argument("--set", action="append", default=[], metavar="KEY=VALUE",
                   help="override a profile setting, e.g. --set train.learning_rate=1e-5 (repeatable)")
    p.add_argument("--no-resume", action="store_true", help="start over instead of resuming from the last checkpoint")
    p.add_argument("--out", required=True, help="output folder (run card, metrics.jsonl, model/)")
    p.set_defaults(handler=run)


def run(args) -> int:
    import yaml

    from supersmall.cli import UserError
    from supersmall.train import train

    overrides = {}
    for item in args.set:
        key, sep, value = item.partition("=")
        if not sep:
            raise UserError(f"--set {item!r} must be KEY=VALUE, e.g. --set train.steps=10")
        overrides[key.strip()] = yaml.safe_load(value)
    card = train(args.profile, arm=args.arm, steps=args.steps, seed=args.seed, backend=args.backend,
                 out_dir=args.out, curriculum=args.curriculum, stages=args.stages, resume=not args.no_resume,
                 **overrides)
    m = card["metrics"]
    if "final_accuracy" in m:
        print(f"accuracy {m['base_accuracy']:.3f} -> {m['final_accuracy']:.3f}, reasoning rate "
              f"{m['reasoning_rate_base']:.2f} -> {m['reasoning_rate_final']:.2f}, {m['train_seconds']:.0f} s "
              f"of training; run card: {args.out}/run_card.json")
    else:
        print(f"done in {m['train_seconds']:.0f} s; run card: {args.out}/run_card.json")
    return 0
