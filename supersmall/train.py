"""ZeroGRPO training: TRL's ``GRPOTrainer`` (default) or a minimal loop written to be read.

    card = train("tiny", arm="no-kl", steps=60, out_dir="runs/train/no-kl")
    card["metrics"]["base_accuracy"], card["metrics"]["final_accuracy"]

The paper's three arms (Table 3) are one switch:

    no-kl         ZeroGRPO: GRPO without the KL term (eq. 5)            beta = 0
    kl-nopenalty  KL as a loss term, k3 estimator (TRL beta > 0)        train.beta_kl_loss
    kl-penalty    KL subtracted from the reward, k1 (verl)              train.beta_kl_reward

A run writes ``metrics.jsonl`` (one line per step: the health metrics), checkpoints, the final
model under ``model/`` and a run card; rerunning the same command resumes from the last checkpoint,
and a complete run is not redone.
"""

from __future__ import annotations

import json
import math
import random
import shutil
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from supersmall import advantages, losses
from supersmall.config import Profile, load_profile
from supersmall.errors import UserError
from supersmall.runcard import is_complete, read_run_card, write_run_card

ARMS = ("no-kl", "kl-nopenalty", "kl-penalty")
BACKENDS = ("trl", "minimal")
TRL_LOSS_TYPES = ("grpo", "dapo", "bnpo", "dr_grpo")


# --- settings ----------------------------------------------------------------------------------------
def arm_betas(profile: Profile, arm: str) -> tuple[float, float]:
    """(beta for the KL loss term, beta for the KL-in-reward penalty) of an arm."""
    if arm not in ARMS:
        raise UserError(f"unknown arm {arm!r}; valid arms are: {', '.join(ARMS)}")
    t = profile.train
    return (t.beta_kl_loss if arm == "kl-nopenalty" else 0.0, t.beta_kl_reward if arm == "kl-penalty" else 0.0)


def grpo_config_kwargs(profile: Profile | str, output_dir: str, arm: str | None = None, **overrides: Any) -> dict:
    """The one translation of a profile into ``trl.GRPOConfig`` keyword arguments.

    ``per_device_train_batch_size`` counts *completions* in TRL: prompts_per_step x num_generations
    (divided by the number of processes at full scale, see :mod:`supersmall.launch`).
    """
    profile = load_profile(profile)
    t = profile.train
    beta_loss, _ = arm_betas(profile, arm or t.arm)
    if t.loss_type not in TRL_LOSS_TYPES:
        raise UserError(f"loss_type {t.loss_type!r} exists only in the minimal backend; TRL accepts "
                        f"{', '.join(TRL_LOSS_TYPES)} (use --backend minimal)")
    scale = {"std": "group"}.get(t.scale_rewards, t.scale_rewards)
    kwargs = dict(
        output_dir=output_dir,
        learning_rate=t.learning_rate,
        per_device_train_batch_size=t.prompts_per_step * t.num_generations,
        gradient_accumulation_steps=t.gradient_accumulation_steps,
        num_generations=t.num_generations,
        max_completion_length=t.max_completion_length,
        temperature=t.temperature,
        top_p=t.top_p,
        loss_type=t.loss_type,
        scale_rewards=scale,
        epsilon=t.clip_eps,
        epsilon_high=t.clip_eps_high if t.clip_eps_high is not None else t.clip_eps,
        beta=beta_loss,
        num_iterations=t.num_iterations,
        max_steps=t.steps,
        lr_scheduler_type=t.lr_scheduler_type,
        warmup_steps=t.warmup_ratio,  # transformers 5: a float < 1 is a ratio of max_steps
        weight_decay=t.weight_decay,
        max_grad_norm=t.max_grad_norm,
        optim=t.optimizer,
        seed=t.seed,
        logging_steps=t.logging_steps,
        save_steps=t.save_steps,
        save_only_model=False,
        bf16=t.bf16,
        gradient_checkpointing=t.gradient_checkpointing,
        shuffle_dataset=False,  # the kit orders the data itself (curriculum stages)
        report_to="none",
        disable_tqdm=True,
    )
    kwargs.update(overrides)
    return kwargs


def _device_kwargs() -> dict[str, Any]:
    import torch

    return {} if torch.cuda.is_available() else {"use_cpu": True}


# --- data and model ----------------------------------------------------------------------------------
def training_rows(profile: Profile, n_rows: int, seed: int, curriculum: str | None = None,
                  stages: str | None = None) -> tuple[list[dict[str, Any]], list[tuple[str, int, int]]]:
    """The prompts in the order training consumes them, and the curriculum stage boundaries."""
    per_step = profile.train.prompts_per_step
    if profile.data.train == "tiny":
        from supersmall import tiny

        pool = tiny.make_problems(max(400, n_rows // 5 + 1), split="train", seed=seed)
    else:  # pragma: no cover - full scale, needs the hub or a local copy
        from supersmall import data

        pool = data.train_rows(profile)
    if curriculum:
        from supersmall.curriculum import build_schedule

        plan = build_schedule(pool, stages or profile.curriculum.stages, schedule=curriculum,
                              prompts_per_step=per_step, seed=seed)
        return plan.rows, [tuple(b) for b in plan.boundaries]
    levels = _levels(profile.data.levels)
    pool = [r for r in pool if r.get("level") in levels] if levels else pool
    rng = random.Random(seed)
    rows = []
    while len(rows) < n_rows:
        rng.shuffle(pool)
        rows.extend(pool)
    return rows[:n_rows], []


def _levels(spec: str) -> set[int]:
    out: set[int] = set()
    for part in str(spec).split(","):
        part = part.strip()
        if not part:
            continue
        lo, _, hi = part.partition("-")
        out.update(range(int(lo), int(hi or lo) + 1))
    return out


def base_model_path(profile: Profile) -> str:
    if profile.model.name_or_path == "tiny":
        from supersmall import tiny

        return str(tiny.ensure_base_model())
    return profile.model.name_or_path


def _eval(model, tokenizer, profile: Profile) -> dict[str, Any]:
    """Greedy accuracy on the held-out split (tiny) with the profile's evaluation settings."""
    from supersmall import tiny
    from supersmall.evaluate import evaluate

    result = evaluate(model, tiny.test_problems(profile.eval.problems_per_level), tokenizer,
                      max_new_tokens=profile.eval.max_new_tokens, temperature=0.0, batch_size=profile.eval.batch_size,
                      progress=False, prompt_template="raw")
    s = result.summary
    return {"accuracy": s["accuracy"], "ci_low": s["ci_low"], "ci_high": s["ci_high"],
            "per_level": {k: v["accuracy"] for k, v in s["per_level"].items()},
            "reasoning_rate": s["reasoning_rate"], "truncation_rate": s["truncation_rate"],
            "samples": [(r["prompt"], r["completion"], r["correct"]) for r in result.records[::50]]}


# --- the readable loop -------------------------------------------------------------------------------
def sequence_logps(model, prompt_ids, prompt_mask, completion_ids, completion_mask, temperature: float = 1.0):
    """Per-token log pi(y_t | x, y_<t) of the completions, shape (B, T), and the per-token entropy.

    Position ids follow the attention mask (left-padded prompts), as ``generate`` used when sampling;
    logits are divided by the sampling temperature, as TRL does.
    """
    import torch

    input_ids = torch.cat([prompt_ids, completion_ids], dim=1)
    attention = torch.cat([prompt_mask.long(), completion_mask.long()], dim=1)
    position_ids = (attention.cumsum(-1) - 1).clamp(min=0)
    logits = model(input_ids=input_ids, attention_mask=attention, position_ids=position_ids).logits
    logits = logits[:, prompt_ids.size(1) - 1: -1] / temperature
    logprobs = torch.log_softmax(logits.float(), dim=-1)
    token_logp = logprobs.gather(-1, completion_ids.unsqueeze(-1)).squeeze(-1)
    entropy = -(logprobs.exp() * logprobs).sum(-1)
    return token_logp, entropy


def minimal_step(model, ref_model, tokenizer, optimizer, prompts: list[dict[str, Any]], profile: Profile, arm: str,
                 reward_funcs: list[Callable], reward_weights: list[float] | None = None) -> dict[str, float]:
    """One ZeroGRPO step: sample G per prompt, reward, group advantages, policy loss, update."""
    import torch

    t = profile.train
    G = t.num_generations
    beta_loss, beta_reward = arm_betas(profile, arm)
    # 1. sample G completions per prompt (prompts are short and equal-length per level; left padding)
    tokenizer.padding_side = "left"
    enc = tokenizer([p["prompt"] for p in prompts], return_tensors="pt", padding=True, add_special_tokens=False)
    prompt_ids = enc["input_ids"].repeat_interleave(G, dim=0)
    prompt_mask = enc["attention_mask"].repeat_interleave(G, dim=0)
    model.eval()
    with torch.no_grad():
        out = model.generate(input_ids=prompt_ids, attention_mask=prompt_mask, do_sample=True,
                             temperature=t.temperature, top_p=t.top_p, max_new_tokens=t.max_completion_length,
                             pad_token_id=tokenizer.pad_token_id, eos_token_id=tokenizer.eos_token_id)
    model.train()
    completion_ids = out[:, prompt_ids.size(1):]
    is_eos = completion_ids == tokenizer.eos_token_id
    first_eos = torch.where(is_eos.any(1), is_eos.float().argmax(1), torch.full_like(is_eos[:, 0], completion_ids.size(1),
                                                                                     dtype=torch.long))
    positions = torch.arange(completion_ids.size(1)).expand_as(completion_ids)
    completion_mask = (positions <= first_eos.unsqueeze(1)).long()  # keep the EOS token, as TRL does
    completion_ids = completion_ids.masked_fill(completion_mask == 0, tokenizer.pad_token_id)
    ids_list = [row[: int(m.sum())].tolist() for row, m in zip(completion_ids, completion_mask)]
    texts = [tokenizer.decode([i for i in ids if i != tokenizer.eos_token_id], skip_special_tokens=True)
             for ids in ids_list]
    # 2. rewards (the same reward functions TRL gets), summed with their weights
    rows = [p for p in prompts for _ in range(G)]
    columns = {k: [r[k] for r in rows] for k in rows[0] if k != "prompt"}
    weights = reward_weights or [1.0] * len(reward_funcs)
    per_func = [f(completions=texts, completion_ids=ids_list, prompts=[r["prompt"] for r in rows], **columns)
                for f in reward_funcs]
    rewards = torch.tensor([sum(w * fr[i] for w, fr in zip(weights, per_func)) for i in range(len(texts))])
    # 3. per-token log-probs under the policy (with gradient) and, for the KL arms, the reference
    logp, entropy = sequence_logps(model, prompt_ids, prompt_mask, completion_ids, completion_mask, t.temperature)
    ref_logp = None
    if beta_loss or beta_reward:
        with torch.no_grad():
            ref_logp, _ = sequence_logps(ref_model, prompt_ids, prompt_mask, completion_ids, completion_mask,
                                         t.temperature)
    if beta_reward:  # kl-penalty arm: r <- r - beta * sum_t k1 (before the advantages)
        k1 = losses.kl_estimate(logp.detach(), ref_logp, "k1") * completion_mask
        rewards = losses.kl_in_reward(rewards, k1.sum(-1), beta_reward)
    # 4. group-relative advantages (eq. 2 / eq. 5)
    adv = advantages.group_advantages(rewards, G, scale=t.scale_rewards)
    # 5. the policy loss: one update per batch, so old_logp = logp.detach() and the ratio is 1
    loss, metrics = losses.policy_loss(logp, logp.detach(), adv, completion_mask, clip_eps=t.clip_eps,
                                       aggregation=t.loss_type, ref_logp=ref_logp if beta_loss else None,
                                       beta=beta_loss, group_size=G, max_length=t.max_completion_length,
                                       clip_eps_high=t.clip_eps_high)
    optimizer.zero_grad()
    loss.backward()
    grad_norm = torch.nn.utils.clip_grad_norm_(model.parameters(), t.max_grad_norm)
    optimizer.step()
    lengths = completion_mask.sum(1).float()
    truncated = ~is_eos.any(1)
    from supersmall.evaluate import reasoned

    return {"loss": float(loss.detach()), "reward": float(rewards.mean()), "reward_std": float(rewards.std()),
            "frac_reward_zero_std": advantages.zero_std_fraction(rewards, G),
            "clipped_ratio": float(truncated.float().mean()), "completion_length": float(lengths.mean()),
            "reasoning_rate": sum(reasoned(x) for x in texts) / len(texts),
            "entropy": float((entropy.detach() * completion_mask).sum() / completion_mask.sum()),
            "grad_norm": float(grad_norm), **({"kl": metrics["kl"]} if "kl" in metrics else {}),
            "clip_fraction": metrics["clip_fraction"]}


def _latest_checkpoint(out: Path) -> Path | None:
    found = sorted(out.glob("checkpoint-*"), key=lambda p: int(p.name.split("-")[1]) if p.name.split("-")[1].isdigit()
                   else -1)
    return found[-1] if found else None


def _train_minimal(profile, arm, out, rows, reward_funcs, weights, progress, log, on_step=None) -> tuple[Any, Any, int]:
    import torch
    from tqdm.auto import tqdm
    from transformers import AutoModelForCausalLM, AutoTokenizer

    t = profile.train
    ckpt = _latest_checkpoint(out)
    start = int(ckpt.name.split("-")[1]) if ckpt else 0
    source = str(ckpt) if ckpt else base_model_path(profile)
    model = AutoModelForCausalLM.from_pretrained(source)
    tokenizer = AutoTokenizer.from_pretrained(source)
    ref_model = None
    if any(arm_betas(profile, arm)):
        ref_model = AutoModelForCausalLM.from_pretrained(base_model_path(profile)).eval()
    optimizer = torch.optim.AdamW(model.parameters(), lr=t.learning_rate, weight_decay=t.weight_decay)
    if ckpt:
        optimizer.load_state_dict(torch.load(ckpt / "optimizer.pt"))
        torch.set_rng_state(torch.load(ckpt / "rng.pt"))
        print(f"resuming from {ckpt.name}: step {start} of {t.steps}")
    else:
        torch.manual_seed(t.seed)
    per_step = t.prompts_per_step
    bar = tqdm(range(start, t.steps), desc=f"ZeroGRPO minimal ({arm})", disable=not progress, initial=start,
               total=t.steps)
    for step in bar:
        batch = rows[step * per_step: (step + 1) * per_step]
        m = minimal_step(model, ref_model, tokenizer, optimizer, batch, profile, arm, reward_funcs, weights)
        log(step + 1, m)
        if on_step is not None:
            on_step(step + 1, model, tokenizer)
        bar.set_postfix(reward=f"{m['reward']:.2f}", reasoning=f"{m['reasoning_rate']:.2f}")
        if t.save_steps and (step + 1) % t.save_steps == 0 and step + 1 < t.steps:
            d = out / f"checkpoint-{step + 1}"
            model.save_pretrained(d)
            tokenizer.save_pretrained(d)
            torch.save(optimizer.state_dict(), d / "optimizer.pt")
            torch.save(torch.get_rng_state(), d / "rng.pt")
    return model, tokenizer, start


# --- the TRL backend ---------------------------------------------------------------------------------
def _kl_reward_func(trainer_ref: dict, beta: float) -> Callable:
    """A reward function that returns -beta * sum_t k1 (the kl-penalty arm), summed into the reward by TRL."""
    import torch

    def kl_penalty(prompts, completions, completion_ids, **kwargs):
        trainer = trainer_ref["trainer"]
        tok = trainer.processing_class
        device = trainer.accelerator.device
        tok.padding_side = "left"
        enc = tok(list(prompts), return_tensors="pt", padding=True, add_special_tokens=False).to(device)
        width = max(len(c) for c in completion_ids)
        ids = torch.tensor([list(c) + [tok.pad_token_id] * (width - len(c)) for c in completion_ids], device=device)
        mask = torch.tensor([[1] * len(c) + [0] * (width - len(c)) for c in completion_ids], device=device)
        with torch.no_grad():
            logp, _ = sequence_logps(trainer.model, enc["input_ids"], enc["attention_mask"], ids, mask)
            ref, _ = sequence_logps(trainer_ref["ref_model"], enc["input_ids"], enc["attention_mask"], ids, mask)
        k1_sum = (losses.kl_estimate(logp, ref, "k1") * mask).sum(-1)
        return losses.kl_in_reward(torch.zeros_like(k1_sum), k1_sum, beta).tolist()

    kl_penalty.__name__ = "kl_penalty"
    return kl_penalty


def make_trainer(profile: Profile, arm: str, out: Path, rows: list[dict[str, Any]], model_path: str | None = None,
                 **config_overrides: Any):
    """A ``GRPOTrainer`` for the profile and arm (``kl-penalty`` adds the KL-in-reward term)."""
    from datasets import Dataset
    from transformers import AutoModelForCausalLM, AutoTokenizer
    from trl import GRPOConfig, GRPOTrainer

    from supersmall import rewards

    model_path = model_path or base_model_path(profile)
    reward_funcs = rewards.build_reward(profile.reward, profile.train.max_completion_length,
                                        think_prefilled=profile.model.think_prefill)
    weights = list(rewards.reward_weights(profile.reward) or [1.0] * len(reward_funcs))
    reward_funcs.append(rewards.reasoning_rate)  # logged as a metric only (weight 0)
    weights.append(0.0)
    _, beta_reward = arm_betas(profile, arm)
    holder: dict[str, Any] = {}
    if beta_reward:
        reward_funcs.append(_kl_reward_func(holder, beta_reward))
        weights.append(1.0)
    kwargs = grpo_config_kwargs(profile, str(out), arm=arm, reward_weights=weights, **_device_kwargs())
    if profile.launch.num_gpus > 0:  # full scale: processes, vLLM and precision from the launch plan
        from supersmall.launch import trl_overrides

        kwargs.update(trl_overrides(profile))
    kwargs.update(config_overrides)
    config = GRPOConfig(**kwargs)
    tokenizer = AutoTokenizer.from_pretrained(model_path)
    model = AutoModelForCausalLM.from_pretrained(model_path)
    dataset = Dataset.from_list([{k: v for k, v in r.items() if k != "solution"} for r in rows])
    trainer = GRPOTrainer(model=model, reward_funcs=reward_funcs, args=config, train_dataset=dataset,
                          processing_class=tokenizer)
    if beta_reward:
        holder["trainer"] = trainer
        holder["ref_model"] = AutoModelForCausalLM.from_pretrained(base_model_path(profile)).eval()
    return trainer


TRL_METRICS = {"loss": "loss", "reward": "reward", "reward_std": "reward_std",
               "frac_reward_zero_std": "frac_reward_zero_std", "completions/clipped_ratio": "clipped_ratio",
               "completions/mean_length": "completion_length", "rewards/reasoning_rate/mean": "reasoning_rate",
               "entropy": "entropy", "grad_norm": "grad_norm", "kl": "kl", "clip_ratio/region_mean": "clip_fraction"}


def attach_callbacks(trainer, arm: str, log, progress: bool = True, on_step=None) -> None:
    """The kit's additions to a ``GRPOTrainer``: metrics.jsonl logging, a tqdm bar, per-stage hooks."""
    from transformers import TrainerCallback
    from transformers.trainer_callback import PrinterCallback

    class _Log(TrainerCallback):
        def on_log(self, args, state, control, logs=None, **kw):
            if logs and "reward" in logs:
                log(state.global_step, {ours: logs[theirs] for theirs, ours in TRL_METRICS.items() if theirs in logs})

    class _Bar(TrainerCallback):
        def on_train_begin(self, args, state, control, **kw):
            from tqdm.auto import tqdm

            self.bar = tqdm(total=state.max_steps, initial=state.global_step, desc=f"ZeroGRPO trl ({arm})",
                            disable=not progress)

        def on_step_end(self, args, state, control, **kw):
            self.bar.update(state.global_step - self.bar.n)
            if on_step is not None:
                on_step(state.global_step, kw["model"], trainer.processing_class)

        def on_train_end(self, args, state, control, **kw):
            self.bar.close()

    trainer.remove_callback(PrinterCallback)  # our bar and metrics.jsonl replace the per-step dict prints
    trainer.add_callback(_Log())
    trainer.add_callback(_Bar())


def _train_trl(profile, arm, out, rows, progress, log, on_step=None):
    from transformers.trainer_utils import get_last_checkpoint

    trainer = make_trainer(profile, arm, out, rows)
    attach_callbacks(trainer, arm, log, progress, on_step)
    last = get_last_checkpoint(str(out)) if out.exists() else None
    start = 0
    if last:
        start = int(Path(last).name.split("-")[1])
        print(f"resuming from {Path(last).name}: step {start} of {profile.train.steps}")
    trainer.train(resume_from_checkpoint=last)
    return trainer.model, trainer.processing_class, start


# --- the entry point ---------------------------------------------------------------------------------
def train(
    profile: Profile | str = "tiny",
    arm: str | None = None,
    steps: int | None = None,
    seed: int | None = None,
    backend: str | None = None,
    out_dir: str | Path = "runs/train",
    curriculum: str | None = None,
    stages: str | None = None,
    resume: bool = True,
    progress: bool = True,
    evaluate_model: bool = True,
    live: int = 0,
    **overrides: Any,
) -> dict[str, Any]:
    """Train one run and return its run card (see the module docstring). ``overrides`` are dotted
    profile keys, e.g. ``train(**{"train.beta_kl_loss": 1.0})``. ``live=N`` redraws the health panel
    every N steps in a notebook."""
    profile = load_profile(profile, **overrides)
    t = profile.train
    arm = arm or t.arm
    backend = backend or t.backend
    if backend not in BACKENDS:
        raise UserError(f"unknown backend {backend!r}; valid backends are: {', '.join(BACKENDS)}")
    arm_betas(profile, arm)
    profile = profile.replace(**{"train.arm": arm, "train.backend": backend,
                                 **({"train.steps": steps} if steps is not None else {}),
                                 **({"train.seed": seed} if seed is not None else {})})
    if curriculum:
        from supersmall.curriculum import parse_stages

        stage_list = parse_stages(stages or profile.curriculum.stages)
        profile = profile.replace(**{"train.steps": sum(s.steps for s in stage_list),
                                     "curriculum.schedule": curriculum,
                                     "curriculum.stages": stages or profile.curriculum.stages})
    t = profile.train
    out = Path(out_dir)
    if resume and is_complete(out):
        card = read_run_card(out)
        if card.get("config") == json.loads(json.dumps(profile.to_dict())):
            print(f"{out} is complete (run card found): not retraining; delete the folder to rerun")
            return card
        raise UserError(f"{out} holds a finished run with another config: choose another --out or delete it")
    if not resume and out.exists():
        shutil.rmtree(out)
    out.mkdir(parents=True, exist_ok=True)
    rows, boundaries = training_rows(profile, t.steps * t.prompts_per_step, t.seed, curriculum,
                                     stages or profile.curriculum.stages)
    write_run_card(out, kind="train", config=profile, seed=t.seed, status="running",
                   extra={"arm": arm, "backend": backend, "stages": boundaries})
    metrics_path = out / "metrics.jsonl"

    def log(step: int, m: dict[str, float]) -> None:
        with metrics_path.open("a") as f:
            f.write(json.dumps({"step": step, **{k: (None if isinstance(v, float) and math.isnan(v) else v)
                                                   for k, v in m.items()}}) + "\n")
        if live and (step % live == 0 or step == t.steps):
            _redraw_health(out, profile, arm, step)

    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    base_path = base_model_path(profile)
    base_metrics = None
    if evaluate_model and profile.model.name_or_path == "tiny":
        base_metrics = _eval(AutoModelForCausalLM.from_pretrained(base_path), AutoTokenizer.from_pretrained(base_path),
                             profile)
    threads = torch.get_num_threads()
    stage_ends = {end: name for name, _, end in boundaries}
    per_stage: list[dict[str, Any]] = []
    eval_seconds = [0.0]

    def on_step(step: int, model, tokenizer) -> None:  # accuracy after each curriculum stage
        if base_metrics is not None and step in stage_ends:
            t_eval = time.time()
            r = _eval(model, tokenizer, profile)
            per_stage.append({"stage": stage_ends[step], "step": step, "accuracy": r["accuracy"],
                              "per_level": r["per_level"]})
            eval_seconds[0] += time.time() - t_eval

    t0 = time.time()
    if backend == "minimal":
        from supersmall import rewards

        funcs = rewards.build_reward(profile.reward, t.max_completion_length)
        model, tokenizer, start = _train_minimal(profile, arm, out, rows, funcs, rewards.reward_weights(profile.reward),
                                                 progress, log, on_step)
    else:
        model, tokenizer, start = _train_trl(profile, arm, out, rows, progress, log, on_step)
    train_seconds = time.time() - t0 - eval_seconds[0]
    model.save_pretrained(out / "model")
    tokenizer.save_pretrained(out / "model")
    metrics: dict[str, Any] = {"train_seconds": round(train_seconds, 2),
                               "seconds_per_step": round(train_seconds / max(1, t.steps - start), 4),
                               "steps": t.steps, "resumed_from_step": start}
    if base_metrics is not None:
        final = _eval(model, tokenizer, profile)
        metrics.update({"base_accuracy": base_metrics["accuracy"], "final_accuracy": final["accuracy"],
                        "final_ci_low": final["ci_low"], "final_ci_high": final["ci_high"],
                        "base_ci_low": base_metrics["ci_low"], "base_ci_high": base_metrics["ci_high"],
                        "per_level_base": base_metrics["per_level"], "per_level_final": final["per_level"],
                        "reasoning_rate_base": base_metrics["reasoning_rate"],
                        "reasoning_rate_final": final["reasoning_rate"],
                        "samples_base": base_metrics["samples"], "samples_final": final["samples"]})
        if per_stage:
            metrics["per_stage"] = per_stage
    for ckpt in out.glob("checkpoint-*"):  # the final model is saved; checkpoints were only for resuming
        shutil.rmtree(ckpt, ignore_errors=True)
    return write_run_card(out, kind="train", config=profile, seed=t.seed, metrics=metrics,
                          timings={"train_seconds": round(train_seconds, 2), "torch_threads": threads},
                          extra={"arm": arm, "backend": backend, "stages": boundaries, "model_dir": str(out / "model")})


def _redraw_health(out: Path, profile: Profile, arm: str, step: int) -> None:
    """Replace the cell's output with the current health panel (notebooks only)."""
    import matplotlib.pyplot as plt
    from IPython.display import clear_output, display

    from supersmall import plots

    beta_loss, beta_reward = arm_betas(profile, arm)
    clear_output(wait=True)
    fig = plots.health(read_metrics(out), beta=beta_loss or beta_reward, show=False,
                       max_completion_length=profile.train.max_completion_length,
                       title=f"{arm}: step {step} of {profile.train.steps}")
    display(fig)
    plt.close(fig)


def read_metrics(out_dir: str | Path) -> list[dict[str, Any]]:
    """The per-step health metrics of a run (``metrics.jsonl``)."""
    path = Path(out_dir) / "metrics.jsonl"
    return [json.loads(line) for line in path.read_text().splitlines() if line.strip()] if path.exists() else []
