"""One-GPU check of the kit's REAL training path: ``supersmall.train.train`` -> TRL 1.16's ``GRPOTrainer``.

Builds a RANDOMLY INITIALISED Qwen2ForCausalLM (no download) on the tiny-r1 tokenizer (R1-style chat template,
``supersmall.tiny.r1_model_dir``), then trains the ``rehearsal`` profile, overridden for one GPU (no vLLM,
bf16, gradient checkpointing, 256-token completions), for ``--steps`` steps in each arm (no-kl, kl-nopenalty,
kl-penalty: the kit's ``KLPenaltyTrainer``), and checks resumption: a no-kl run of 4 steps (a checkpoint every
step) is interrupted at step 3 (a metrics callback raises after checkpoint-2 is written), and the same call
again must resume from checkpoint-2 (the run card's ``metrics.resumed_from_step``). A run that completed is
never resumed by the kit (its checkpoints are deleted and another step count is another config), so the
interruption is the real resume path: "rerunning the same command resumes from the last checkpoint".

    PYTHONPATH=. python benchmarks/gpu_trl_check.py --out gpu_trl_check.json     # one GPU, a few minutes
    PYTHONPATH=. python benchmarks/gpu_trl_check.py --cpu                        # a tiny model on CPU, ~3 min

Per arm it reports seconds per step (after the first logged step, and the run card's figure, which includes
loading), ``torch.cuda.max_memory_allocated``, metrics.jsonl lines against steps, and whether "kl" was logged.
The JSON summary is printed and written to ``--out`` (default ``$OUT/gpu_trl_check.json`` when ``$OUT`` is set).
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import sys
import tempfile
import time
import traceback
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

GIB = 2**30
GPU_DIMS = dict(hidden_size=1024, intermediate_size=4096, num_hidden_layers=12, num_attention_heads=8,
                num_key_value_heads=2)
CPU_DIMS = dict(hidden_size=64, intermediate_size=128, num_hidden_layers=2, num_attention_heads=4,
                num_key_value_heads=2)


class Interrupt(RuntimeError):
    """Raised by the metrics callback to stop a run part-way (the resume check)."""


def build_model(folder: Path, dims: dict, dtype: torch.dtype) -> dict:
    """A random-init Qwen2 with the tiny-r1 tokenizer and chat template, saved to ``folder``."""
    from transformers import AutoTokenizer, Qwen2Config, Qwen2ForCausalLM

    from supersmall.tiny import r1_model_dir

    src = r1_model_dir()
    tok = AutoTokenizer.from_pretrained(src)
    cfg = Qwen2Config(vocab_size=len(tok), max_position_embeddings=4096, tie_word_embeddings=False,
                      bos_token_id=tok.bos_token_id, eos_token_id=tok.eos_token_id,
                      pad_token_id=tok.pad_token_id, **dims)
    torch.manual_seed(0)
    model = Qwen2ForCausalLM(cfg).to(dtype)
    folder.mkdir(parents=True, exist_ok=True)
    model.save_pretrained(folder)
    tok.save_pretrained(folder)
    gen = src / "generation_config.json"
    if gen.is_file():
        shutil.copy(gen, folder / "generation_config.json")
    return {"params_m": round(sum(p.numel() for p in model.parameters()) / 1e6, 1), "vocab": len(tok), **dims}


def overrides(cpu: bool, completion: int) -> dict:
    o = {"launch.num_processes": 1, "launch.vllm_mode": "none", "train.gradient_checkpointing": True,
         "train.max_completion_length": completion, "train.report_to": "none", "train.save_steps": 2}
    if cpu:
        o.update({"launch.num_gpus": 0, "train.bf16": False, "model.dtype": "float32"})
    else:
        o.update({"launch.num_gpus": 1, "train.bf16": True, "model.dtype": "bfloat16"})
    return o


def metrics_lines(out: Path) -> list[dict]:
    p = out / "metrics.jsonl"
    return [json.loads(x) for x in p.read_text().splitlines() if x.strip()] if p.is_file() else []


def one_run(model_dir: Path, out: Path, arm: str, steps: int, ov: dict, stop_at: int | None = None) -> dict:
    """train() once; seconds per step from the callbacks' times, peak memory, metrics.jsonl checks."""
    from supersmall.train import train

    times: list[float] = []

    def cb(step, m, total):
        times.append(time.time())
        if stop_at is not None and step >= stop_at:
            raise Interrupt(f"interrupted at step {step}")

    cuda = torch.cuda.is_available() and ov["launch.num_gpus"] > 0
    if cuda:
        torch.cuda.empty_cache()
        torch.cuda.reset_peak_memory_stats()
    t0 = time.time()
    res: dict = {"arm": arm, "steps": steps}
    try:
        card = train("rehearsal", arm=arm, steps=steps, out_dir=out, evaluate_model=False, model=str(model_dir),
                     progress=False, callbacks=[cb], **ov)
        res["ok"] = True
        m = card.get("metrics", {})
        res.update(status=card.get("status"), resumed_from_step=m.get("resumed_from_step"),
                   card_seconds_per_step=m.get("seconds_per_step"), card_train_seconds=m.get("train_seconds"))
    except Interrupt as e:
        res.update(ok=True, interrupted=str(e))
    except Exception as e:  # noqa: BLE001 -- reported, not hidden
        res.update(ok=False, error=f"{type(e).__name__}: {e}", traceback=traceback.format_exc()[-3000:])
    res["wall_seconds"] = round(time.time() - t0, 2)
    if len(times) >= 2:
        res["seconds_per_step_after_first"] = round((times[-1] - times[0]) / (len(times) - 1), 3)
    if cuda:
        res["peak_mem_gib"] = round(torch.cuda.max_memory_allocated() / GIB, 3)
    lines = metrics_lines(out)
    res["metrics_lines"] = len(lines)
    res["metrics_steps"] = [x.get("step") for x in lines]
    res["kl_logged"] = any(x.get("kl") is not None for x in lines)
    if lines:
        last = lines[-1]
        res["last_metrics"] = {k: (round(v, 5) if isinstance(v, float) else v) for k, v in last.items()}
    res["checkpoints"] = sorted(p.name for p in out.glob("checkpoint-*"))
    return res


def main(argv: list[str] | None = None) -> dict:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--cpu", action="store_true", help="a tiny model on CPU (tests this script; ~3 min on 2 cores)")
    ap.add_argument("--steps", type=int, default=3)
    ap.add_argument("--completion", type=int, default=None, help="max completion tokens (256 GPU, 32 CPU)")
    ap.add_argument("--arms", default="no-kl,kl-nopenalty,kl-penalty")
    ap.add_argument("--no-resume", action="store_true")
    ap.add_argument("--work", default=None, help="scratch folder (default: a temporary one)")
    ap.add_argument("--out", default=None)
    a = ap.parse_args(argv)
    out = a.out or (os.path.join(os.environ["OUT"], "gpu_trl_check.json") if os.environ.get("OUT") else None)

    def save(partial: dict) -> None:  # after every run, so a run stopped at its time limit still reports
        if out:
            Path(out).write_text(json.dumps(partial, indent=1, default=str))
    if not a.cpu and not torch.cuda.is_available():
        raise SystemExit("no CUDA device: use --cpu")
    from supersmall.train import quiet

    quiet()
    work = Path(a.work or tempfile.mkdtemp(prefix="gpu_trl_check_"))
    completion = a.completion or (32 if a.cpu else 256)
    ov = overrides(a.cpu, completion)
    summary: dict = {"device": "cpu" if a.cpu else torch.cuda.get_device_name(0), "torch": torch.__version__,
                     "overrides": ov, "steps": a.steps}
    try:
        import transformers
        import trl

        summary.update(transformers=transformers.__version__, trl=trl.__version__)
    except Exception as e:  # noqa: BLE001
        summary["import_error"] = repr(e)
    t0 = time.time()
    summary["model"] = build_model(work / "model", CPU_DIMS if a.cpu else GPU_DIMS,
                                   torch.float32 if a.cpu else torch.bfloat16)
    summary["model_build_seconds"] = round(time.time() - t0, 2)
    runs = []
    for arm in [x for x in a.arms.split(",") if x]:
        r = one_run(work / "model", work / f"run-{arm}", arm, a.steps, ov)
        r["lines_ok"] = r["metrics_lines"] == a.steps
        print(json.dumps({k: v for k, v in r.items() if k != "traceback"}), flush=True)
        runs.append(r)
        save(summary | {"arms": runs})
    summary["arms"] = runs
    if not a.no_resume:
        rov = {**ov, "train.save_steps": 1}
        first = one_run(work / "model", work / "resume", "no-kl", 4, rov, stop_at=3)
        print(json.dumps({k: v for k, v in first.items() if k != "traceback"}), flush=True)
        save(summary | {"arms": runs, "resume": {"first": first}})
        second = one_run(work / "model", work / "resume", "no-kl", 4, rov)
        print(json.dumps({k: v for k, v in second.items() if k != "traceback"}), flush=True)
        summary["resume"] = {"first": first, "second": second,
                             "resumed_from_checkpoint_2": second.get("resumed_from_step") == 2,
                             "complete": second.get("status") == "complete"}
    kp = [r for r in runs if r["arm"] == "kl-penalty"]
    summary["checks"] = {
        "all_runs_ok": all(r["ok"] for r in runs),
        "metrics_lines_equal_steps": all(r["lines_ok"] for r in runs),
        "kl_penalty_logged_kl": bool(kp and kp[0]["kl_logged"]),
        "resume_from_checkpoint_2": summary.get("resume", {}).get("resumed_from_checkpoint_2"),
    }
    summary["total_seconds"] = round(time.time() - t0, 2)
    text = json.dumps(summary, indent=1, default=str)
    print(text)
    save(summary)
    if not a.work:
        shutil.rmtree(work, ignore_errors=True)
    return summary


if __name__ == "__main__":
    main()
