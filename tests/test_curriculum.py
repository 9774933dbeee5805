import math
from collections import Counter

import pytest

from supersmall import plots
from supersmall.curriculum import (
    Stage,
    bucket_table,
    build_schedule,
    difficulty_level,
    parse_levels,
    parse_stages,
    stage_name,
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


@pytest.mark.parametrize("spec,levels", [("1-3", (1, 2, 3)), ("4", (4,)), ("5+6", (5, 6)), ("level1-3", (1, 2, 3)),
                                         ("level4", (4,)), (" 2-4 ", (2, 3, 4)), ("1-2+5", (1, 2, 5)), (4, (4,)),
                                         ([4, 5], (4, 5)), ((1, 3), (1, 3))])
def test_parse_levels(spec, levels):
    assert parse_levels(spec) == levels


@pytest.mark.parametrize("bad", ["1,2", "1-3,4", "", "x", "3-1", "level", "5.5", "level5.5", True, "-1"])
def test_parse_levels_rejects(bad):
    with pytest.raises(ValueError):  # commas separate stages, never levels
        parse_levels(bad)


def test_stage_name():
    assert stage_name((1, 2, 3)) == "level1-3"
    assert stage_name([3, 1, 2]) == "level1-3"
    assert stage_name((4,)) == "level4"
    assert stage_name((5, 7)) == "level5+7"
    for spec in ("1-3", "4", "5+6", "2+3+4"):  # the name reads back as the same levels
        assert parse_levels(stage_name(parse_levels(spec))) == parse_levels(spec)


def test_parse_stages():
    stages = parse_stages("1-3:100,4:100,5:100")
    assert stages == [Stage("level1-3", (1, 2, 3), 100), Stage("level4", (4,), 100), Stage("level5", (5,), 100)]
    assert parse_stages("level1-3:5,level4:2") == [Stage("level1-3", (1, 2, 3), 5), Stage("level4", (4,), 2)]
    assert parse_stages("5+6:3") == [Stage("level5-6", (5, 6), 3)]
    assert parse_stages("5+7:3") == [Stage("level5+7", (5, 7), 3)]
    # NAME=LEVELS:STEPS keeps the name (the paper's "level5.5" trains on level 5 again)
    assert parse_stages("level1-3:5,level5.5=5:2")[1] == Stage("level5.5", (5,), 2)
    assert parse_stages(" 1-3:5 , ,4:1")[1] == Stage("level4", (4,), 1)  # blanks between commas are skipped
    given = [Stage("x", (1,), 1)]
    assert parse_stages(given) == given
    for bad in ("1-3", "1-3:0", "x:10", "", "1-3:-2", "1-3:x", "level5.5:2", ","):
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


def test_plots_of_buckets_and_schedule():
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    ax = plots.buckets([2.5, 3.49, 3.5, 4.0, 4.4])
    heights = [round(p.get_height()) for p in ax.patches]
    # levels 2, 3, 4: round (half-up) then floor, one bar per level and scheme
    assert heights == [0, 2, 3, 1, 2, 2]
    plan = build_schedule(POOL, "1-3:5,4:3,5:2", "staged", prompts_per_step=4, seed=0)
    ax = plots.schedule(plan)
    assert len(ax.collections[0].get_offsets()) == len(plan.rows)
    assert [round(line.get_xdata()[0]) for line in ax.get_lines()] == [5, 8]  # dashed lines at stage starts
    plt.close("all")
