"""``supersmall replicate``: the paper's runs in order (arms, then curriculum stages), then evaluation and
the report. ``--dry-run`` works on CPU: it prints the plan and writes ``DIR/plan.json``."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path


def register(sub) -> None:
    p = sub.add_parser("replicate", help="run (or --dry-run) the paper's arms and curriculum stages at full scale")
    p.add_argument("--profile", default="a6000x4")
    p.add_argument("--arms", default="no-kl,kl-penalty,kl-nopenalty", help="comma-separated arms (Table 3)")
    p.add_argument("--stages", default="1-3,4,5", help="comma-separated curriculum stages: 1-3,4,5,5.5,6")
    p.add_argument("--dry-run", action="store_true", help="validate and print the plan; run nothing")
    p.add_argument("--out", required=True)
    p.set_defaults(handler=run)


def run(args) -> int:
    from supersmall.cli import UserError
    from supersmall.launch import plan_json, plans_for, validate, write_plan_files
    from supersmall.runcard import is_complete

    arms = [a.strip() for a in args.arms.split(",") if a.strip()]
    stages = [s.strip() for s in args.stages.split(",") if s.strip()]
    try:
        plans = plans_for(args.profile, arms, stages, args.out)
    except ValueError as e:
        raise UserError(str(e)) from None
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    for plan in plans:
        write_plan_files(plan, out)
    (out / "plan.json").write_text(plan_json(plans) + "\n")
    problems = {f"{p.arm}/{p.stage}": validate(p, check_hardware=not args.dry_run) for p in plans}
    for plan in plans:
        e = plan.estimate
        print(f"# {plan.arm} / {plan.stage}: {plan.num_processes} training processes, vLLM {plan.vllm_mode}, "
              f"~{e['minutes']['mid']:.0f} min (range {e['minutes']['high']:.0f}-{e['minutes']['low']:.0f}; "
              f"paper {e['paper_minutes']} min)")
        for cmd in plan.commands:
            print(cmd)
        for msg in problems[f"{plan.arm}/{plan.stage}"]:
            print(f"  ! {msg}")
    print(f"plan written to {out / 'plan.json'}")
    if args.dry_run:
        return 0
    blocking = [m for msgs in problems.values() for m in msgs]
    if blocking:
        raise UserError(f"{len(blocking)} problem(s) above; fix them or use --dry-run")
    for plan in plans:
        if is_complete(plan.out_dir):
            print(f"skip {plan.arm}/{plan.stage}: its run card is complete")
            continue
        for cmd in plan.commands:
            print(f"$ {cmd}", flush=True)
            if subprocess.run(cmd, shell=True).returncode != 0:
                raise UserError(f"{plan.arm}/{plan.stage} failed; rerun the same command to resume from its last checkpoint")
        eval_dir = Path(plan.out_dir) / "eval"
        if not is_complete(eval_dir):
            subprocess.run([sys.executable, "-m", "supersmall.cli", "eval", "--profile", args.profile, "--model", f"{plan.out_dir}/model",
                            "--dataset", "math500", "--out", str(eval_dir)], check=True)
    from supersmall.runner import NOTEBOOKS_DIR

    subprocess.run([sys.executable, "-m", "papermill", str(NOTEBOOKS_DIR / "08_replication_report.ipynb"), str(out / "08_replication_report.ipynb"),
                    "-p", "profile", args.profile, "-p", "runs_dir", str(out.resolve()),
                    "-p", "out_dir", str((out / "report").resolve())], check=True)
    print(json.dumps({"report": str(out / "report")}))
    return 0
