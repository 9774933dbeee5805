"""``supersmall export verl``: a hand-over to verl (:mod:`supersmall.fullscale.verl`): the curriculum data in order
as parquet, a reward module calling the kit's reward, and a launch script with the profile mapped key by key.

    supersmall export verl --profile a6000x4 --arm kl-penalty --out verl_run    # then: bash verl_run/run_verl.sh
"""

from __future__ import annotations


def register(sub) -> None:
    from supersmall.commands import add_set_argument

    p = sub.add_parser("export", help="hand a profile over to another trainer (verl)")
    targets = p.add_subparsers(dest="target", metavar="TARGET", required=True)
    v = targets.add_parser("verl", help="curriculum parquet + reward module + run_verl.sh for verl")
    v.add_argument("--profile", default="a6000x4", help="profile name or YAML path (default: a6000x4)")
    v.add_argument("--arm", default=None, help="no-kl | kl-nopenalty | kl-penalty (default: the profile's train.arm)")
    add_set_argument(v)
    v.add_argument("--out", required=True, help="the folder to write")
    p.set_defaults(handler=run)


def run(args) -> int:
    import json

    from supersmall.commands import parse_sets
    from supersmall.config import load_profile
    from supersmall.fullscale.verl import export

    paths = export(load_profile(args.profile, **parse_sets(args.set)), args.out, args.arm)
    print(json.dumps({k: str(v) for k, v in paths.items()}))
    return 0
