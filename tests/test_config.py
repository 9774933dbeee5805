from pathlib import Path

import pytest

from supersmall.config import (
    Profile,
    ProfileError,
    available_profiles,
    check_profile,
    load_profile,
    profile_table,
)
from supersmall.profile_rules import RULES


def test_shipped_profiles_load_typed():
    assert set(available_profiles()) == {"tiny", "rehearsal", "single-gpu", "a6000x4", "real"}
    tiny = load_profile("tiny")
    assert isinstance(tiny, Profile) and tiny.name == "tiny"
    assert isinstance(tiny.train.learning_rate, float) and isinstance(tiny.train.num_generations, int)


def test_a6000x4_has_the_papers_table4_settings():
    p = load_profile("a6000x4")
    assert p.model.name_or_path == "deepseek-ai/DeepSeek-R1-Distill-Qwen-1.5B"
    assert p.train.learning_rate == pytest.approx(5e-6)
    assert p.train.prompts_per_step == 16
    assert p.train.temperature == pytest.approx(0.6)
    assert p.train.max_prompt_length == 1024 and p.train.max_completion_length == 4096
    assert p.train.steps == 100 and p.train.arm == "no-kl"
    assert p.reward.length_threshold == pytest.approx(0.95) and p.reward.length_penalty == pytest.approx(-0.1)
    assert p.launch.num_gpus == 4


def test_unknown_profile_names_the_valid_ones():
    with pytest.raises(ProfileError) as e:
        load_profile("a100x8")
    msg = str(e.value)
    assert "a100x8" in msg and "tiny" in msg and "a6000x4" in msg
    assert msg.count(".") <= 2 and "\n" not in msg  # one sentence


def test_unknown_key_names_the_valid_ones(tmp_path: Path):
    f = tmp_path / "mine.yaml"
    f.write_text("train:\n  learning_rat: 1.0e-5\n")
    with pytest.raises(ProfileError) as e:
        load_profile(f)
    msg = str(e.value)
    assert "learning_rat" in msg and "learning_rate" in msg and "valid keys" in msg


def test_unknown_section_and_bad_types(tmp_path: Path):
    f = tmp_path / "bad.yaml"
    f.write_text("trainer:\n  steps: 3\n")
    with pytest.raises(ProfileError, match="trainer.*did you mean 'train'"):
        load_profile(f)
    f.write_text("train:\n  steps: many\n")
    with pytest.raises(ProfileError, match="train.steps must be an integer"):
        load_profile(f)
    f.write_text("train: [1, 2]\n")
    with pytest.raises(ProfileError, match="mapping"):
        load_profile(f)
    # the whole file must be a mapping of sections; an empty file is every default
    for text, kind in (("- train\n- eval\n", "list"), ("just words\n", "str"), ("42\n", "int"), ("[]\n", "list")):
        f.write_text(text)
        with pytest.raises(ProfileError, match=f"must be a YAML mapping of sections .* not a {kind}$"):
            load_profile(f)
    f.write_text("")
    assert load_profile(f).train == Profile().train
    f.write_text("train: {steps: [1,\n  eval: ]\n")
    with pytest.raises(ProfileError, match="is not valid YAML") as e:
        load_profile(f)
    assert "\n" not in str(e.value)  # one line


def test_yaml_path_and_defaults(tmp_path: Path):
    f = tmp_path / "small.yaml"
    f.write_text("train:\n  steps: 7\n  learning_rate: 1e-3\n")
    p = load_profile(f)
    assert p.name == "small" and p.train.steps == 7 and p.train.learning_rate == pytest.approx(1e-3)
    assert p.eval == Profile().eval  # untouched sections keep their defaults
    with pytest.raises(ProfileError, match="does not exist"):
        load_profile(tmp_path / "missing.yaml")


def test_overrides():
    p = load_profile("tiny", **{"train.steps": 5, "train.seed": 3})
    assert p.train.steps == 5 and p.train.seed == 3
    q = p.replace(**{"reward.length_penalty": -0.2})
    assert q.reward.length_penalty == pytest.approx(-0.2) and p.reward.length_penalty == pytest.approx(-0.1)
    with pytest.raises(ProfileError, match="unknown key 'stepz'"):
        load_profile("tiny", **{"train.stepz": 5})


def test_profile_table_side_by_side():
    rows = profile_table("tiny", "a6000x4")
    by = {r["setting"]: r for r in rows}
    assert by["train.learning_rate"]["a6000x4"] == pytest.approx(5e-6)
    assert by["model.name_or_path"]["tiny"] == "tiny"


def test_rehearsal_mirrors_the_full_scale_path_on_two_cpu_processes():
    r, full = load_profile("rehearsal"), load_profile("a6000x4")
    assert r.model.name_or_path == "tiny-r1" and r.model.think_prefill == full.model.think_prefill is True
    assert (r.launch.num_gpus, r.launch.num_processes, r.launch.vllm_mode) == (0, 2, "none")
    assert r.data.train == full.data.train == "deepmath" and r.data.source.endswith("rehearsal/deepmath.jsonl")
    assert r.eval.dataset.endswith("rehearsal/math500.jsonl") and r.eval.prompt_template == full.eval.prompt_template
    assert (r.train.loss_type, r.train.temperature) == (full.train.loss_type, full.train.temperature)
    t = r.train  # 8 prompts x G=4 = 32 completions = 8 per process x 2 accumulation steps x 2 processes
    assert t.prompts_per_step * t.num_generations == 8 * t.gradient_accumulation_steps * r.launch.num_processes
    assert t.report_to == "tensorboard"


def test_new_sections_and_keys_have_their_defaults():
    p = Profile()
    assert p.eval.prompt_template == "chat" and p.eval.budgets == [] and p.notebooks.steps > 0
    assert p.train.vllm_importance_sampling == "token_truncate" and p.train.kl_ratio_weighting is False
    assert load_profile("tiny").eval.prompt_template == "raw" and load_profile("tiny").eval.budgets == [6, 10, 14, 20, 48]
    assert load_profile("a6000x4").notebooks.seeds == [42, 43, 44]


def test_every_rule_names_a_real_key_and_every_shipped_profile_passes():
    p = Profile()
    for dotted in RULES:
        section, key = dotted.split(".")
        assert hasattr(getattr(p, section), key), dotted
    for name in available_profiles():
        assert check_profile(load_profile(name)) == load_profile(name)


@pytest.mark.parametrize("key,value,expected", [
    ("train.steps", -5, "train.steps = -5 is not valid: expected a number > 0"),
    ("train.num_generations", 1, "train.num_generations = 1 is not valid: expected an integer >= 2"),
    ("train.arm", "kl", "one of no-kl"),
    ("train.loss_type", "ppo", "one of grpo"),
    ("train.top_p", 1.5, "a number in (0, 1]"),
    ("train.warmup_ratio", 1.0, "a number in [0, 1)"),
    ("train.vllm_importance_sampling", "on", "one of off, token_truncate"),
    ("eval.prompt_template", "chat_boxed", "eval.prompt_template = 'chat_boxed' is not valid: expected one of raw, chat"),
    ("eval.budgets", [16, 0], "a list of token budgets > 0"),
    ("eval.backend", "tgi", "one of hf, vllm"),
    ("curriculum.stages", "1-3", "stages like"),
    ("curriculum.schedule", "random", "one of staged"),
    ("data.levels", "1,2", "levels like"),
    ("data.train", "gsm8k", "one of tiny"),
    ("reward.name", "nope", "one of"),
    ("launch.deepspeed_stage", 4, "one of 0, 1, 2, 3"),
    ("launch.vllm_gpu_memory_utilization", 0.0, "a number in (0, 1]"),
    ("notebooks.seeds", [], "a non-empty list of seeds"),
    ("train.importance_sampling_level", "word", "one of token, sequence"),
    ("train.loss_type", "gspo", "one of grpo"),
])
def test_a_bad_value_is_one_sentence(key, value, expected):
    with pytest.raises(ProfileError) as e:
        load_profile("tiny", **{key: value})
    msg = str(e.value)
    assert expected in msg and key in msg and "\n" not in msg
    with pytest.raises(ProfileError, match="is not valid"):  # also when the profile is built by hand
        check_profile(_bad_profile(key, value))


def _bad_profile(key, value):
    import dataclasses

    section, leaf = key.split(".")
    p = Profile()
    return dataclasses.replace(p, **{section: dataclasses.replace(getattr(p, section), **{leaf: value})})


def test_cispo_needs_its_cap_on_the_ratio():
    """TRL's cispo caps the ratio at epsilon_high itself; left unset it would be clip_eps (0.2), a weight cut by 5."""
    with pytest.raises(ProfileError, match="needs train.clip_eps_high") as e:
        load_profile("tiny", **{"train.loss_type": "cispo"})
    assert "\n" not in str(e.value)
    p = load_profile("tiny", **{"train.loss_type": "cispo", "train.clip_eps_high": 5.0,
                                "train.importance_sampling_level": "sequence"})
    assert (p.train.loss_type, p.train.clip_eps_high, p.train.importance_sampling_level) == ("cispo", 5.0, "sequence")
    assert load_profile("tiny").train.importance_sampling_level == "token"  # TRL's default, per-token ratios
