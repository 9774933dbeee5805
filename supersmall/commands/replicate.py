"""``supersmall replicate``: the paper's runs in order (Table 3's arms, then the curriculum stages) for every
seed, then the evaluation of the base and every model, then the report (see :func:`supersmall.fullscale.launch.replicate`).
``--dry-run`` works on CPU: it validates, prints the plan (with the commands for other hosts) and writes
``DIR/plan.json``; ``--shard i/n`` runs one host's share of the seeds (merge with ``supersmall report``)."""

from __future__ import annotations

import json


def register(sub) -> None:
    from supersmall.commands import add_set_argument

    p = sub.add_parser("replicate", help="run (or --dry-run) the paper's arms and curriculum stages, evaluate, report")
    p.add_argument("--profile", default="a6000x4", help="a6000x4 (4 GPUs) | rehearsal (the same path on CPU) | YAML")
    p.add_argument("--arms", default=None, help="comma-separated arms (Table 3; default: all three, less "
                                                 "kl-penalty under LoRA)")
    p.add_argument("--stages", default="level1-3,level4,level5", help="comma-separated stages (Sec. 4.4)")
    p.add_argument("--seeds", default=None, help="comma-separated seeds (default: the profile's notebooks.claim_seeds)")
    p.add_argument("--reading", default="isolated", help="arms: isolated (same reward, only KL differs) | paper")
    p.add_argument("--curriculum", default="staged", help="staged | cumulative (two readings of Sec. 4.4.1)")
    p.add_argument("--dry-run", action="store_true", help="validate and print the plan; run nothing")
    p.add_argument("--shard", default=None, metavar="I/N",
                   help="only shard I of N (every N-th seed from the I-th; the base evaluated on shard 0), for N "
                        "hosts at once; merge the shards' folders with supersmall report --runs")
    add_set_argument(p)
    p.add_argument("--out", required=True)
    p.set_defaults(handler=run)


def run(args) -> int:
    from supersmall.commands import parse_sets
    from supersmall.errors import UserError
    from supersmall.fullscale.launch import replicate

    def items(text: str) -> list[str]:
        return [x.strip() for x in text.split(",") if x.strip()]

    try:
        seeds = [int(s) for s in items(args.seeds)] if args.seeds else None
    except ValueError:
        raise UserError(f"--seeds must be comma-separated integers, got {args.seeds!r}") from None
    shard = None
    if args.shard:
        i, sep, n = args.shard.partition("/")
        if not sep or not i.strip().isdigit() or not n.strip().isdigit():
            raise UserError(f"--shard must be I/N, e.g. --shard 0/2 and --shard 1/2, got {args.shard!r}")
        shard = (int(i), int(n))
    try:
        result = replicate(args.profile, args.out, items(args.arms) if args.arms else None, items(args.stages), seeds,
                           args.reading, args.curriculum, args.dry_run, overrides=parse_sets(args.set), shard=shard)
    except ValueError as e:
        raise UserError(str(e)) from None
    print(json.dumps({k: v for k, v in result.items() if k != "problems"}))
    return 0
