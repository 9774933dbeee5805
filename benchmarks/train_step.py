"""Seconds per step of the kit's TRL backend against a raw ``GRPOTrainer`` with the same config, and the
minimal loop against both, in one run on the tiny model, and ``supersmall.fullscale.estimate``'s FLOP prediction beside
them. Usage: ``python benchmarks/train_step.py [--steps 20]``."""

from __future__ import annotations

import argparse
import json
import tempfile
import time
from pathlib import Path


def timed_trl(trainer, steps: int) -> float:
    from transformers import TrainerCallback

    marks: list[float] = []

    class Clock(TrainerCallback):
        def on_step_end(self, args, state, control, **kw):
            marks.append(time.perf_counter())

    trainer.add_callback(Clock())
    trainer.train()
    warm = 3  # skip the first steps (allocations, caches)
    return (marks[-1] - marks[warm - 1]) / (len(marks) - warm)


def matmul_gflops(size: int = 1024, seconds: float = 0.5) -> float:
    """This machine's fp32 rate on a large matmul (the FLOP model's peak for a CPU run)."""
    import torch

    a = torch.randn(size, size)
    t0, n = time.perf_counter(), 0
    while time.perf_counter() - t0 < seconds:
        a @ a
        n += 1
    return n * 2 * size**3 / (time.perf_counter() - t0) / 1e9


def flop_model_line(profile, measured_s: float) -> str:
    """``supersmall.fullscale.estimate``'s FLOP model for one tiny step (generation + training passes at this machine's
    large-matmul rate) beside the measured seconds. On a ~1M-parameter model two errors pull against each
    other: per-token Python and kernel-launch overhead (slower than the model) and small matmuls that do not
    reach the large-matmul rate either way, so the ratio says how far the FLOP model is from this machine."""
    from supersmall.fullscale import estimate

    c = estimate.calibrate_tiny(profile, matmul_gflops())
    gflop = (c["generation_flops"] + c["training_flops"]) / 1e9
    return (f"FLOP model:      {c['predicted_s_per_step']:.3f} s/step predicted ({gflop:.1f} GFLOP at "
            f"{c['matmul_gflops']:.1f} GFLOPS measured matmul); measured raw TRL / predicted: "
            f"{measured_s / c['predicted_s_per_step']:.2f}x")


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--steps", type=int, default=20)
    args = ap.parse_args()
    import torch
    from datasets import Dataset
    from transformers import AutoModelForCausalLM, AutoTokenizer
    from trl import GRPOConfig, GRPOTrainer

    from supersmall import grpo, rewards, tiny
    from supersmall.config import load_profile
    from supersmall.train import attach_callbacks, make_trainer, training_rows
    from supersmall.trl_args import grpo_config_kwargs

    profile = load_profile("tiny", **{"train.steps": args.steps})
    path = tiny.model_path("tiny")  # the shipped tiny model
    rows, _, _ = training_rows(profile, AutoTokenizer.from_pretrained(path))
    out = Path(tempfile.mkdtemp())
    no_saving = {"save_strategy": "no"}  # both sides: checkpoints are not what is timed
    print(f"tiny profile, {args.steps} steps x {profile.train.prompts_per_step} prompts x G={profile.train.num_generations}, "
          f"{torch.get_num_threads()} torch threads")

    threads = torch.get_num_threads()
    from transformers.trainer_callback import PrinterCallback

    def raw_trainer(i: int):
        """GRPOTrainer built by hand with the same config and the paper's reward, nothing of the kit's around it."""
        kwargs = grpo_config_kwargs(profile, str(out / f"raw{i}"), arm="no-kl", **no_saving)
        t = GRPOTrainer(model=AutoModelForCausalLM.from_pretrained(path), reward_funcs=reward,
                        args=GRPOConfig(**kwargs), processing_class=AutoTokenizer.from_pretrained(path),
                        train_dataset=Dataset.from_list([{k: v for k, v in r.items() if k != "solution"} for r in rows]))
        t.remove_callback(PrinterCallback)  # same console output as the kit (printing each step's dict costs time)
        return t

    def kit_trainer(i: int):
        """The kit's trainer: reasoning-rate metric, metrics.jsonl logging, progress bar (as train() builds it)."""
        t = make_trainer(profile, "no-kl", out / f"kit{i}", rows, path, **no_saving)
        log_path = out / f"metrics{i}.jsonl"

        def log(step, metrics):
            with log_path.open("a") as f:
                f.write(json.dumps({"step": step, **metrics}) + "\n")

        attach_callbacks(t, log, None, "kit", progress=False)
        return t

    reward = rewards.build_reward(profile.reward, profile.train.max_completion_length)
    raw_times, kit_times = [], []
    for i in range(2):  # alternate, so neither side profits from running second
        raw_times.append(timed_trl(raw_trainer(i), args.steps))
        torch.set_num_threads(threads)
        kit_times.append(timed_trl(kit_trainer(i), args.steps))
        torch.set_num_threads(threads)
    t_raw, t_kit = min(raw_times), min(kit_times)

    # the minimal loop
    model = AutoModelForCausalLM.from_pretrained(path)
    tok = AutoTokenizer.from_pretrained(path)
    opt = torch.optim.AdamW(model.parameters(), lr=profile.train.learning_rate)
    times, k = [], profile.train.prompts_per_step
    for step in range(args.steps):
        t0 = time.perf_counter()
        grpo.rollout_and_update(model, None, tok, opt, rows[step * k:(step + 1) * k], profile,
                                grpo.Objective(0.0, 0.0, reward))
        times.append(time.perf_counter() - t0)
    t_min = sum(times[3:]) / len(times[3:])
    print(f"raw GRPOTrainer: {t_raw:.3f} s/step (runs: {', '.join(f'{x:.3f}' for x in raw_times)})")
    print(f"kit TRL backend: {t_kit:.3f} s/step (runs: {', '.join(f'{x:.3f}' for x in kit_times)}); "
          f"overhead kit / raw: {t_kit / t_raw:.3f}x")
    print(f"minimal loop:    {t_min:.3f} s/step  (minimal / raw TRL: {t_min / t_raw:.3f}x)")
    print(flop_model_line(profile, t_raw))


if __name__ == "__main__":
    main()
