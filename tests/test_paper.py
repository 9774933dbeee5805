"""supersmall.paper: the papers' facts, each with a source and a kind, and the readings of Table 3 / Sec. 4.4."""

import json
from collections import Counter
from pathlib import Path

import pytest

from supersmall import paper

FIXTURE = Path(paper.__file__).parent / "fixtures" / "math500.jsonl"


def _math500():
    return [json.loads(line) for line in FIXTURE.read_text().splitlines() if line.strip()]


def test_every_fact_has_a_kind_and_a_source():
    facts = paper.facts()
    assert len(facts) > 100
    for f in facts:
        assert f.kind in ("paper", "choice"), f.key
        assert f.source.strip(), f.key
        assert f.value is not None, f.key
    assert len({f.key for f in facts}) == len(facts)


def test_table6_is_whole_problem_counts_of_500():
    counts = {arm: paper.value(f"table6.{arm}") * 500 for arm in ("base", "kl-penalty", "kl-nopenalty", "no-kl")}
    assert counts == pytest.approx({"base": 37, "kl-penalty": 67, "kl-nopenalty": 72, "no-kl": 175})
    assert all(f.kind == "paper" and f.source == "Table 6" for f in paper.facts("table6."))
    assert paper.value("curriculum.level1-3") == paper.value("table6.no-kl")  # the same run
    assert (paper.value("curriculum.level4"), paper.value("curriculum.level5"),
            paper.value("curriculum.level5.5")) == (0.466, 0.442, 0.444)


def test_math500_counts_match_the_vendored_file():
    rows = _math500()
    assert sum(paper.MATH500_LEVEL_COUNTS.values()) == len(rows) == 500
    assert paper.MATH500_LEVEL_COUNTS == dict(Counter(int(r["level"]) for r in rows))
    assert paper.MATH500_LEVEL_COUNTS == {1: 43, 2: 90, 3: 105, 4: 128, 5: 134}
    assert paper.MATH500_SUBJECT_COUNTS == dict(Counter(r["subject"] for r in rows))
    assert paper.value("claims.problems_per_level_text") == 100  # what the paper says instead


def test_derived_ratios_are_computed_from_table6_and_marked_as_choices():
    ratio = paper.fact("derived.ratio_over_base")
    assert ratio.value == pytest.approx(35.0 / 7.4) and round(ratio.value, 2) == 4.73
    assert ratio.kind == "choice" and "Table 6" in ratio.note
    assert round(paper.value("derived.better_than_grpo"), 2) == 2.43
    claimed = paper.fact("claims.ratio_over_base_project_page")
    assert (claimed.value, claimed.kind, claimed.source) == (3.7, "paper", "project page")
    assert paper.value("claims.better_than_grpo_text") == 2.5


def test_arm_readings_differ_only_in_the_kl_arms_reward():
    assert paper.ARMS == ("no-kl", "kl-nopenalty", "kl-penalty")
    assert paper.ARM_READINGS == ("isolated", "paper")
    for arm in paper.ARMS:
        iso, pap = paper.arm_settings(arm, "isolated"), paper.arm_settings(arm, "paper")
        assert paper.arm_settings(arm) == iso  # the default reading
        assert set(iso) == set(pap) == {"train.beta_kl_loss", "train.beta_kl_reward", "reward.name"}
        assert {k for k in iso if iso[k] != pap[k]} == (set() if arm == "no-kl" else {"reward.name"})
        assert iso["reward.name"] == "supersmall"
    assert paper.arm_settings("no-kl") == {"train.beta_kl_loss": 0.0, "train.beta_kl_reward": 0.0,
                                           "reward.name": "supersmall"}
    assert paper.arm_settings("kl-nopenalty", "paper") == {"train.beta_kl_loss": 0.04, "train.beta_kl_reward": 0.0,
                                                           "reward.name": "bipolar"}
    assert paper.arm_settings("kl-penalty")["train.beta_kl_reward"] == 0.001
    # the paper gives no KL coefficient and no estimator: these are the kit's choices
    for key in ("arms.kl-nopenalty.beta_kl_loss", "arms.kl-penalty.beta_kl_reward", "kl.estimator_loss",
                "kl.estimator_reward", "arms.kl-penalty.reward.paper", "arms.kl-penalty.reward.isolated"):
        assert paper.fact(key).kind == "choice", key
    assert paper.fact("arms.no-kl.reward").kind == "paper"
    with pytest.raises(ValueError, match="use one of"):
        paper.arm_settings("no-kl", "loose")
    with pytest.raises(ValueError, match="unknown arm"):
        paper.arm_settings("kl")


def test_curriculum_readings():
    staged, cumulative = paper.stages("staged"), paper.stages("cumulative")
    assert list(staged) == ["level1-3", "level4", "level5", "level5.5", "level6"]
    assert [staged[s]["levels"] for s in staged] == [[1, 2, 3], [4], [5], [5], [6]]
    assert [cumulative[s]["levels"] for s in cumulative] == [[1, 2, 3], [1, 2, 3, 4], [1, 2, 3, 4, 5], [5], [6]]
    assert [staged[s]["start_from"] for s in staged] == ["base", "level1-3", "level4", "level5", "level5"]
    assert {s["steps"] for s in staged.values()} == {paper.value("table4.steps_per_epoch")} == {100}
    assert paper.fact("stages.level1-3.levels").kind == "paper"
    assert paper.fact("stages.level4.levels.staged").kind == paper.fact("stages.level4.levels.cumulative").kind == "choice"
    assert paper.fact("stages.steps").kind == "choice" and paper.fact("stages.level4.start_from").kind == "choice"
    assert paper.CURRICULUM_READINGS == ("staged", "cumulative")
    with pytest.raises(ValueError):
        paper.stages("shuffled")


def test_table5_and_table4():
    assert paper.table5_minutes() == {"kl-penalty": 58.4, "kl-nopenalty": 58.0, "no-kl": 90.5,
                                      "level4-no-kl": 130.2, "level5-no-kl": 142.6, "level6-no-kl": 138.0}
    t4 = {f.key.removeprefix("table4."): f.value for f in paper.facts("table4.") if f.key != "table4.not_given"}
    assert t4 == {"learning_rate": 5e-6, "batch_size": 16, "temperature": 0.6, "max_prompt_length": 1024,
                  "max_completion_length": 4096, "steps_per_epoch": 100}
    assert (paper.value("eq7.threshold"), paper.value("eq7.penalty")) == (0.95, -0.1)
    assert (paper.value("eq6.correct"), paper.value("eq6.wrong")) == (1.0, 0.0)
    assert [paper.value(f"fig7.no-kl.level{lv}") for lv in (1, 2, 3)] == [0.791, 0.589, 0.410]


def test_open_rs_cosine_replaces_accuracy():
    assert paper.value("openrs.exp2.reward_weights") == {"format": 1.0, "accuracy": 2.0}
    assert paper.value("openrs.exp3.reward_weights") == {"format": 1.0, "cosine": 2.0}
    assert paper.fact("openrs.exp3.reward_weights").source == "Open-RS App. E"


def test_unknown_key_names_a_close_key_and_values_are_copies():
    with pytest.raises(ValueError, match="table6.no-kl"):
        paper.fact("table6.nokl")
    with pytest.raises(KeyError):
        paper.value("no.such.thing.at.all")
    paper.value("math500.level_counts")[1] = 0
    assert paper.value("math500.level_counts")[1] == 43
    assert "Table 6" in str(paper.fact("table6.base"))
