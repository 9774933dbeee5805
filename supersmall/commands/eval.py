"""``supersmall eval``: evaluate a model with explicit settings (see :mod:`supersmall.evaluate`)."""

from __future__ import annotations

import json
from pathlib import Path


def register(sub) -> None:
    p = sub.add_parser("eval", help="evaluate a model: records JSONL, summary.json with intervals, run card")
    p.add_argument("--profile", default="tiny", help="profile name or YAML path (default: tiny)")
    p.add_argument("--model", default=None, help="path or hub name (default: the profile's base model)")
    p.add_argument("--dataset", default=None, help="tiny | math500 | a local JSONL/parquet (default: the profile's)")
    p.add_argument("--max-new-tokens", type=int, default=None)
    p.add_argument("--temperature", type=float, default=None)
    p.add_argument("--top-p", type=float, default=None)
    p.add_argument("--n-samples", type=int, default=None)
    p.add_argument("--prompt-template", default=None, help="raw | chat | chat_boxed | default")
    p.add_argument("--backend", default=None, help="hf | vllm (default: the profile's)")
    p.add_argument("--limit", type=int, default=None, help="only the first N problems")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--out", required=True, help="output folder")
    p.set_defaults(handler=run)


def dataset_for(name: str, profile) -> list:
    if name == "tiny":
        from supersmall import tiny

        return tiny.test_problems(profile.eval.problems_per_level or 100)
    from supersmall import data

    ds = data.load_math500(None if name == "math500" else name)
    return [dict(r) for r in ds]


def run(args) -> int:
    import time

    from supersmall.config import load_profile
    from supersmall.evaluate import evaluate
    from supersmall.runcard import write_run_card

    profile = load_profile(args.profile)
    e = profile.eval
    model = args.model or profile.model.name_or_path
    rows = dataset_for(args.dataset or e.dataset, profile)
    if args.limit:
        rows = rows[: args.limit]
    settings = dict(backend=args.backend or e.backend, max_new_tokens=args.max_new_tokens or e.max_new_tokens,
                    temperature=e.temperature if args.temperature is None else args.temperature,
                    top_p=e.top_p if args.top_p is None else args.top_p, n_samples=args.n_samples or e.n_samples,
                    prompt_template=args.prompt_template or e.prompt_template, seed=args.seed,
                    batch_size=e.batch_size)
    if settings["backend"] == "vllm":
        try:
            import vllm  # noqa: F401
        except ImportError:
            from supersmall.cli import UserError

            raise UserError("backend vllm needs vLLM on a CUDA host (pip install -e '.[gpu]'); "
                            "pass --backend hf to evaluate with transformers") from None
    t0 = time.time()
    result = evaluate(model, rows, verbose=True, **settings)
    out = Path(args.out)
    result.to_jsonl(out / "records.jsonl")
    summary = {k: result.summary[k] for k in ("accuracy", "ci_low", "ci_high", "n", "per_level", "per_subject",
                                              "truncation_rate", "mean_length", "reasoning_rate", "boxed_rate")}
    (out / "summary.json").write_text(json.dumps(summary, indent=2) + "\n")
    write_run_card(out, kind="eval", config=profile, seed=args.seed, metrics=summary,
                   timings={"eval_seconds": round(time.time() - t0, 2)},
                   extra={"model": str(model), "settings": result.settings})
    s = result.summary
    print(f"accuracy {s['accuracy']:.3f} [{s['ci_low']:.3f}, {s['ci_high']:.3f}] on {s['n']} problems, "
          f"truncated {s['truncation_rate']:.0%}; {out}/summary.json")
    return 0
