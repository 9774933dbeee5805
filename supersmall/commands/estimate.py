"""``supersmall estimate``: tokens per step, time, GPU-hours and cost of a full-scale run, beside Table 5."""

from __future__ import annotations


def register(sub) -> None:
    p = sub.add_parser("estimate", help="time and cost of a run from a documented throughput table")
    p.add_argument("--profile", default="a6000x4")
    p.add_argument("--arm", default="no-kl")
    p.add_argument("--run", default=None, help="a finished run folder: compare its measured time with the estimate")
    p.set_defaults(handler=run)


def run(args) -> int:
    from supersmall.launch import estimate

    e = estimate(args.profile, args.arm)
    print(f"{args.profile} / {args.arm}: {e['completions_per_step']} completions/step, "
          f"~{e['generated_tokens_per_step']:,} generated tokens/step")
    print(f"  generation {e['generation_s_per_step']['mid']} s/step (range {e['generation_s_per_step']['high']}-"
          f"{e['generation_s_per_step']['low']}), training {e['training_s_per_step']} s/step")
    print(f"  {e['steps']} steps: ~{e['minutes']['mid']} min (range {e['minutes']['high']}-{e['minutes']['low']}); "
          f"paper (Table 5): {e['paper_minutes']} min")
    print(f"  {e['gpu_hours']} GPU-hours, ~${e['cost_usd']} at the profile's price per GPU-hour")
    print(f"  assumptions: {e['assumptions']}")
    if args.run:
        from supersmall.runcard import read_run_card

        measured = read_run_card(args.run)["metrics"].get("train_seconds")
        if measured is not None:
            print(f"  measured: {measured / 60:.1f} min ({measured / 60 / max(e['minutes']['mid'], 1e-9):.2f}x the estimate)")
    return 0
