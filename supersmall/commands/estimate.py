"""``supersmall estimate``: memory per GPU and time of the full-scale runs, beside the paper's Table 5.

    supersmall estimate --profile a6000x4                 # Table 5 rows beside the estimates, memory check
    supersmall estimate --profile a6000x4 --json          # per run, and total_hours of the whole replicate
    supersmall estimate --set train.gradient_accumulation_steps=1   # does a bigger micro-batch fit?
    supersmall estimate --profile single-gpu --gpu l4     # another card: its memory, usable memory and speed

On a GPU profile it ends with the whole replicate's hours on 1, 2 and 4 hosts, sharded by seed
(``replicate --shard``) against one run over all hosts (``launch.num_machines``): :func:`supersmall.fullscale.cost.hosts`.
"""

from __future__ import annotations

RUNS = [("no-kl", "level1-3"), ("kl-penalty", "level1-3"), ("kl-nopenalty", "level1-3"), ("no-kl", "level4"),
        ("no-kl", "level5")]


def register(sub) -> None:
    from supersmall.commands import add_set_argument

    p = sub.add_parser("estimate", help="memory per GPU and time/cost of the full-scale runs, beside Table 5")
    p.add_argument("--profile", default="a6000x4", help="profile name or YAML path (default: a6000x4)")
    p.add_argument("--arm", default=None, help="no-kl | kl-nopenalty | kl-penalty (default: every run)")
    p.add_argument("--stage", default=None, help="level1-3 | level4 | level5 | level5.5 | level6 (or 1-3, 4, ...)")
    add_set_argument(p)
    p.add_argument("--mean-completion-fraction", type=float, default=None,
                   help="mean completion length / max_completion_length (default: the estimate's choice, 0.6)")
    p.add_argument("--gpu", default=None,
                   help="another card (its memory, usable memory and speed from paper.yaml gpus.*): rtx 3090, rtx 4090, "
                        "rtx a5000, l4, a10, rtx a6000, a40, h100, h200")
    p.add_argument("--json", action="store_true", help="print per-run minutes, peak memory and fit as JSON")
    p.add_argument("--run", default=None, help="a finished run folder: compare its measured time with the estimate")
    p.set_defaults(handler=run)


def _arms(profile) -> list[str]:
    from supersmall import paper

    return [a for a in paper.ARMS if not (profile.train.lora_rank and a == "kl-penalty")]


def _runs(args) -> list[tuple[str, str]]:
    from supersmall.errors import UserError
    from supersmall.fullscale import estimate as E

    arms = ("no-kl", "kl-nopenalty", "kl-penalty")
    if args.arm is not None and args.arm not in arms:
        raise UserError(f"unknown arm {args.arm!r}; valid arms are: {', '.join(arms)}")
    stage = None if args.stage is None else E.STAGES.get(args.stage, args.stage)
    if stage is not None and stage not in E.STAGES.values():
        raise UserError(f"unknown stage {args.stage!r}; valid stages are: {', '.join(E.STAGES.values())}")
    if args.arm is None and stage is None:
        return RUNS
    return [(args.arm or "no-kl", stage or "level1-3")]


def run(args) -> int:
    import json

    from supersmall.commands import parse_sets
    from supersmall.config import load_profile
    from supersmall.errors import UserError
    from supersmall.fullscale import cost
    from supersmall.fullscale import estimate as E

    profile = load_profile(args.profile, **parse_sets(args.set))
    kw = {} if args.mean_completion_fraction is None else {"mean_completion_fraction": args.mean_completion_fraction}
    if kw and not 0 < kw["mean_completion_fraction"] <= 1:
        raise UserError("--mean-completion-fraction must be in (0, 1], e.g. 0.5")
    gpu = None
    if args.gpu is not None:
        try:
            gpu = E.gpu_card(args.gpu)["name"]
        except ValueError as e:
            raise UserError(str(e)) from None
        profile = E.on_gpu(profile, gpu)
    try:
        runs = [E.estimate(profile, arm, stage, gpu=gpu, **kw) for arm, stage in _runs(args)]
    except ValueError as e:
        raise UserError(str(e)) from None
    if args.json:
        keys = ("arm", "stage", "steps", "minutes", "gpu_hours", "cost_usd", "peak_memory_gb", "fits",
                "paper_minutes", "ratio")
        out = [{**{k: e[k] for k in keys}, "gpu": gpu or E.gpu_spec(None)[0], "micro_batch": e["memory"]["micro_batch"],
                "usable_memory_gb": e["memory"]["usable"], "memory_check": E.check_memory(profile, e["arm"]),
                "vllm_check": E.check_vllm(profile)} for e in runs]
        whole = cost.replicate_cost(profile, arms=_arms(profile), gpu=gpu)
        many = cost.hosts(profile, arms=_arms(profile), gpu=gpu) if profile.launch.num_gpus else None
        print(json.dumps({"runs": out, **whole, "hosts": many}, indent=2))
        return 0

    print(f"{profile.name}: Table 5 (4x RTX A6000) beside the estimate (minutes; mid, with the low-high range)")
    print(f"{'row':<14} {'paper':>6} {'estimate':>9} {'range':>13} {'ratio':>6} {'implied mean completion':>24}")
    for r in cost.table5_rows(profile, **kw):
        m, f = r["minutes"], r["implied_mean_completion_fraction"]
        print(f"{r['row']:<14} {r['paper_minutes']:>6.1f} {m['mid']:>9.1f} {m['low']:>6.0f}-{m['high']:<6.0f} "
              f"{'n/a' if r['ratio'] is None else format(r['ratio'], '.2f'):>6} "
              f"{'n/a' if f is None else f'{f:.0%}':>24}")
    print()
    if gpu:
        print(f"on {gpu}: {profile.launch.gpu_memory_gb:g} GB, {profile.launch.gpu_usable_gb:g} usable "
              f"(paper.yaml gpus.*); the rows below use its speed and memory")
    for e in runs:
        mem = e["memory"]
        print(f"{e['arm']} / {e['stage']}: {e['completions_per_step']} completions/step, {mem['micro_batch']} per GPU "
              f"per micro-step; ~{e['minutes']['mid']} min (range {e['minutes']['low']}-{e['minutes']['high']}); "
              f"paper (Table 5): {e['paper_minutes']} min; {e['gpu_hours']} GPU-hours, ~${e['cost_usd']}; "
              f"peak memory {e['peak_memory_gb']} of {mem['usable'] or 'n/a'} GB usable per GPU "
              f"({'fits' if e['fits'] else 'does NOT fit'})")
        msg = E.check_memory(profile, e["arm"])
        if msg:
            print(f"  ! {msg}")
    if runs[0]["hosts"] > 1:
        print(f"one run over {runs[0]['hosts']} hosts: every step above includes {runs[0]['network_s_per_step']} s on "
              f"the network between them (ZeRO's collectives at {E.INTERNODE_GBIT:g} Gbit/s, a choice); GPU-hours "
              f"count all {runs[0]['hosts'] * profile.launch.num_gpus} GPUs")
    print(f"assumptions: {runs[0]['assumptions']}")
    w = cost.replicate_cost(profile, arms=_arms(profile), gpu=gpu)
    t = w["total_hours"]
    print(f"the whole replicate ({w['training_runs']} training runs, {w['evaluations']} evaluations of "
          f"~{w['evaluation_minutes_each']:.0f} min, one per GPU): ~{t['mid']:.0f} h (range {t['low']:.0f}-"
          f"{t['high']:.0f}), {w['days']} days, {w['gpu_hours']} GPU-hours, ~${w['cost_usd']}; a cap hit in a step "
          f"of {next(iter(w['truncation'].values()))['rollouts_per_step']} rollouts: "
          + ", ".join(f"{s} {v['cap_hit_per_step']:.0%}" for s, v in w["truncation"].items()))
    if profile.launch.num_gpus:
        _print_hosts(profile, cost.hosts(profile, arms=_arms(profile), gpu=gpu))
    if args.run:
        from supersmall.runcard import read_run_card

        measured = read_run_card(args.run)["metrics"].get("train_seconds")
        if measured is not None:
            mid = runs[0]["minutes"]["mid"]
            print(f"measured: {measured / 60:.1f} min ({measured / 60 / max(mid, 1e-9):.2f}x the estimate)")
    return 0


def _print_hosts(profile, many) -> None:
    """The hosts table: sharded by seed (replicate --shard) vs one run over all hosts (launch.num_machines)."""
    g = profile.launch.num_gpus
    print(f"\nthe whole replicate on H hosts of {g} GPUs (hours, mid; one run over all hosts adds "
          f"~{many['rows'][-1]['network_s_per_step']:.0f} s per step of gradients over {many['internode_gbit']:.0f} "
          "Gbit/s Ethernet):")
    print(f"{'hosts':>5} {'GPUs':>5} {'sharded by seed':>16} {'one multi-node run':>19}")
    for r in many["rows"]:
        print(f"{r['hosts']:>5} {r['gpus']:>5} {r['sharded_hours']:>16.1f} {r['multinode_hours']:>19.1f}")
    for h, s in many["one_run_speedup"].items():
        why = (f"not {h}x: every step waits for its longest decode" if s["ratio"] < int(h) else
               f"vLLM decodes the step's rollouts in {s['one_host_waves']} waves on one host, in {s['hosts_waves']} "
               f"on {h}")
        print(f"one step on {h} hosts: {s['hosts_s']:.1f} s against {s['one_host_s']:.1f} s on one ({s['ratio']:.2f}x, "
              f"{why}); {h} hosts running separate seeds finish {h}x the runs (the busiest shard sets the wall time)")
