"""``supersmall eval``: evaluate a model with explicit settings (see :func:`supersmall.evaluate.run_eval`)."""

from __future__ import annotations

from pathlib import Path


def register(sub) -> None:
    from supersmall.commands import add_set_argument

    p = sub.add_parser("eval", help="evaluate a model: records JSONL, summary.json with intervals, run card")
    p.add_argument("--profile", default="tiny", help="profile name or YAML path (default: tiny)")
    p.add_argument("--model", default=None, help="model folder or hub name (default: the profile's base model)")
    p.add_argument("--dataset", default=None, help="tiny | math500 | a local JSONL/parquet (default: the profile's)")
    p.add_argument("--limit", type=int, default=None, help="only the first N problems")
    add_set_argument(p)
    p.add_argument("--out", required=True, help="output folder")
    p.set_defaults(handler=run)


def run(args) -> int:
    from supersmall.commands import parse_sets
    from supersmall.config import load_profile
    from supersmall.errors import UserError
    from supersmall.evaluate import run_eval
    from supersmall.runcard import check_run_folder

    profile = load_profile(args.profile, **parse_sets(args.set))
    model = args.model or profile.model.name_or_path
    local = Path(model)
    if args.model is not None and (local.exists() or model.startswith((".", "/"))):
        if not (local / "config.json").is_file():
            raise UserError(f"--model {model!r} is not a model folder (no config.json found there)")
    if args.limit is not None and args.limit < 1:
        raise UserError(f"--limit must be >= 1, got {args.limit}")
    if profile.eval.backend == "vllm":
        try:
            import vllm  # noqa: F401  (optional: the [gpu] extra)
        except ImportError:
            raise UserError("eval.backend vllm needs vLLM (pip install -e '.[gpu]' on a CUDA host, or `make vllm-env` "
                            "for its CPU build); pass --set eval.backend=hf to evaluate with transformers") from None
    check_run_folder(args.out)
    s = run_eval(model, profile, args.out, dataset=args.dataset, limit=args.limit, meta={"role": "trained"})
    print(f"accuracy {s['accuracy']:.3f} [{s['ci_low']:.3f}, {s['ci_high']:.3f}] on {s['n']} problems, "
          f"truncated {s['truncated_fraction']:.0%}; {args.out}/summary.json")
    return 0
