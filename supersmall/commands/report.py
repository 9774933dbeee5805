"""``supersmall report``: one report from the folders of several hosts (``replicate --shard i/n`` on each),
identical to the report one host would write (:func:`supersmall.fullscale.shards.merge`).

    supersmall report --runs runs/host0 runs/host1 --out runs/all     # runs/all/report/verdicts.json
"""

from __future__ import annotations


def register(sub) -> None:
    p = sub.add_parser("report", help="merge the shards of replicate --shard (one folder per host) into one report")
    p.add_argument("--runs", nargs="+", required=True, metavar="DIR",
                   help="each shard's replicate --out folder (or a single folder: its report again)")
    p.add_argument("--out", required=True, help="the merged folder: OUT/eval/ (copies) and OUT/report/")
    p.set_defaults(handler=run)


def run(args) -> int:
    import json

    from supersmall.fullscale.shards import merge

    paths = merge(args.runs, args.out)
    print(json.dumps({k: str(v) for k, v in paths.items()}))
    return 0
