import math
from collections import Counter

import pytest

from supersmall.curriculum import (
    PRESETS,
    Stage,
    bucket_table,
    build_schedule,
    difficulty_level,
    parse_stages,
)


@pytest.mark.parametrize("d,round_level,floor_level", [(2.5, 3, 2), (3.49, 3, 3), (3.5, 4, 3), (4.0, 4, 4),
                                                       (0, 0, 0), (8.99, 9, 8)])
def test_bucketing_at_boundaries(d, round_level, floor_level):
    assert difficulty_level(d, "round") == round_level  # half-up, not Python's round-half-even (2.5 -> 2)
    assert difficulty_level(d, "floor") == floor_level


def test_bad_difficulties():
    for bad in (math.nan, -1.0, math.inf):
        with pytest.raises(ValueError):
            difficulty_level(bad)
    for bad in ("4", None, True, [4]):
        with pytest.raises(TypeError):
            difficulty_level(bad)
    with pytest.raises(ValueError, match="scheme"):
        difficulty_level(4.0, "ceil")


def test_bucket_table():
    assert bucket_table([2.5, 3.49, 3.5, 4.0, 4.4], "round") == {3: 2, 4: 3}
    assert bucket_table([2.5, 3.49, 3.5, 4.0, 4.4], "floor") == {2: 1, 3: 2, 4: 2}


def test_parse_stages_and_presets():
    stages = parse_stages("1-3:100,4:100,5:100")
    assert stages == [Stage("level1-3", (1, 2, 3), 100), Stage("level4", (4,), 100), Stage("level5", (5,), 100)]
    assert parse_stages("level1-3:5,level5.5:2")[1] == Stage("level5.5", PRESETS["level5.5"], 2)
    for bad in ("1-3", "1-3:0", "x:10", ""):
        with pytest.raises(ValueError):
            parse_stages(bad)


POOL = [{"prompt": f"p{lvl}-{i}", "level": lvl} for lvl in range(1, 6) for i in range(30)]


def test_staged_switches_at_the_right_step_and_never_peeks_ahead():
    plan = build_schedule(POOL, "1-3:5,4:3,5:2", "staged", prompts_per_step=4, seed=0)
    assert len(plan.rows) == 10 * 4
    assert plan.boundaries == [("level1-3", 0, 5), ("level4", 5, 8), ("level5", 8, 10)]
    assert [plan.stage_at(s) for s in (0, 4, 5, 7, 8, 9)] == ["level1-3"] * 2 + ["level4"] * 2 + ["level5"] * 2
    for step in range(10):
        allowed = {"level1-3": {1, 2, 3}, "level4": {4}, "level5": {5}}[plan.stage_at(step)]
        assert {r["level"] for r in plan.rows_at(step)} <= allowed
    with pytest.raises(IndexError):
        plan.stage_at(10)


def test_cumulative_mixes_earlier_stages():
    plan = build_schedule(POOL, "1-3:5,4:20,5:20", "cumulative", prompts_per_step=8, seed=0)
    late = [r["level"] for s in range(25, 45) for r in plan.rows_at(s)]
    assert set(late) == {1, 2, 3, 4, 5}
    mid = [r["level"] for s in range(5, 25) for r in plan.rows_at(s)]
    assert set(mid) == {1, 2, 3, 4}


def test_shuffled_has_the_same_problems_in_another_order():
    staged = build_schedule(POOL, "1-3:5,4:5", "staged", prompts_per_step=4, seed=3)
    shuffled = build_schedule(POOL, "1-3:5,4:5", "shuffled", prompts_per_step=4, seed=3)
    assert Counter(r["prompt"] for r in staged.rows) == Counter(r["prompt"] for r in shuffled.rows)
    assert [r["prompt"] for r in staged.rows] != [r["prompt"] for r in shuffled.rows]
    assert {r["level"] for r in shuffled.rows_at(0) + shuffled.rows_at(1)} & {4}  # level 4 early


def test_missing_levels_are_an_error():
    with pytest.raises(ValueError, match="needs levels"):
        build_schedule(POOL, "6:3", "staged", prompts_per_step=2)
