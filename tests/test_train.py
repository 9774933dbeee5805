"""supersmall.train and supersmall.grpo: resume, arms, the kl-penalty reward,
curriculum order, run cards and their reuse, the run lock, the 2-process rehearsal. (The gain
ZeroGRPO makes on the tiny model is a claim the series measures: 08.zerogrpo_improves_the_base_model.)"""

import json
import os
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch

from supersmall import data, grpo, stats, tiny
from supersmall import train as T
from supersmall.config import load_profile
from supersmall.errors import UserError
from supersmall.grpo import Objective, rollout_and_update
from supersmall.runcard import read_metrics
from supersmall.train import make_trainer, train

ROOT = Path(__file__).resolve().parents[1]
SMALL = {"train.prompts_per_step": 4, "train.num_generations": 4, "train.save_steps": 2,
         "train.max_completion_length": 32, "eval.problems_per_level": 4}


def _env(**extra):
    return {**os.environ, "SUPERSMALL_CACHE_DIR": str(tiny.cache_root()), "HF_HUB_OFFLINE": "1",
            "HF_DATASETS_OFFLINE": "1", "TOKENIZERS_PARALLELISM": "false", **extra}


# --- the readable loop -------------------------------------------------------------------------------------
def test_rollout_and_update_trains_and_reports(tmp_path):
    """One step of the readable loop: the policy moves, the metrics are those the health panel plots."""
    from transformers import AutoModelForCausalLM, AutoTokenizer

    profile = load_profile("tiny", **SMALL)
    path = tiny.model_path("tiny")
    model, tok = AutoModelForCausalLM.from_pretrained(path), AutoTokenizer.from_pretrained(path)
    from supersmall import rewards

    funcs = rewards.build_reward(profile.reward, profile.train.max_completion_length)

    def alternating(completions, **kw):  # 0, 1, 0, 1 within every group: each group has different rewards
        return [float(i % 2) for i in range(len(completions))]

    before = [p.detach().clone() for p in model.parameters()]
    opt = torch.optim.AdamW(model.parameters(), lr=1e-3)
    torch.manual_seed(0)
    rows = tiny.make_problems(2, levels=(2, 3), seed=1)
    m = rollout_and_update(model, None, tok, opt, rows, profile, Objective(0.0, 0.0, [*funcs, alternating], [1.0, 1.0]))
    assert set(m) >= {"loss", "reward", "reward_std", "frac_reward_zero_std", "truncated_fraction",
                      "completion_length", "reasoning_rate", "entropy", "grad_norm", "clip_fraction",
                      "frac_groups_all_correct", "frac_groups_all_wrong"}
    assert 0 <= m["frac_groups_all_correct"] + m["frac_groups_all_wrong"] <= 1
    assert "kl" not in m  # ZeroGRPO: no reference model
    assert 0 <= m["truncated_fraction"] <= 1 and 0 < m["completion_length"] <= 32 and m["grad_norm"] >= 0
    # every group has different rewards, so the advantages are not zero and the policy moves
    assert m["frac_reward_zero_std"] == 0.0 and m["grad_norm"] > 0
    assert any(not torch.equal(a, b) for a, b in zip(before, model.parameters()))
    ref = AutoModelForCausalLM.from_pretrained(path).eval()
    m2 = rollout_and_update(model, ref, tok, opt, rows, profile, Objective(0.5, 0.0, funcs))
    assert m2["kl"] > 0  # the policy moved away from the reference


@pytest.mark.slow
def test_minimal_run_resumes_after_a_crash(tmp_path, monkeypatch, capsys):
    real = grpo.rollout_and_update
    calls = {"n": 0}

    def crash_on_third(*a, **k):
        calls["n"] += 1
        if calls["n"] == 3:
            raise KeyboardInterrupt("killed mid-run")
        return real(*a, **k)

    monkeypatch.setattr(grpo, "rollout_and_update", crash_on_third)
    out = tmp_path / "run"
    with pytest.raises(KeyboardInterrupt):
        train("tiny", steps=4, backend="minimal", out_dir=out, evaluate_model=False, progress=False, **SMALL)
    assert (out / "checkpoint-2").is_dir() and json.loads((out / "run_card.json").read_text())["status"] == "running"
    assert not (out / ".lock.owner").exists()  # the lock is released on a crash
    monkeypatch.setattr(grpo, "rollout_and_update", real)
    card = train("tiny", steps=4, backend="minimal", out_dir=out, evaluate_model=False, progress=False, **SMALL)
    assert "resuming from checkpoint-2: step 2 of 4" in capsys.readouterr().out
    assert card["status"] == "complete" and card["metrics"]["resumed_from_step"] == 2
    assert [m["step"] for m in read_metrics(out)] == [1, 2, 3, 4]
    assert not list(out.glob("checkpoint-*")) and (out / "model" / "config.json").exists()
    again = train("tiny", steps=4, backend="minimal", out_dir=out, evaluate_model=False, progress=False, **SMALL)
    assert again == card  # complete: not retrained
    # --no-resume after another crash: starts over from step 0, not from the checkpoint the crash left
    calls["n"] = 0
    monkeypatch.setattr(grpo, "rollout_and_update", crash_on_third)
    with pytest.raises(KeyboardInterrupt):
        train("tiny", steps=4, backend="minimal", out_dir=out, evaluate_model=False, progress=False, resume=False,
              **SMALL)
    assert (out / "checkpoint-2").is_dir()
    monkeypatch.setattr(grpo, "rollout_and_update", real)
    fresh = train("tiny", steps=4, backend="minimal", out_dir=out, evaluate_model=False, progress=False,
                  resume=False, **SMALL)
    assert fresh["metrics"]["resumed_from_step"] == 0 and [m["step"] for m in read_metrics(out)] == [1, 2, 3, 4]


@pytest.mark.slow
@pytest.mark.parametrize("arm", ["no-kl", "kl-nopenalty", "kl-penalty"])
def test_arms_run_with_trl_and_log(tmp_path, arm):
    seen = []
    card = train("tiny", arm=arm, steps=2, backend="trl", out_dir=tmp_path / arm, evaluate_model=False,
                 progress=False, callbacks=[lambda step, m, total: seen.append((step, total, m))], **SMALL)
    hist = read_metrics(tmp_path / arm)
    assert card["status"] == "complete" and card["arm"] == arm and len(hist) == 2
    assert [h["step"] for h in hist] == [1, 2] and [(s, t) for s, t, _ in seen] == [(1, 2), (2, 2)]
    assert [m for _, _, m in seen] == [{k: v for k, v in h.items() if k not in ("step", "time")} for h in hist]
    assert hist[0]["time"] <= hist[1]["time"]  # the run's own clock at each step's end (the canary's step time)
    assert all(0.0 <= h["reasoning_rate"] <= 1.0 and 0 <= h["truncated_fraction"] <= 1 for h in hist)
    # the no-signal split: eq. 6 + eq. 7 (tiny's reward) ties every group eq. 6 ties, unless eq. 7 breaks the tie,
    # so the groups all correct or all wrong are at least the groups without signal (equal only for eq. 6 alone);
    # the kl-penalty arm's reward is never tied, so only the bound on the split holds there
    for h in hist:
        split = h["frac_groups_all_correct"] + h["frac_groups_all_wrong"]
        assert 0.0 <= split <= 1.0
        if arm != "kl-penalty":
            assert split >= h["frac_reward_zero_std"] - 1e-6
    if arm == "no-kl":
        assert all("kl" not in h for h in hist)  # no reference model
    else:
        assert all(h.get("kl") is not None for h in hist)
    cfg = card["config"]["train"]
    assert cfg["arm"] == arm and (tmp_path / arm / "model" / "model.safetensors").is_file()


@pytest.mark.slow
@pytest.mark.parametrize("backend", ["trl", "minimal"])
def test_the_no_signal_share_splits_into_all_correct_and_all_wrong(tmp_path, backend):
    """With eq. 6 alone (reward.name correctness) a group has no signal exactly when it is all correct or all
    wrong: both backends log the split, and it adds up to frac_reward_zero_std on every step (a split read from
    the wrong column, or from the summed reward, breaks this on some step)."""
    train("tiny", arm="no-kl", steps=3, backend=backend, out_dir=tmp_path, evaluate_model=False, progress=False,
          **{**SMALL, "reward.name": "correctness", "train.temperature": 1.0})
    hist = read_metrics(tmp_path)
    assert len(hist) == 3
    for h in hist:
        assert h["frac_groups_all_correct"] + h["frac_groups_all_wrong"] == pytest.approx(h["frac_reward_zero_std"])
    # the tiny base solves some groups and fails others: both kinds occur, so the test sees the split, not a 0
    assert max(h["frac_groups_all_correct"] for h in hist) > 0 and max(h["frac_groups_all_wrong"] for h in hist) > 0


# --- the kl-penalty arm: k1 in the reward, on TRL's reference path ---------------------------------------
def _kl_penalty_run(tmp_path, perturb: bool):
    profile = load_profile("rehearsal", **{"launch.num_processes": 1})
    # level-1 problems all have 5 characters: prompts of equal length, so no left padding (TRL's forward does
    # not shift positions for padding, the kit's does)
    rows = [{**p, "prompt": data.format_prompt(p["prompt"], "chat", "")}
            for p in tiny.make_problems(8, levels=(1,), seed=3)]
    path = tiny.model_path("tiny-r1")
    trainer = make_trainer(profile, "kl-penalty", tmp_path, rows, path, max_steps=1, report_to="none")
    assert isinstance(trainer, T.KLPenaltyTrainer) and trainer.ref_model is not None
    if perturb:
        with torch.no_grad():
            gen = torch.Generator().manual_seed(0)
            for w in trainer.model.parameters():
                w.add_(0.05 * torch.randn(w.shape, generator=gen))
    expected = []
    real = trainer._generate_and_score_completions

    def recompute(inputs):
        out = real(inputs)
        # the policy has not been updated yet: k1 of the sampled completions, by the kit's own log-prob code
        args = (out["prompt_ids"], out["prompt_mask"], out["completion_ids"], out["completion_mask"])
        with torch.no_grad():
            logp, _ = grpo.sequence_logps(trainer.model, *args, temperature=profile.train.temperature)
            ref, _ = grpo.sequence_logps(trainer.ref_model, *args, temperature=profile.train.temperature)
        mask = out["completion_mask"].float()
        k1 = (logp - ref) * mask
        expected.append({"sums": k1.sum(-1), "per_token": k1.sum() / mask.sum(), "length": mask.sum(-1).mean()})
        return out

    trainer._generate_and_score_completions = recompute
    trainer.train()
    logs = [h for h in trainer.state.log_history if "rewards/kl_penalty/mean" in h]
    assert len(logs) == 1 and len(expected) == 1
    return trainer, logs[0], expected[0], profile


@pytest.mark.slow
def test_kl_penalty_reward_is_minus_beta_times_the_summed_k1(tmp_path):
    trainer, log, exp, profile = _kl_penalty_run(tmp_path, perturb=True)
    beta = profile.train.beta_kl_reward
    assert trainer.beta == beta == 0.001
    assert "kl" in log and log["kl"] > 0  # (a) the KL is logged
    assert len(exp["sums"]) == profile.train.prompts_per_step * profile.train.num_generations
    # (b) the reward column is -beta x the mean per-sequence sum of k1 between policy and reference
    want = -beta * float(exp["sums"].mean())
    assert want < 0 and log["rewards/kl_penalty/mean"] < 0
    assert log["rewards/kl_penalty/mean"] == pytest.approx(want, rel=1e-3, abs=1e-7)
    assert log["kl"] == pytest.approx(float(exp["per_token"]), rel=1e-3)
    assert log["rewards/kl_penalty/std"] == pytest.approx(beta * float(exp["sums"].std()), rel=1e-2, abs=1e-7)
    assert log["completions/mean_length"] == pytest.approx(float(exp["length"]), rel=1e-4)
    # the penalty is in the reward (weight 1): reward = supersmall + kl_penalty, the reasoning rate is weight 0
    assert log["reward"] == pytest.approx(log["rewards/supersmall_reward/mean"] + log["rewards/kl_penalty/mean"], abs=1e-5)


@pytest.mark.slow
def test_kl_penalty_is_zero_when_the_policy_is_the_reference(tmp_path):
    _, log, exp, _ = _kl_penalty_run(tmp_path, perturb=False)
    assert float(exp["sums"].abs().max()) == 0.0
    assert log["rewards/kl_penalty/mean"] == 0.0 and log["kl"] == 0.0


def test_kl_penalty_overrides_only_trl_methods_that_still_exist_with_these_parameters():
    """The kit's one reach into TRL's private methods: when a TRL release renames or reshapes one, this fails."""
    import inspect
    import re

    from trl import GRPOTrainer

    from supersmall.trl_kl import KLPenaltyTrainer, OutcomeSplitTrainer

    for cls in (KLPenaltyTrainer, OutcomeSplitTrainer):
        overridden = {name for name, v in vars(cls).items() if callable(v) and not name.startswith("__")}
        assert overridden == set(cls.TRL_HOOKS), f"{cls.__name__} overrides a TRL method not listed in TRL_HOOKS"
    hooks = {**OutcomeSplitTrainer.TRL_HOOKS, **KLPenaltyTrainer.TRL_HOOKS}
    for name, params in hooks.items():
        assert hasattr(GRPOTrainer, name), f"TRL's GRPOTrainer has no {name} any more: update supersmall/trl_kl.py"
        theirs = tuple(inspect.signature(getattr(GRPOTrainer, name)).parameters)[1:]
        assert theirs[:len(params)] == params, f"TRL's {name}{theirs} changed: update supersmall/trl_kl.py"
    # and TRL still calls them where the arm needs them: the reference log-probs, then the rewards
    step = inspect.getsource(GRPOTrainer._generate_and_score_completions)
    ref = re.search(r"self\._get_per_token_logps_and_entropies\(\s*self\.ref_model", step)
    assert ref and "self._calculate_rewards(" in step[ref.end():]
    assert "self.beta" in inspect.getsource(GRPOTrainer._compute_loss)


def test_both_backends_build_the_reward_the_same_way(tmp_path, monkeypatch):
    """One function builds the reward (with the chat template's think prefill and paper.yaml's weights);
    the TRL trainer and the readable loop both take it."""
    from supersmall import paper

    p = load_profile("rehearsal", **{"reward.name": "open_rs", "launch.num_processes": 1})
    funcs, weights = T.reward_functions(p)
    assert p.model.think_prefill and [f.__name__ for f in funcs] == ["format", "accuracy"]
    assert funcs[0].keywords["think_prefilled"] is True
    assert weights == list(paper.value("openrs.exp2.reward_weights").values())
    calls = []
    real = T.reward_functions
    monkeypatch.setattr(T, "reward_functions", lambda prof: calls.append(prof) or real(prof))
    trainer = make_trainer(p, "no-kl", tmp_path, tiny.make_problems(4, levels=(1,), seed=0),
                           tiny.model_path("tiny-r1"), report_to="none")
    assert [f.__name__ for f in trainer.reward_funcs] == ["format", "accuracy", "reasoning_rate", "correct"]
    assert isinstance(trainer, T.OutcomeSplitTrainer) and trainer.reward_weights.tolist()[-2:] == [0.0, 0.0]
    assert trainer.reward_funcs[0].keywords["think_prefilled"] is True
    seen = {}

    def loop(*args):
        seen["funcs"], seen["weights"] = args[4].reward_funcs, args[4].reward_weights  # the grpo.Objective
        raise KeyboardInterrupt

    monkeypatch.setattr(grpo, "train_loop", loop)
    with pytest.raises(KeyboardInterrupt):
        T._train_minimal(p, "no-kl", tmp_path, [], "unused", None, None, False)
    assert len(calls) == 2 and [f.keywords for f in seen["funcs"]] == [f.keywords for f in funcs]
    assert seen["weights"] == weights


def test_stages_alone_train_that_curriculum_and_bad_stages_are_refused():
    p = T.resolve("tiny", None, None, None, None, None, "1-3:2,5:3", {})
    assert p.curriculum.stages == "1-3:2,5:3" and p.curriculum.schedule == "staged" and p.train.steps == 5
    for bad in ("9-3:5", "1-3:0", "x"):
        with pytest.raises(ValueError, match="curriculum.stages"):
            T.resolve("tiny", None, None, None, None, None, bad, {})


def test_gain_is_the_paired_difference_of_the_two_evaluations(tmp_path):
    """Hand-made records: base solves problems 0-1 of 4, the trained model 0-2: gain 1/4 (one problem more)."""
    for stage, solved in (("base", {0, 1}), ("final", {0, 1, 2})):
        folder = tmp_path / "eval" / stage
        folder.mkdir(parents=True)
        (folder / "records.jsonl").write_text("".join(
            json.dumps({"index": i, "level": 1, "correct": i in solved}) + "\n" for i in range(4)))
    g = T.gain(tmp_path)
    assert g["base"] == 0.5 and g["final"] == 0.75 and g["gain"] == 0.25
    lo, hi = g["gain_interval"]
    assert 0.0 <= lo <= 0.25 <= hi <= 1.0  # a bootstrap over 4 problems: the diffs are 0, 0, 1, 0
    d = stats.paired_difference([1, 1, 0, 0], [1, 1, 1, 0], n_boot=2000, seed=0)
    assert [lo, hi] == [d["ci_low"], d["ci_high"]]


def test_a_file_as_the_run_folder_is_one_sentence(tmp_path):
    f = tmp_path / "file.txt"
    f.write_text("x")
    for out in (f, f / "sub"):
        with pytest.raises(UserError, match="is a file, not a folder"):
            train("tiny", steps=1, backend="minimal", out_dir=out, evaluate_model=False, progress=False)


# --- curriculum, stage accuracies, evaluation folders ------------------------------------------------------
@pytest.mark.slow
def test_trl_consumes_the_curriculum_in_order(tmp_path, monkeypatch):
    """GRPOTrainer (shuffle_dataset=False) sees stage 1's levels for its first steps, then stage 2's only; each
    stage's model is evaluated when the stage ends."""
    from supersmall import rewards

    seen: list[tuple[int, list[int]]] = []
    real = rewards.build_reward

    def with_recorder(*a, **k):
        def record(completions, level, trainer_state, **kw):
            seen.append((trainer_state.global_step, list(level)))
            return [0.0] * len(completions)

        record.__name__ = "record"
        return real(*a, **k) + [record]

    monkeypatch.setattr(rewards, "build_reward", with_recorder)
    out = tmp_path / "c"
    card = train("tiny", backend="trl", curriculum="staged", stages="1-3:2,5:2", out_dir=out, progress=False,
                 **SMALL)
    assert card["stages"] == [["level1-3", 0, 2], ["level5", 2, 4]] and card["config"]["train"]["steps"] == 4
    assert [step for step, _ in seen] == [0, 1, 2, 3]
    for step, levels in seen:
        assert set(levels) <= ({1, 2, 3} if step < 2 else {5}), (step, levels)
    m = card["metrics"]
    assert set(k for k in m if k.startswith("accuracy_")) == {"accuracy_level1-3", "accuracy_level5"}
    for stage in ("level1-3", "level5"):
        summary = json.loads((out / "eval" / stage / "summary.json").read_text())
        assert m[f"accuracy_{stage}"] == summary["accuracy"] and summary["n"] == 20
        ev_card = json.loads((out / "eval" / stage / "run_card.json").read_text())
        assert ev_card["stage"] == stage and ev_card["role"] == "trained" and ev_card["arm"] == "no-kl"
    assert not (out / "eval" / "final").exists()


@pytest.mark.slow
def test_train_evaluates_the_final_model_and_can_start_from_another(tmp_path):
    first = train("tiny", steps=2, backend="minimal", out_dir=tmp_path / "a", progress=False, **SMALL)
    summary = json.loads((tmp_path / "a" / "eval" / "final" / "summary.json").read_text())
    assert first["metrics"]["accuracy_final"] == summary["accuracy"] and summary["n"] == 20
    assert set(summary["per_level"]) == {"1", "2", "3", "4", "5"} and "budgets" in summary
    assert [k for k in first["metrics"] if k.startswith("accuracy_")] == ["accuracy_final"]
    for key in ("train_seconds", "steps", "resumed_from_step", "seconds_per_step"):
        assert key in first["metrics"]
    second = train("tiny", steps=1, backend="minimal", out_dir=tmp_path / "b", progress=False,
                   model=str(tmp_path / "a" / "model"), evaluate_model=False, **SMALL)
    assert second["start_model"] == str(tmp_path / "a" / "model") and "accuracy_final" not in second["metrics"]
    assert not (tmp_path / "b" / "eval").exists()


# --- which runs are redone -------------------------------------------------------------------------------
@pytest.mark.slow
def test_stale_runs_are_retrained_equal_runs_reused_other_configs_refused(tmp_path, capsys):
    out = tmp_path / "r"
    kw = dict(steps=2, backend="minimal", out_dir=out, evaluate_model=False, progress=False, **SMALL)
    card = train("tiny", **kw)
    assert card["status"] == "complete" and len(read_metrics(out)) == 2
    first_lines = (out / "metrics.jsonl").read_text()
    # the same config and code version: reused, nothing rewritten
    assert train("tiny", **kw) == card and (out / "metrics.jsonl").read_text() == first_lines
    assert "not retraining" in capsys.readouterr().out
    # the same config under another code version: trained again, metrics.jsonl rewritten (not appended to)
    stale = json.loads((out / "run_card.json").read_text())
    stale["code_version"] = "000000000000"
    (out / "run_card.json").write_text(json.dumps(stale))
    (out / "metrics.jsonl").write_text('{"step": 1, "marker": "old"}\n' * 2)
    again = train("tiny", **kw)
    assert "training again" in capsys.readouterr().out
    assert again["code_version"] == card["code_version"] != "000000000000" and again["created"] >= card["created"]
    hist = read_metrics(out)
    assert [h["step"] for h in hist] == [1, 2] and all("marker" not in h for h in hist)
    # another config in the same folder: an error, never a silent reuse
    with pytest.raises(UserError, match="another config"):
        train("tiny", **{**kw, "steps": 3})
    with pytest.raises(UserError, match="another config"):
        train("tiny", **kw, **{"train.learning_rate": 1e-4})
    assert json.loads((out / "run_card.json").read_text())["code_version"] == card["code_version"]


# --- the command line --------------------------------------------------------------------------------
@pytest.mark.slow
def test_cli_train_writes_the_run_card_metrics(tmp_path):
    out = subprocess.run([sys.executable, "-m", "supersmall.cli", "train", "--profile", "tiny", "--arm", "no-kl",
                          "--steps", "2", "--backend", "minimal", "--set", "eval.problems_per_level=4",
                          "--out", str(tmp_path / "r")], capture_output=True, text=True, env=_env())
    assert out.returncode == 0, out.stderr[-2000:]
    m = json.loads((tmp_path / "r" / "run_card.json").read_text())["metrics"]
    for key in ("accuracy_base", "accuracy_final", "gain", "gain_interval", "train_seconds", "seconds_per_step",
                "steps", "resumed_from_step"):
        assert key in m
    assert 0 <= m["accuracy_final"] <= 1 and m["steps"] == 2
    summary = json.loads((tmp_path / "r" / "eval" / "final" / "summary.json").read_text())
    assert set(summary["per_level"]) == {"1", "2", "3", "4", "5"} and summary["accuracy"] == m["accuracy_final"]
    base = json.loads((tmp_path / "r" / "eval" / "base" / "summary.json").read_text())
    assert base["accuracy"] == m["accuracy_base"] and m["gain"] == pytest.approx(m["accuracy_final"] - base["accuracy"])
    lo, hi = m["gain_interval"]
    assert lo <= m["gain"] <= hi
    # base -> final and the gain in points with its interval, and no library warning on the console
    assert (f"{100 * m['accuracy_base']:.1f}% -> {100 * m['accuracy_final']:.1f}%, gain {100 * m['gain']:+.1f} points "
            f"[{100 * lo:+.1f}, {100 * hi:+.1f}]") in out.stdout
    assert "Warning" not in out.stderr, out.stderr[-2000:]
    bad = subprocess.run([sys.executable, "-m", "supersmall.cli", "train", "--arm", "kl", "--out", str(tmp_path / "x")],
                         capture_output=True, text=True, env=_env())
    assert bad.returncode == 2 and "valid arms" in bad.stderr and "Traceback" not in bad.stderr


@pytest.mark.slow
def test_run_lock_refuses_a_second_writer(tmp_path):
    # 30 steps (~30 s on an idle 2-core machine): still training when the second process, which needs a few
    # seconds to start, reaches the lock (with 6 steps the first run finished first once, and the second reused it)
    out, steps = tmp_path / "x", 30
    cmd = [sys.executable, "-m", "supersmall.cli", "train", "--profile", "tiny", "--steps", str(steps), "--no-eval",
           "--out", str(out)]
    first = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=_env())
    try:
        t0 = time.time()
        while not (out / ".lock.owner").exists():
            assert first.poll() is None, first.communicate()[1][-2000:]
            assert time.time() - t0 < 120, "the first run never took the lock"
            time.sleep(0.1)
        t1 = time.time()
        second = subprocess.run(cmd, capture_output=True, text=True, env=_env(), timeout=120)
        assert time.time() - t1 < 30  # refused at once, not after waiting for the first
        assert second.returncode == 2, (second.stdout + second.stderr)[-2000:]
        assert f"is being written by process {first.pid}" in second.stderr and "Traceback" not in second.stderr
        _, err = first.communicate(timeout=600)
    finally:
        if first.poll() is None:
            first.kill()
    assert first.returncode == 0, err[-2000:]
    assert [h["step"] for h in read_metrics(out)] == list(range(1, steps + 1))
    assert json.loads((out / "run_card.json").read_text())["status"] == "complete"
    assert not (out / ".lock.owner").exists()


@pytest.mark.slow
def test_rehearsal_trains_on_two_processes(tmp_path):
    """torchrun, 2 processes, DDP on gloo: one writer (rank 0), one metrics line per step, one model, TensorBoard."""
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    out = tmp_path / "r"
    proc = subprocess.run([sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node", "2",
                           "-m", "supersmall.cli", "train", "--profile", "rehearsal", "--arm", "no-kl", "--steps", "3",
                           "--no-eval", "--out", str(out)], capture_output=True, text=True, env=_env(OMP_NUM_THREADS="1"),
                          timeout=900, cwd=ROOT)
    assert proc.returncode == 0, proc.stderr[-3000:]
    hist = read_metrics(out)
    assert [h["step"] for h in hist] == [1, 2, 3]
    assert (out / "model" / "model.safetensors").is_file() and not list(out.glob("checkpoint-*"))
    cards = list(out.rglob("run_card.json"))
    assert cards == [out / "run_card.json"]
    card = json.loads(cards[0].read_text())
    assert card["status"] == "complete" and card["config"]["launch"]["num_processes"] == 2
    assert card["left_out"]["bad_difficulty"] == 3 and card["left_out"]["prompt_too_long"] >= 1
    events = list((out / "runs").rglob("events.out.tfevents.*"))
    assert events, "no TensorBoard event file under runs/"
    tags = set()
    for ev in events:
        acc = EventAccumulator(str(ev))
        acc.Reload()
        tags |= set(acc.Tags()["scalars"])
        if "train/reward" in acc.Tags()["scalars"]:
            assert [e.step for e in acc.Scalars("train/reward")] == [1, 2, 3]
    assert "train/reward" in tags
