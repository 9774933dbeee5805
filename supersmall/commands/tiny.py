"""``supersmall tiny build``: rebuild the tiny models the kit ships, and compare the rebuild with them.

The kit ships ``tiny`` and ``tiny-r1`` built (``supersmall/models/``), so every machine starts from the same
weights. This command shows how they were made: it runs the warm start (1-2 min on 2 cores), adapts the
result to R1's template, evaluates the rebuilt base on the held-out problems and prints its accuracy
beside the shipped model's. ``--ship`` (for the kit's developers) replaces the shipped models.
"""

from __future__ import annotations


def register(sub) -> None:
    p = sub.add_parser("tiny", help="rebuild the shipped tiny models and compare the rebuild with them")
    p.add_argument("action", choices=["build"], help="build: run the warm start and the R1 adaptation")
    p.add_argument("--out", default=None, help="output folder (default: <cache>/tiny-build)")
    p.add_argument("--seed", type=int, default=None, help="the warm start's seed (default: the shipped one's)")
    p.add_argument("--ship", action="store_true", help="replace the kit's shipped models with this build")
    p.add_argument("--json", action="store_true", help="print the comparison as one JSON object")
    p.set_defaults(handler=run)


def run(args) -> int:
    import json
    import shutil
    from pathlib import Path

    from supersmall import tiny
    from supersmall.errors import UserError
    from supersmall.tools import tiny_build

    out = Path(args.out) if args.out else tiny.cache_root() / "tiny-build"
    if out.exists() and not out.is_dir():
        raise UserError(f"--out {str(out)!r} is a file, not a folder: pass a folder to build into")
    if args.ship and args.seed not in (None, tiny.WARM_START["seed"]):
        raise UserError("--ship builds the kit's model, whose seed is fixed: drop --seed")
    base = tiny_build.build_base_model(out / "tiny", progress=True, seed=args.seed)
    r1 = tiny_build.build_r1_model(base, out / "tiny-r1", progress=True)
    rebuilt = heldout_accuracy(base)
    info = json.loads((base / "build.json").read_text())
    info["heldout"] = rebuilt
    (base / "build.json").write_text(json.dumps(info, indent=2) + "\n")
    if args.ship:
        for name, src in (("tiny", base), ("tiny-r1", r1)):
            shutil.rmtree(tiny.SHIPPED / name, ignore_errors=True)
            shutil.copytree(src, tiny.SHIPPED / name)
    shipped = json.loads((tiny.base_model_dir() / "build.json").read_text())
    row = {"rebuilt": rebuilt, "shipped": shipped.get("heldout"), "same_weights": info["sha256"] == shipped["sha256"],
           "environment": info["environment"], "shipped_environment": shipped.get("environment"), "out": str(out)}
    if args.json:
        print(json.dumps(row))
        return 0
    s = row["shipped"] or {}
    print(f"rebuilt base: {rebuilt['accuracy']:.1%} [{rebuilt['ci_low']:.1%}, {rebuilt['ci_high']:.1%}] on "
          f"{rebuilt['n']} held-out problems; shipped: {s.get('accuracy', float('nan')):.1%} "
          f"[{s.get('ci_low', float('nan')):.1%}, {s.get('ci_high', float('nan')):.1%}]; "
          + ("the same weights" if row["same_weights"] else
             "other weights (a build depends on the CPU's kernels and thread count; the kit ships one build)"))
    print(f"models in {out}" + (" and shipped to " + str(tiny.SHIPPED) if args.ship else ""))
    return 0


def heldout_accuracy(path) -> dict[str, float]:
    """The tiny profile's base evaluation of a model folder (greedy, 500 held-out problems): accuracy,
    its 95% interval and n, the figure ``build.json`` records as ``heldout``."""
    from supersmall.config import load_profile
    from supersmall.evaluate import eval_rows, evaluate

    profile = load_profile("tiny")
    s = evaluate(str(path), eval_rows(profile), settings=profile.eval, progress=False).summary
    return {k: s[k] for k in ("accuracy", "ci_low", "ci_high", "n")}
