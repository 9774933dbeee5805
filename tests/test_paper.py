"""supersmall.paper: the papers' facts, each with a source and a kind, and the readings of Table 3 / Sec. 4.4."""

import json
import re
from collections import Counter
from pathlib import Path

import pytest

from supersmall import paper

FIXTURE = Path(paper.__file__).parent / "fixtures" / "math500.jsonl"
# The papers' plain-text copies, beside the repository (../shared/seeds); users do not have them
SEEDS = Path(paper.__file__).resolve().parents[2] / "shared" / "seeds"
LINE = re.compile(r"^(\d{3}):(\d+)(?:-(\d+))?$")  # "000:156" or "000:187-189"
OUTSIDE = ("data set", "README")  # a paper fact not in the seeds names its outside source


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


def test_derived_ratios_are_computed_from_table6():
    ratio = paper.fact("derived.ratio_over_base")  # the paper prints it: +373.0% (Table 6, 000:243)
    assert ratio.value == pytest.approx(35.0 / 7.4) and round(ratio.value, 2) == 4.73
    assert ratio.kind == "paper" and ratio.at.startswith("000:243") and "+373.0%" in ratio.note
    assert f"+{ratio.value - 1:.1%}" == "+373.0%"
    assert round(paper.value("derived.better_than_grpo"), 2) == 2.43
    assert round(paper.value("derived.better_than_grpo_other_arm"), 2) == 2.61  # against kl-penalty: > 2.5
    assert paper.fact("derived.better_than_grpo").kind == "choice"  # computed, not printed
    claimed = paper.fact("claims.ratio_over_base_project_page")
    assert (claimed.value, claimed.kind, claimed.source, claimed.at) == (3.7, "paper", "project page", "001:62")
    assert paper.value("claims.better_than_grpo_text") == 2.5


def _locators(fact):
    return [part.strip() for part in fact.at.split(",") if part.strip()]


def test_every_paper_fact_has_a_locator():
    for f in paper.facts():
        if f.kind != "paper":
            continue
        parts = _locators(f)
        assert parts, f"{f.key}: a paper fact needs `at` (document:line in the seeds, or its outside source)"
        for part in parts:
            assert LINE.match(part) or any(word in part for word in OUTSIDE), (f.key, part)


def test_fixed_facts_point_where_the_papers_say_them():
    at = {k: paper.fact(k) for k in ("hardware", "eq7.comparison", "claims.format_term", "deepmath.dataset",
                                     "claims.single_run", "openrs.eval.max_tokens", "stages.level5.5.start_from")}
    assert at["hardware"].source == "Sec. 4.1.3" and at["hardware"].at == "000:220"
    assert at["eq7.comparison"].kind == "paper" and at["eq7.comparison"].at == "000:156"
    assert "000:13" in _locators(at["claims.format_term"])  # the paper's own abstract
    assert "000:123" in _locators(at["deepmath.dataset"])
    assert at["claims.single_run"].source == "Sec. 4.5" and at["claims.single_run"].at == "000:343"
    assert "README" in at["openrs.eval.max_tokens"].source and "004:189" in at["openrs.eval.max_tokens"].note
    assert at["stages.level5.5.start_from"].kind == "choice"
    assert "README" in paper.fact("openrs.precision").note  # ZeRO-2 and the 3 + 1 GPU split


@pytest.mark.skipif(not SEEDS.is_dir(), reason="the papers' plain-text copies (../shared/seeds) are not here")
def test_cited_lines_exist_in_the_papers():
    docs = {p.name[:3]: p.read_text().splitlines() for p in SEEDS.glob("[0-9][0-9][0-9]_*.txt")}
    for f in paper.facts():
        for part in _locators(f):
            m = LINE.match(part)
            if not m:
                continue
            doc, first, last = m.group(1), int(m.group(2)), int(m.group(3) or m.group(2))
            assert doc in docs and 1 <= first <= last <= len(docs[doc]), (f.key, part)
            assert any(docs[doc][i - 1].strip() for i in range(first, last + 1)), (f.key, part, "blank line")
    # spot checks: the number is on the line cited
    text = {k: "\n".join(v) for k, v in docs.items()}
    line = lambda key: docs[paper.fact(key).at[:3]][int(LINE.match(_locators(paper.fact(key))[0]).group(2)) - 1]  # noqa: E731
    assert "373.0%" in line("derived.ratio_over_base") and "175/500" in line("table6.no-kl")
    assert "37/500" in line("table6.base") and "> 0.95" in line("eq7.comparison")
    assert "A6000" in line("hardware") and "DeepMath-103K" in line("deepmath.dataset")
    assert "3.7" in line("claims.ratio_over_base_project_page") and "2.5" in line("claims.better_than_grpo_text")
    assert "format consistency" in line("claims.format_term") and "46.6%" in line("curriculum.level4")
    assert "23.4%" in line("curriculum.level1-3.on_level4") and "1-3" in line("curriculum.stable_levels_text")
    assert "79.1%" in line("fig7.no-kl.level1") and "1.0e-06" in line("openrs.learning_rate")
    assert "lighteval" in text["004"] and "32768" not in text["004"]  # the eval settings are the README's
    for key, minutes in paper.table5_minutes().items():
        assert f"({minutes}" in line(f"table5.{key}"), key


def test_arm_readings_differ_only_in_the_kl_arms_reward():
    assert paper.ARMS == ("no-kl", "kl-nopenalty", "kl-penalty")
    assert paper.ARM_READINGS == ("isolated", "paper")
    for arm in paper.ARMS:
        iso, pap = paper.arm_settings(arm, "isolated"), paper.arm_settings(arm, "paper")
        assert paper.arm_settings(arm) == iso  # the default reading
        assert set(iso) == set(pap) == {"train.beta_kl_loss", "train.beta_kl_reward", "train.kl_penalty_loss",
                                        "reward.name"}
        differ = {"no-kl": set(), "kl-nopenalty": {"reward.name"},
                  "kl-penalty": {"reward.name", "train.beta_kl_loss", "train.kl_penalty_loss"}}[arm]
        assert {k for k in iso if iso[k] != pap[k]} == differ
        assert iso["reward.name"] == "supersmall"
    assert paper.arm_settings("no-kl") == {"train.beta_kl_loss": 0.0, "train.beta_kl_reward": 0.0,
                                           "train.kl_penalty_loss": False, "reward.name": "supersmall"}
    assert paper.arm_settings("kl-nopenalty", "paper") == {"train.beta_kl_loss": 0.04, "train.beta_kl_reward": 0.0,
                                                           "train.kl_penalty_loss": False, "reward.name": "bipolar"}
    assert paper.arm_settings("kl-penalty")["train.beta_kl_reward"] == 0.001
    # Table 3 as written: kl-penalty is standard GRPO (eq. 2), a KL loss AND the reward penalty
    assert paper.arm_settings("kl-penalty", "paper") == {"train.beta_kl_loss": 0.04, "train.beta_kl_reward": 0.001,
                                                         "train.kl_penalty_loss": True, "reward.name": "bipolar"}
    assert paper.arm_settings("kl-penalty", "isolated")["train.kl_penalty_loss"] is False
    # the paper gives no KL coefficient and no estimator: these are the kit's choices
    for key in ("arms.kl-nopenalty.beta_kl_loss", "arms.kl-penalty.beta_kl_reward", "kl.estimator_loss",
                "kl.estimator_reward", "arms.kl-penalty.reward.paper", "arms.kl-penalty.reward.isolated",
                "arms.kl-penalty.kl_loss.paper", "arms.kl-penalty.beta_kl_loss.paper"):
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
    assert "Table 6" in str(paper.fact("table6.base")) and "000:240" in str(paper.fact("table6.base"))
