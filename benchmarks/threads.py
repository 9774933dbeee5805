"""Seconds for 5 steps of :func:`supersmall.grpo.rollout_and_update` on the tiny model at a given torch thread count,
the figure behind the kit's one-thread default (:func:`supersmall.runcard.use_threads`). Usage::

    python benchmarks/threads.py --threads 1            # alone
    yes > /dev/null & python benchmarks/threads.py --threads 2; kill %1   # beside one busy process
"""

from __future__ import annotations

import argparse
import time


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--threads", type=int, required=True)
    ap.add_argument("--steps", type=int, default=5)
    args = ap.parse_args()
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    from supersmall import grpo, rewards, tiny
    from supersmall.config import load_profile
    from supersmall.train import training_rows

    torch.set_num_threads(args.threads)
    profile = load_profile("tiny")
    path = tiny.model_path("tiny")
    tok = AutoTokenizer.from_pretrained(path)
    rows, _, _ = training_rows(profile, tok)
    model = AutoModelForCausalLM.from_pretrained(path)
    opt = torch.optim.AdamW(model.parameters(), lr=profile.train.learning_rate)
    objective = grpo.Objective(0.0, 0.0, rewards.build_reward(profile.reward, profile.train.max_completion_length))
    k = profile.train.prompts_per_step
    grpo.rollout_and_update(model, None, tok, opt, rows[:k], profile, objective)  # warm-up, not timed
    t0 = time.perf_counter()
    for step in range(1, args.steps + 1):
        grpo.rollout_and_update(model, None, tok, opt, rows[step * k:(step + 1) * k], profile, objective)
    print(f"{args.steps} minimal steps at {torch.get_num_threads()} torch thread(s): "
          f"{time.perf_counter() - t0:.1f} s")


if __name__ == "__main__":
    main()
