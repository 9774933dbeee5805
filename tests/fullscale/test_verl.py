"""supersmall.fullscale.verl and ``supersmall export verl``: the export's reward is the kit's reward, its parquet
holds the curriculum's stages in order, and every key it maps is one of verl's (the golden file, from verl 0.9.1's
config; composed with Hydra where verl is installed)."""

import importlib.util
import json
import shlex
import subprocess
import sys
from pathlib import Path

import pytest

from supersmall import paper, rewards
from supersmall.config import load_profile
from supersmall.errors import UserError
from supersmall.fullscale import verl
from supersmall.train import training_rows

GOLDEN = Path(__file__).with_name("verl_keys.txt")
# the reward test cases (tests/test_rewards.py; verl hands the reward text, so the conversational case is a string)
CASES = ["<think>a</think>\\boxed{17}", "\\boxed{18}", "no box", "\\boxed{17}", "x</think>\\boxed{17}",
         "<think>long</think>\\boxed{17}"]
LENGTHS = [10, 99, 50, 97, 3, 100]


def _golden() -> dict[str, str]:
    lines = [line.split() for line in GOLDEN.read_text().splitlines() if line and not line.startswith("#")]
    return {key: source for key, source in lines}


@pytest.fixture(scope="module")
def exported(tmp_path_factory):
    out = tmp_path_factory.mktemp("verl")
    p = load_profile("tiny", **{"curriculum.stages": "1-3:3,4:2,5:2", "train.prompts_per_step": 4})
    paths = verl.export(p, out, "kl-penalty")
    return p, out, paths


def _module(path):
    spec = importlib.util.spec_from_file_location("reward_supersmall_test", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.mark.parametrize("reward", ["supersmall", "correctness", "bipolar", "open_rs", "open_rs_cosine", "structured"])
def test_the_exports_reward_is_the_kits_reward(exported, tmp_path, reward):
    p, out, paths = exported
    q = p.replace(**{"reward.name": reward, "train.max_completion_length": 100})
    (tmp_path / "profile.yaml").write_text(json.dumps(q.to_dict()))  # JSON is YAML
    (tmp_path / verl.REWARD_MODULE).write_text(paths["reward"].read_text())
    compute_score = _module(tmp_path / verl.REWARD_MODULE).compute_score
    funcs = rewards.build_reward(q.reward, 100, think_prefilled=q.model.think_prefill)
    weights = rewards.reward_weights(q.reward) or [1.0] * len(funcs)
    ids = [[0] * n for n in LENGTHS]
    kit = [sum(w * f(CASES, answer=["17"] * len(CASES), completion_ids=ids)[i] for f, w in zip(funcs, weights))
           for i in range(len(CASES))]
    got = [compute_score("supersmall/tiny", text, "17", {"response_length": n}) for text, n in zip(CASES, LENGTHS)]
    assert got == pytest.approx(kit)
    if reward == "supersmall":  # eq. 6 + eq. 7 by hand: the 99- and 100-token completions are over 0.95 x 100
        assert got == pytest.approx([1.0, -0.1, 0.0, 1.0 - 0.1, 1.0, 0.9])


def test_without_a_length_the_reward_counts_the_texts_tokens(exported):
    p, out, paths = exported
    compute_score = _module(paths["reward"]).compute_score
    from transformers import AutoTokenizer

    tok = AutoTokenizer.from_pretrained(verl._model(p))
    limit = p.reward.length_threshold * p.train.max_completion_length
    text = "\\boxed{17}"
    while len(tok.encode(text, add_special_tokens=False)) <= limit:
        text = "1 " + text
    assert compute_score("supersmall/tiny", text, "17") == pytest.approx(1.0 + p.reward.length_penalty)
    assert compute_score("supersmall/tiny", "\\boxed{17}", "17") == pytest.approx(1.0)


def test_the_parquet_holds_the_stages_in_order(exported):
    import pyarrow.parquet as pq
    from transformers import AutoTokenizer

    p, out, paths = exported
    rows = pq.read_table(paths["data"]).to_pylist()
    kit_rows, boundaries, _ = training_rows(p, AutoTokenizer.from_pretrained(verl._model(p)), curriculum=True)
    assert len(rows) == len(kit_rows) == (3 + 2 + 2) * 4
    # the kit's order, row by row: verl with data.shuffle=False reads them so, train_batch_size per step
    assert [r["prompt"][0]["content"] for r in rows] == [k["prompt"] for k in kit_rows]
    assert [r["reward_model"]["ground_truth"] for r in rows] == [str(k["answer"]) for k in kit_rows]
    stages = [r["extra_info"]["stage"] for r in rows]
    assert stages == ["level1-3"] * 12 + ["level4"] * 8 + ["level5"] * 8
    for r in rows:
        assert r["extra_info"]["level"] in {"level1-3": (1, 2, 3), "level4": (4,), "level5": (5,)}[
            r["extra_info"]["stage"]]
        assert r["extra_info"]["step"] == r["extra_info"]["index"] // 4
    args = verl.verl_args(p, out, "kl-penalty")
    assert args["data.shuffle"] is False and args["data.train_batch_size"] == 4
    assert args["trainer.total_training_steps"] == 7 and args["data.train_files"] == str(paths["data"].resolve())


def test_every_mapped_key_is_one_of_verls(exported):
    golden = _golden()
    assert all(source.startswith("verl/trainer/config/_generated_ppo_trainer.yaml:") for source in golden.values())
    for arm in paper.ARMS:
        for over in ({}, {"train.loss_type": "grpo", "train.vllm_importance_sampling": "token_mask"},
                     {"train.loss_type": "dapo", "train.clip_eps_high": 0.28, "train.vllm_importance_sampling": "off"}):
            keys = set(verl.verl_args(load_profile("a6000x4", **over), "/tmp/x", arm))
            assert keys <= set(golden), keys - set(golden)
    # the launch script passes exactly these keys
    p, out, paths = exported
    script = paths["script"].read_text()
    passed = [shlex.split(line.rstrip(" \\"))[0].split("=", 1)[0] for line in script.splitlines()
              if line.startswith("    ") and "=" in line]
    assert passed == list(verl.verl_args(p, out, "kl-penalty"))
    assert set(passed) <= set(golden)


def test_verl_composes_the_mapped_keys_where_it_is_installed():
    """With verl (and Hydra) installed, verl's own config takes every override (Hydra refuses unknown keys)."""
    pytest.importorskip("hydra")
    spec = importlib.util.find_spec("verl")
    if spec is None:
        pytest.skip("verl is not installed (pip install verl==0.9.1 --no-deps hydra-core in a spare environment)")
    from hydra import compose, initialize_config_dir
    from omegaconf import OmegaConf

    config_dir = str(Path(spec.origin).parent / "trainer" / "config")
    for arm in paper.ARMS:
        args = verl.verl_args("a6000x4", "/tmp/x", arm)
        overrides = [f"{k}={verl._hydra_value(v)}" for k, v in args.items()]
        with initialize_config_dir(config_dir=config_dir, version_base=None):
            cfg = compose(config_name="ppo_trainer", overrides=overrides)
        for key, value in args.items():
            assert OmegaConf.select(cfg, key) == value or str(OmegaConf.select(cfg, key)) == str(value), key


def test_the_three_kl_arms_aggregation_clip_and_importance_sampling_map_key_by_key():
    p = load_profile("a6000x4")
    arms = {arm: verl.verl_args(p, "/tmp/x", arm) for arm in paper.ARMS}
    kl = {arm: (a["actor_rollout_ref.actor.use_kl_loss"], a["actor_rollout_ref.actor.kl_loss_coef"],
                a["algorithm.use_kl_in_reward"], a["algorithm.kl_ctrl.kl_coef"]) for arm, a in arms.items()}
    assert kl == {"no-kl": (False, 0.0, False, 0.0), "kl-nopenalty": (True, p.train.beta_kl_loss, False, 0.0),
                  "kl-penalty": (False, 0.0, True, p.train.beta_kl_reward)}
    both = verl.verl_args(p.replace(**{"train.kl_penalty_loss": True}), "/tmp/x", "kl-penalty")
    assert both["actor_rollout_ref.actor.use_kl_loss"] and both["algorithm.use_kl_in_reward"]  # Table 3's paper reading
    a = arms["no-kl"]
    assert (a["actor_rollout_ref.rollout.n"], a["data.max_response_length"], a["actor_rollout_ref.rollout.temperature"]) \
        == (p.train.num_generations, p.train.max_completion_length, p.train.temperature)
    assert a["actor_rollout_ref.actor.loss_agg_mode"] == "seq-mean-token-sum-norm"  # a6000x4: dr_grpo
    assert a["actor_rollout_ref.actor.loss_scale_factor"] == p.train.max_completion_length
    grpo = verl.verl_args(p.replace(**{"train.loss_type": "grpo"}), "/tmp/x", "no-kl")
    assert grpo["actor_rollout_ref.actor.loss_agg_mode"] == "seq-mean-token-mean"
    assert "actor_rollout_ref.actor.loss_scale_factor" not in grpo
    dapo = verl.verl_args(p.replace(**{"train.loss_type": "dapo", "train.clip_eps_high": 0.28}), "/tmp/x", "no-kl")
    assert dapo["actor_rollout_ref.actor.loss_agg_mode"] == "token-mean"
    assert (dapo["actor_rollout_ref.actor.clip_ratio_low"], dapo["actor_rollout_ref.actor.clip_ratio_high"]) == \
        (0.2, 0.28)
    assert (a["algorithm.rollout_correction.rollout_is"], a["algorithm.rollout_correction.rollout_is_threshold"]) == \
        ("token", str(p.train.vllm_importance_sampling_cap))
    masked = verl.verl_args(p.replace(**{"train.vllm_importance_sampling": "sequence_mask"}), "/tmp/x", "no-kl")
    assert masked["algorithm.rollout_correction.rollout_is"] == "sequence"
    assert masked["algorithm.rollout_correction.rollout_is_threshold"] == f"0.0_{p.train.vllm_importance_sampling_cap}"
    off = verl.verl_args(p.replace(**{"train.vllm_importance_sampling": "off"}), "/tmp/x", "no-kl")
    assert off["algorithm.rollout_correction.rollout_is"] is None
    gspo = verl.verl_args(p.replace(**{"train.importance_sampling_level": "sequence"}), "/tmp/x", "no-kl")
    assert gspo["actor_rollout_ref.actor.policy_loss.loss_mode"] == "gspo"
    with pytest.raises(UserError, match="no verl aggregation"):
        verl.verl_args(p.replace(**{"train.loss_type": "group_token_mean"}), "/tmp/x")
    with pytest.raises(UserError, match="scale_rewards 'batch'"):
        verl.verl_args(p.replace(**{"train.scale_rewards": "batch"}), "/tmp/x")


@pytest.mark.slow
def test_export_verl_cli(tmp_path):
    out = subprocess.run([sys.executable, "-m", "supersmall.cli", "export", "verl", "--profile", "tiny", "--arm",
                          "kl-nopenalty", "--set", "curriculum.stages=1-3:2", "--out", str(tmp_path)],
                         capture_output=True, text=True)
    assert out.returncode == 0, out.stderr
    paths = json.loads(out.stdout)
    assert {Path(v).name for v in paths.values()} == {"train.parquet", verl.REWARD_MODULE, "profile.yaml",
                                                       "run_verl.sh"}
    script = (tmp_path / "run_verl.sh").read_text()
    assert "actor_rollout_ref.actor.use_kl_loss=true" in script and "algorithm.use_kl_in_reward=false" in script
    assert load_profile(str(tmp_path / "profile.yaml")).train.arm == "kl-nopenalty"
    bad = subprocess.run([sys.executable, "-m", "supersmall.cli", "export", "verl", "--profile", "tiny", "--set",
                          "train.scale_rewards=batch", "--out", str(tmp_path / "b")], capture_output=True, text=True)
    assert bad.returncode == 2 and "scale_rewards 'batch'" in bad.stderr and "Traceback" not in bad.stderr
