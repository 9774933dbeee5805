"""Training as a short pipeline of named stages; TRL's ``GRPOTrainer`` (default) or the readable loop in
:mod:`supersmall.grpo` does the work.

    card = train("tiny", arm="no-kl", steps=60, out_dir="runs/train/no-kl")

    resolve the profile -> data and schedule -> backend (TRL or grpo.py) -> callbacks -> model + run card

The paper's three arms (Table 3) are one switch: ``no-kl`` (ZeroGRPO, eq. 5, beta = 0),
``kl-nopenalty`` (KL as a loss term, k3, TRL's beta) and ``kl-penalty`` (k1 KL subtracted from the
reward, verl's ``use_kl_in_reward``). A run writes ``metrics.jsonl`` (one line per logged step),
checkpoints, the final model under ``model/`` (under LoRA the merged model, with the adapter in ``adapter/``:
:func:`save_trained_model`) and a run card, from rank 0 only when several processes train. A run folder is locked while a run writes it; rerunning the same command resumes from the last
checkpoint, a complete run of the same config and code version is not redone, and ``resume=False``
deletes the earlier run's model, checkpoints and metrics first (:func:`prepare_run_folder`). Several runs
at once: :func:`supersmall.pool.train_many`.
"""

from __future__ import annotations

import contextlib
import shutil
import sys
import time
import warnings
from collections.abc import Callable
from pathlib import Path
from typing import Any

import datasets
import torch
import transformers
from datasets import Dataset
from peft import LoraConfig, PeftModel
from tqdm.auto import tqdm
from transformers import AutoModelForCausalLM, AutoTokenizer, TrainerCallback
from transformers.trainer_callback import PrinterCallback
from trl import GRPOConfig

from supersmall import grpo, rewards, vllm_cpu
from supersmall.config import Profile, load_profile
from supersmall.curriculum import build_schedule, parse_stages
from supersmall.data import drop_long_prompts, train_rows
from supersmall.errors import UserError
from supersmall.evaluate import model_path, run_eval, tiny_rows
from supersmall.evaluation import Evaluation
from supersmall.runcard import (
    RunLock,
    append_metrics,
    check_run_folder,
    checkpoint_step,
    checkpoints,
    code_version,
    is_main_process,
    latest_checkpoint,
    read_run_card,
    reuse_decision,
    trim_metrics,
    use_threads,
    write_run_card,
)
from supersmall.tiny import make_problems
from supersmall.trl_args import TRL_METRICS, arm_betas, grpo_config_kwargs, lora_config_kwargs
from supersmall.trl_kl import KLPenaltyTrainer, OutcomeSplitTrainer, kl_penalty

BACKENDS = ("trl", "minimal")
ADAPTER_DIR = "adapter"  # a LoRA run's adapter, beside the merged model/ (save_trained_model)
MetricsCallback = Callable[..., None]  # (step, metrics, total) -> None, e.g. plots.LiveHealth


# --- stage 1: the profile -------------------------------------------------------------------------------
def resolve(profile: Profile | str, arm: str | None, steps: int | None, seed: int | None, backend: str | None,
            curriculum: str | None, stages: str | None, overrides: dict[str, Any]) -> Profile:
    """The profile with the run's arm, backend, steps, seed and curriculum written in (validated). ``stages``
    without ``curriculum`` trains that curriculum on the profile's schedule (never ignored)."""
    p = load_profile(profile, **overrides)
    backend = backend or p.train.backend
    if backend not in BACKENDS:
        raise UserError(f"unknown backend {backend!r}; valid backends are: {', '.join(BACKENDS)}")
    arm_betas(p, arm or p.train.arm)
    sets: dict[str, Any] = {"train.arm": arm or p.train.arm, "train.backend": backend}
    if steps is not None:
        sets["train.steps"] = steps
    if seed is not None:
        sets["train.seed"] = seed
    if curriculum or stages:  # stages alone: the profile's schedule; validated first, then they set the steps
        p = p.replace(**{"curriculum.schedule": curriculum or p.curriculum.schedule,
                         "curriculum.stages": stages or p.curriculum.stages})
        sets["train.steps"] = sum(s.steps for s in parse_stages(p.curriculum.stages))
    p = p.replace(**sets)
    if p.train.lora_rank and p.train.arm == "kl-penalty":  # before any model loads (TRL would fail at the first step);
        # replicate's plans report the same in launch.validate
        raise UserError(f"train.lora_rank = {p.train.lora_rank} with the kl-penalty arm: the kl-penalty arm needs a "
                        "separate reference model, which LoRA does not build (TRL disables the adapters instead); use "
                        "another arm or set train.lora_rank=0")
    return p


# --- stage 2: data and schedule ----------------------------------------------------------------------
def training_rows(profile: Profile, tokenizer: Any, curriculum: bool = False) -> tuple[list[dict], list, dict]:
    """The prompts in the order training consumes them, the curriculum stage boundaries, and counts of what
    was left out (bad difficulty rows, prompts over ``max_prompt_length``)."""
    t = profile.train
    counts: dict[str, int] = {}
    if profile.data.train == "tiny":
        pool = tiny_rows(make_problems(max(400, t.steps * t.prompts_per_step // 5 + 1), split="train", seed=t.seed),
                         profile)
    else:  # rank 0 prepares the datasets cache first, then the other ranks read it (no race on the cache)
        from accelerate import PartialState

        with PartialState().main_process_first():
            pool = train_rows(profile, counts)
    pool, counts["prompt_too_long"] = drop_long_prompts(pool, tokenizer, t.max_prompt_length)
    if not curriculum:  # one stage on data.levels
        stage_spec = f"{profile.data.levels.replace(',', '+')}:{t.steps}"
        plan = build_schedule(pool, stage_spec, "staged", t.prompts_per_step, seed=t.seed)
        return plan.rows, [], counts
    plan = build_schedule(pool, profile.curriculum.stages, profile.curriculum.schedule, t.prompts_per_step, t.seed)
    return plan.rows, [list(b) for b in plan.boundaries], counts


# --- stage 3: the reward, the same for both backends -------------------------------------------------------
def reward_functions(profile: Profile) -> tuple[list[Callable], list[float]]:
    """The reward both backends train on: the profile's functions (:func:`supersmall.rewards.build_reward`,
    told whether the chat template opens ``<think>``) and their weights (Open-RS's from ``paper.yaml``)."""
    funcs = rewards.build_reward(profile.reward, profile.train.max_completion_length,
                                 think_prefilled=profile.model.think_prefill)
    return funcs, rewards.reward_weights(profile.reward) or [1.0] * len(funcs)


# --- stage 3: the TRL backend (the kl-penalty arm: supersmall.trl_kl) ---------------------------------
def make_trainer(profile: Profile, arm: str, out: Path, rows: list[dict[str, Any]], model_path_: str,
                 **config_overrides: Any):
    """A ``GRPOTrainer`` for the profile and arm (:class:`OutcomeSplitTrainer`; ``kl-penalty``:
    :class:`KLPenaltyTrainer`). Beside the reward (:func:`reward_functions`) TRL logs the reasoning rate and the
    grader's verdict (``correct``, for the groups all correct / all wrong), both weight 0, and, for kl-penalty,
    gets the :func:`kl_penalty` column (weight 1)."""
    funcs, weights = reward_functions(profile)
    funcs, weights = [*funcs, rewards.reasoning_rate, rewards.correct_column(profile.reward)], [*weights, 0.0, 0.0]
    beta_loss, beta_reward = arm_betas(profile, arm)
    if beta_reward:
        funcs, weights = [*funcs, kl_penalty], [*weights, 1.0]
    config = GRPOConfig(**grpo_config_kwargs(profile, str(out), arm=arm, reward_weights=weights, **config_overrides))
    if config.use_vllm and config.vllm_mode == "colocate":
        vllm_cpu.keep_unpacked_weights()  # CPU only (no CUDA): vLLM keeps the weights TRL syncs each step
    model = AutoModelForCausalLM.from_pretrained(model_path_, dtype=getattr(torch, profile.model.dtype),
                                                 attn_implementation=profile.model.attn_implementation)
    dataset = Dataset.from_list([{k: v for k, v in r.items() if k != "solution"} for r in rows])
    lora = lora_config_kwargs(profile)
    peft = {"peft_config": LoraConfig(**lora)} if lora else {}  # LoRA: peft is a dependency of the kit
    trainer = (KLPenaltyTrainer if beta_reward else OutcomeSplitTrainer)(model=model, reward_funcs=funcs, args=config,
                                                                train_dataset=dataset, **peft,
                                                                processing_class=AutoTokenizer.from_pretrained(model_path_))
    if beta_reward:  # the penalty's own coefficient; a KL loss too only with train.kl_penalty_loss (paper reading)
        trainer.kl_reward_beta, trainer.kl_loss_beta = beta_reward, beta_loss
    return trainer


def attach_callbacks(trainer, log: Callable[[int, dict], None], on_step: Callable | None, label: str,
                     progress: bool = True) -> None:
    """metrics.jsonl (rank 0), a tqdm bar, and per-step hooks; TRL's per-step dict prints are removed."""
    class _Kit(TrainerCallback):
        def on_train_begin(self, args, state, control, **kw):
            self.bar = tqdm(total=state.max_steps, initial=state.global_step, desc=label,
                            disable=not (progress and state.is_world_process_zero))

        def on_log(self, args, state, control, logs=None, **kw):
            if logs and "reward" in logs:
                log(state.global_step, {ours: logs[theirs] for theirs, ours in TRL_METRICS.items() if theirs in logs})

        def on_step_end(self, args, state, control, **kw):
            self.bar.update(state.global_step - self.bar.n)
            if on_step is not None:
                on_step(state.global_step, kw["model"], trainer.processing_class)

        def on_train_end(self, args, state, control, **kw):
            self.bar.close()

    trainer.remove_callback(PrinterCallback)
    trainer.add_callback(_Kit())


def _train_trl(profile, arm, out, rows, start_model, log, on_step, progress):
    trainer = make_trainer(profile, arm, out, rows, start_model)
    attach_callbacks(trainer, log, on_step, f"GRPO ({arm}, TRL)", progress)
    last = latest_checkpoint(out)
    if last:
        print(f"resuming from {last.name} of {profile.train.steps} steps")
    trainer.train(resume_from_checkpoint=str(last) if last else None)
    save_trained_model(trainer, out, start_model, profile)
    return trainer.model, trainer.processing_class, checkpoint_step(last)


def save_trained_model(trainer, out: Path, start_model: str, profile: Profile) -> None:
    """The run's model into ``out/model``, a folder transformers and vLLM load (``config.json`` + weights).

    Full fine-tuning: TRL's ``save_model`` (rank 0 writes; DeepSpeed's shards are gathered). LoRA: ``save_model``
    writes only the adapter, which neither vLLM's evaluation nor the next curriculum stage can start from; so the
    adapter goes to ``out/adapter`` and rank 0 writes the MERGED model to ``out/model`` (:func:`merge_adapter`:
    the start model plus the saved adapter, merged by peft's ``merge_and_unload`` on a fresh CPU copy, so the
    GPU's memory is untouched and what is merged is the adapter on disk)."""
    if not profile.train.lora_rank:
        trainer.save_model(str(out / "model"))  # rank 0 writes (TRL / transformers)
        trainer.accelerator.wait_for_everyone()
        return
    trainer.save_model(str(out / ADAPTER_DIR))  # rank 0 writes adapter_config.json + adapter_model.safetensors
    trainer.accelerator.wait_for_everyone()
    if trainer.accelerator.is_main_process:
        merge_adapter(start_model, out / ADAPTER_DIR, out / "model", dtype=profile.model.dtype)
    trainer.accelerator.wait_for_everyone()


def merge_adapter(base: str | Path, adapter: str | Path, model_dir: str | Path, dtype: str = "float32") -> Path:
    """Write ``base`` + the LoRA ``adapter`` merged into one plain model at ``model_dir`` (W + (alpha/r) B A for
    every adapted matrix, peft's ``merge_and_unload``), with the adapter's tokenizer; loaded on the CPU in the
    profile's ``dtype`` (the dtype the base trained in). The merged model's logits equal the adapted model's (up to
    the dtype's rounding), so a curriculum stage started from it begins where this one ended."""
    model = AutoModelForCausalLM.from_pretrained(str(base), dtype=getattr(torch, dtype), device_map="cpu")
    merged = PeftModel.from_pretrained(model, str(adapter)).merge_and_unload()
    merged.save_pretrained(str(model_dir))
    AutoTokenizer.from_pretrained(str(adapter)).save_pretrained(str(model_dir))
    return Path(model_dir)


def _train_minimal(profile, arm, out, rows, start_model, log, on_step, progress):
    def after_step(step: int, m: dict[str, float], model, tokenizer) -> None:
        log(step, m)
        if on_step is not None:
            on_step(step, model, tokenizer)

    objective = grpo.Objective(*arm_betas(profile, arm), *reward_functions(profile))
    model, tokenizer, start = grpo.train_loop(start_model, profile, out, rows, objective, after_step, progress)
    model.save_pretrained(out / "model")
    tokenizer.save_pretrained(out / "model")
    return model, tokenizer, start


# --- the run folder -----------------------------------------------------------------------------------------
def prepare_run_folder(out: Path, profile: Profile, resume: bool) -> dict[str, Any] | None:
    """Make ``out`` ready for this run; return the card of a finished run to reuse instead, else None.

    ``resume=False`` DELETES the earlier run's ``model/``, its evaluations (``eval/``), every checkpoint and
    ``metrics.jsonl`` (the run starts over). Otherwise :func:`supersmall.runcard.reuse_decision` decides: a finished run of the same config
    and code version is reused (its card is returned); one of older code is trained again (its ``metrics.jsonl``
    is DELETED); a run of another config, finished or not, is a :class:`UserError` (never continued or reused
    silently); an unfinished run of this config is resumed from its last checkpoint.
    """
    try:
        card = read_run_card(out)
    except FileNotFoundError:
        card = None
    if not resume:  # start over: the evaluations of the earlier model go too (run_eval refuses other settings)
        for old in [out / "model", out / ADAPTER_DIR, out / "eval", *checkpoints(out)]:
            shutil.rmtree(old, ignore_errors=True)
        (out / "metrics.jsonl").unlink(missing_ok=True)
        return None
    decision = reuse_decision(card, profile)  # the one policy (runcard.reuse_decision's table)
    if decision.action == "refuse":
        raise UserError(f"{out} {decision.reason}")
    if decision.action == "retrain":
        print(f"{out}: {decision.reason}")
        (out / "metrics.jsonl").unlink(missing_ok=True)
    elif decision.action == "reuse":
        print(f"{out} {decision.reason}")
        return card
    return None


def reusable_card(profile: Profile | str = "tiny", arm: str | None = None, steps: int | None = None,
                  seed: int | None = None, backend: str | None = None, out_dir: str | Path = "runs/train",
                  curriculum: str | None = None, stages: str | None = None, resume: bool = True,
                  **kwargs: Any) -> dict[str, Any] | None:
    """The card of the complete run in ``out_dir`` that :func:`train` (same arguments) would reuse: same config,
    same code. None when it would train; read-only (``train`` itself clears what it retrains). Dotted keys in
    ``kwargs`` are profile overrides; :func:`train`'s other arguments are ignored here."""
    if not resume:
        return None
    overrides = {k: v for k, v in kwargs.items() if "." in k}
    p = resolve(profile, arm, steps, seed, backend, curriculum, stages, overrides)
    try:
        card = read_run_card(Path(out_dir))
    except FileNotFoundError:
        return None
    return card if reuse_decision(card, p).action == "reuse" else None


# --- the entry point ---------------------------------------------------------------------------------------
def train(profile: Profile | str = "tiny", arm: str | None = None, steps: int | None = None, seed: int | None = None,
          backend: str | None = None, out_dir: str | Path = "runs/train", curriculum: str | None = None,
          stages: str | None = None, model: str | None = None, resume: bool = True, progress: bool = True,
          evaluate_model: bool = True, evaluate_base: bool = False, callbacks: list[MetricsCallback] | None = None,
          **overrides: Any) -> dict[str, Any]:
    """Train one run and return its run card (see the module docstring). ``overrides`` are dotted profile
    keys (``train(**{"train.beta_kl_loss": 1.0})``); ``model`` starts from another model (a curriculum
    stage from the previous stage's); ``callbacks`` get ``(step, metrics, total)`` after each logged step
    (``plots.LiveHealth`` draws the health panel live); ``evaluate_model`` evaluates the final model (and
    each curriculum stage) with :func:`supersmall.evaluate.run_eval` into ``out_dir/eval``;
    ``evaluate_base`` also evaluates the start model (``eval/base``) and records the gain (:func:`gain`)."""
    profile = resolve(profile, arm, steps, seed, backend, curriculum, stages, overrides)
    t, out, main = profile.train, check_run_folder(out_dir), is_main_process()
    with RunLock(out) if main else contextlib.nullcontext():
        done = prepare_run_folder(out, profile, resume) if main else None
        if done is not None:
            return done
        start_model = model_path(model or profile.model.name_or_path)
        rows, boundaries, counts = training_rows(profile, AutoTokenizer.from_pretrained(start_model),
                                                 curriculum=bool(curriculum or stages))
        extra = {"arm": t.arm, "backend": t.backend, "stages": boundaries, "start_model": start_model,
                 "left_out": counts, "code_version": code_version()}
        if main:
            write_run_card(out, kind="train", config=profile, seed=t.seed, status="running", extra=extra)
            trim_metrics(out, checkpoint_step(latest_checkpoint(out)))  # resuming: drop lines logged after it
        listeners = list(callbacks or [])

        def log(step: int, m: dict[str, float]) -> None:
            if main:  # "time": the run's own clock when the step ended (the canary's step time)
                append_metrics(out, step, {**m, "time": round(time.time(), 3)})
                for cb in listeners:
                    cb(step, m, t.steps)

        stage_ends = {end: name for name, _, end in boundaries}
        evals: dict[str, Any] = {}

        def on_step(step: int, mdl, tok) -> None:  # accuracy after each curriculum stage
            if evaluate_model and main and step in stage_ends:
                evals[stage_ends[step]] = _evaluate(mdl, tok, profile, out, stage_ends[step])

        t0 = time.time()
        fit = _train_trl if t.backend == "trl" else _train_minimal
        mdl, tok, start = fit(profile, t.arm, out, rows, start_model, log, on_step, progress)
        seconds = time.time() - t0
        if not main:
            return {}
        if evaluate_model and not boundaries:  # LoRA or vLLM: the saved model/ (what the next stage and vLLM load)
            saved = t.lora_rank or profile.eval.backend == "vllm"
            evals["final"] = _evaluate(str(out / "model") if saved else mdl, tok, profile, out, "final")
        if evaluate_model and evaluate_base:
            run_eval(start_model, profile, out / "eval" / "base", progress=False,
                     meta={"role": "base", "seed": t.seed, "stage": "base"})
            evals = {**evals, **gain(out, "final" if "final" in evals else boundaries[-1][0])}
        return _complete(out, profile, seconds, start, evals, extra)


def _evaluate(model, tokenizer, profile: Profile, out: Path, stage: str) -> float:
    """Held-out accuracy of the model in hand (a curriculum stage's or the final one) into ``out/eval/stage``."""
    t = profile.train
    return run_eval(model, profile, out / "eval" / stage, tokenizer=tokenizer, progress=False,
                    meta={"role": "trained", "arm": t.arm, "stage": stage, "seed": t.seed})["accuracy"]


def gain(out: str | Path, stage: str = "final") -> dict[str, Any]:
    """``base``, ``final`` (accuracies) and ``gain`` = final - base with its 95% ``gain_interval``: the
    evaluations ``out/eval/base`` and ``out/eval/<stage>`` paired by problem (a bootstrap over problems,
    :func:`supersmall.stats.paired_difference`)."""
    d = Evaluation.load(Path(out) / "eval" / "base").compare(Evaluation.load(Path(out) / "eval" / stage))
    return {"base": d["accuracy_a"], "final": d["accuracy_b"], "gain": d["difference"],
            "gain_interval": [d["ci_low"], d["ci_high"]]}


def _complete(out: Path, profile: Profile, seconds: float, start: int, evals: dict[str, Any],
              extra: dict[str, Any]) -> dict[str, Any]:
    """Drop the resume checkpoints (the final model is saved) and write the completed run card."""
    t = profile.train
    for ckpt in checkpoints(out):
        shutil.rmtree(ckpt, ignore_errors=True)
    metrics: dict[str, Any] = {"train_seconds": round(seconds, 2), "steps": t.steps, "resumed_from_step": start,
                               "seconds_per_step": round(seconds / max(1, t.steps - start), 4),
                               **{(k if k.startswith("gain") else f"accuracy_{k}"): v for k, v in evals.items()}}
    return write_run_card(out, kind="train", config=profile, seed=t.seed, metrics=metrics,
                          timings={"train_seconds": round(seconds, 2), "torch_threads": torch.get_num_threads(),
                                   "peak_rss_gb": peak_rss_gb()},
                          extra={**extra, "model_dir": str(out / "model"),
                                 **({"adapter_dir": str(out / ADAPTER_DIR)} if t.lora_rank else {})})


def peak_rss_gb() -> float | None:
    """This process's peak resident memory so far in GiB, as the kernel counts it (``getrusage``; None where
    the platform has no ``resource`` module). The canary's memory figure on a CPU host."""
    try:
        import resource
    except ImportError:  # Windows
        return None
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss  # KiB on Linux, bytes on macOS
    return round(peak / (2**30 if sys.platform == "darwin" else 2**20), 3)


def quiet() -> None:
    """No library noise between results: transformers' and datasets' progress bars and info messages
    off, and the one deprecation notice that comes from inside TRL (the kit's own bars stay). Also the
    kit's torch thread count (:func:`supersmall.runcard.use_threads`), as every notebook calls this first."""
    use_threads()
    transformers.utils.logging.disable_progress_bar()
    transformers.utils.logging.set_verbosity_error()
    datasets.disable_progress_bars()
    # The one deprecation notice left is raised inside TRL (trl/models/utils.py reads the model's
    # `is_gradient_checkpointing`, which transformers 5 renamed); the kit's own calls use the new names.
    warnings.filterwarnings("ignore", message="`is_gradient_checkpointing` is deprecated", category=FutureWarning)


__all__ = ["train", "quiet", "resolve", "training_rows", "reward_functions", "make_trainer",
           "attach_callbacks", "save_trained_model", "merge_adapter", "prepare_run_folder", "gain", "KLPenaltyTrainer",
           "kl_penalty", "BACKENDS"]
