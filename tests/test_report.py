"""supersmall.report: the paper's numbers as data, loading run cards, verdicts from synthetic cards, export."""

import pytest

from supersmall import report
from supersmall.evaluate import wilson_interval
from supersmall.runcard import write_run_card

PPL = 100  # problems per level in the synthetic cards: 500 held-out problems per run


def _card(arm, base, final, folder="run", stages=(), per_stage=None, seconds=60.0, schedule="staged"):
    metrics = {"base_accuracy": base, "final_accuracy": final, "train_seconds": seconds}
    if per_stage:
        metrics["per_stage"] = per_stage
    return {"kind": "train", "status": "complete", "arm": arm, "stages": list(stages), "folder": folder,
            "config": {"eval": {"problems_per_level": PPL}, "curriculum": {"schedule": schedule}},
            "metrics": metrics}


def _row(rows, start):
    return next(r for r in rows if r["claim"].startswith(start))


def test_paper_numbers_are_whole_problem_counts_on_math500():
    # Table 6: 37, 67, 72 and 175 of 500 problems
    counts = {k: v * 500 for k, v in report.PAPER["table6"].items()}
    assert counts == pytest.approx({"base": 37, "kl-penalty": 67, "kl-nopenalty": 72, "no-kl": 175})
    assert report.PAPER["curriculum"]["level1-3"] == report.PAPER["table6"]["no-kl"]  # the same run
    assert set(report.PAPER["table5_minutes"]) >= {"kl-penalty", "kl-nopenalty", "no-kl"}


def test_improvement_verdict_pools_runs_and_uses_non_overlapping_intervals():
    cards = [_card("no-kl", 0.20, 0.60, "a"), _card("no-kl", 0.20, 0.50, "b")]
    row = _row(report.verdicts(cards), "ZeroGRPO improves")
    assert row["verdict"] == report.REPRODUCED
    lo, hi = wilson_interval(550, 1000)  # (0.6 * 500 + 0.5 * 500) of 1000 problems
    assert f"55.0% [{lo:.1%}, {hi:.1%}]" in row["measured"] and "(2 runs)" in row["measured"]
    flat = _row(report.verdicts([_card("no-kl", 0.30, 0.32)]), "ZeroGRPO improves")
    assert flat["verdict"] == report.NOT_REPRODUCED  # 150/500 vs 160/500: the intervals overlap
    ratio = _row(report.verdicts(cards), "'up to 3.7x'")
    assert ratio["measured"] == "2.75x" and ratio["verdict"] == report.NOT_TESTABLE


def test_kl_arms_verdict_and_beta_sweep_runs_are_left_out():
    cards = [_card("no-kl", 0.2, 0.6), _card("kl-nopenalty", 0.2, 0.3), _card("kl-penalty", 0.2, 0.35)]
    assert _row(report.verdicts(cards), "removing the KL")["verdict"] == report.REPRODUCED
    close = [_card("no-kl", 0.2, 0.6), _card("kl-nopenalty", 0.2, 0.58), _card("kl-penalty", 0.2, 0.35)]
    assert _row(report.verdicts(close), "removing the KL")["verdict"] == report.NOT_REPRODUCED
    # a beta-sweep run of a KL arm does not count as the arm at the paper's default coefficient
    swept = [*cards, _card("kl-penalty", 0.2, 0.9, folder="03_kl/beta-0.5")]
    assert _row(report.verdicts(swept), "removing the KL")["verdict"] == report.REPRODUCED
    # without all three arms the claim is not in the table (nothing measured to decide it)
    assert not [r for r in report.verdicts(cards[:2]) if r["claim"].startswith("removing the KL")]


def _stage(name, acc, l1, l2):
    return {"stage": name, "step": 0, "accuracy": acc, "per_level": {"1": l1, "2": l2, "3": 0.3, "4": 0.2, "5": 0.1}}


def test_curriculum_and_forgetting_verdicts():
    stages = [("level1-3", 0, 20), ("level4", 20, 40), ("level5", 40, 60)]
    rise = _card("no-kl", 0.2, 0.55, stages=stages, per_stage=[
        _stage("level1-3", 0.40, 0.9, 0.8), _stage("level4", 0.55, 0.85, 0.7), _stage("level5", 0.55, 0.8, 0.7)])
    rows = report.verdicts([rise])
    level4 = _row(rows, "a level-4 stage")
    lo_a, hi_a = wilson_interval(200, 500)
    assert level4["verdict"] == report.REPRODUCED and f"40.0% [{lo_a:.1%}, {hi_a:.1%}]" in level4["measured"]
    forget = _row(rows, "training on the hardest level")
    assert forget["verdict"] == report.REPRODUCED and "drop by 10.0 points" in forget["measured"]  # 0.85 -> 0.75
    flat = _card("no-kl", 0.2, 0.42, stages=stages, per_stage=[
        _stage("level1-3", 0.40, 0.9, 0.8), _stage("level4", 0.42, 0.9, 0.8), _stage("level5", 0.42, 0.9, 0.79)])
    rows = report.verdicts([flat])
    assert _row(rows, "a level-4 stage")["verdict"] == report.NOT_REPRODUCED
    assert _row(rows, "training on the hardest level")["verdict"] == report.NOT_REPRODUCED
    # the staged runs are not pooled with the plain no-kl runs
    assert not [r for r in rows if r["claim"].startswith("ZeroGRPO improves")]


def test_full_scale_claims_are_not_testable_on_tiny():
    rows = report.verdicts([], scale="tiny")
    assert {r["verdict"] for r in rows} == {report.NOT_TESTABLE}
    assert any("Table 5" in r["claim"] for r in rows) and any("7.4%" in r["claim"] for r in rows)


def test_load_cards_keeps_complete_training_runs(tmp_path):
    write_run_card(tmp_path / "05_training" / "no-kl", kind="train", seed=0, metrics={"final_accuracy": 0.5},
                   extra={"arm": "no-kl"})
    write_run_card(tmp_path / "03_kl" / "kl-penalty", kind="train", seed=0, status="running")
    write_run_card(tmp_path / "06_evaluation" / "eval", kind="eval", seed=0, metrics={"accuracy": 0.1})
    cards = report.load_cards(tmp_path)
    assert [c["folder"] for c in cards] == ["05_training/no-kl"]
    assert report.load_cards(tmp_path / "missing") == []


def test_runtime_table_is_mean_minutes_per_arm():
    cards = [_card("no-kl", 0.2, 0.5, seconds=60), _card("no-kl", 0.2, 0.5, seconds=180),
             _card("kl-penalty", 0.2, 0.3, seconds=30)]
    rows = {r["arm"]: r for r in report.runtime_table(cards)}
    assert rows["no-kl"]["measured (min, mean)"] == 2.0 and rows["no-kl"]["runs"] == 2
    assert rows["kl-penalty"]["measured (min, mean)"] == 0.5
    assert rows["no-kl"]["paper (min, 4x A6000)"] == report.PAPER["table5_minutes"]["no-kl"]


def test_export_writes_markdown_and_html(tmp_path):
    paths = report.export(["# Report", "| claim | verdict |\n|---|---|\n| x | reproduced |"], tmp_path / "out")
    md, html = paths["md"].read_text(), paths["html"].read_text()
    assert "# Report" in md and "| x | reproduced |" in md
    assert "<html" in html.lower() and "reproduced" in html


def test_per_level_table_pools_runs_beside_fig7():
    levels = {"1": 0.8, "2": 0.6, "3": 0.4, "4": 0.2, "5": 0.0}
    a = _card("no-kl", 0.2, 0.5, "a")
    b = _card("no-kl", 0.2, 0.5, "b")
    a["metrics"].update(per_level_base={k: 0.1 for k in levels}, per_level_final=levels)
    b["metrics"].update(per_level_base={k: 0.3 for k in levels}, per_level_final={k: v / 2 for k, v in levels.items()})
    rows = report.per_level_table([a, b, _card("kl-penalty", 0.2, 0.3)])
    assert [r["level"] for r in rows] == ["1", "2", "3", "4", "5"]
    assert rows[0]["paper no-kl (Fig. 7)"] == 0.791 and rows[4]["paper no-kl (Fig. 7)"] is None
    lo, hi = wilson_interval(120, 200)  # level 1: (0.8 + 0.4) / 2 of 2 x 100 problems
    assert rows[0]["measured final"] == f"60.0% [{lo:.1%}, {hi:.1%}]"
    lo, hi = wilson_interval(40, 200)  # base: (0.1 + 0.3) / 2
    assert rows[0]["measured base"] == f"20.0% [{lo:.1%}, {hi:.1%}]"
    assert report.per_level_table([_card("kl-penalty", 0.2, 0.3)]) == []
