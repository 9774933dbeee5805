from pathlib import Path

import pytest

from supersmall.config import Profile, ProfileError, available_profiles, load_profile, profile_table


def test_shipped_profiles_load_typed():
    assert {"tiny", "a6000x4"} <= set(available_profiles())
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
