"""supersmall.report: verdicts from paired per-seed evidence, read from fabricated evaluation folders.

50 problems, 10 per level (index i has level i // 10 + 1). A model "solves range(0, k)" when it is
correct on problems 0 .. k-1, so paired differences are easy to work out by hand.
"""

import json
import math

import pytest

from supersmall import paper, report, stats
from supersmall.runcard import write_run_card

N, PER_LEVEL, SEEDS = 50, 10, (0, 1, 2)
REQUIRED = {"claim", "paper", "measured", "interval", "verdict", "n_seeds", "rule", "per_seed", "run_cards"}


def _eval(root, name, solved, role="trained", arm=None, stage=None, seed=None, series="s1", created=None,
          samples=1):
    """An evaluation folder as evaluate writes it: records.jsonl + run_card.json (kind eval)."""
    folder = root / "eval" / name
    folder.mkdir(parents=True)
    with (folder / "records.jsonl").open("w") as fh:
        for i in range(N):
            for s in range(samples):
                ok = solved(i, s) if callable(solved) else i in solved
                fh.write(json.dumps({"index": i, "sample": s, "correct": bool(ok), "level": i // PER_LEVEL + 1,
                                     "subject": "Algebra", "truncated": False, "length": 12}) + "\n")
    acc = sum(1 for i in range(N) if (solved(i, 0) if callable(solved) else i in solved)) / N
    extra = {"model": f"m-{name}", "role": role, "arm": arm, "stage": stage, "series": series, "name": name}
    if created:
        extra["created"] = created
    write_run_card(folder, kind="eval", seed=seed, metrics={"accuracy": acc, "n": N}, extra=extra)
    return folder


@pytest.fixture(scope="module")
def runs(tmp_path_factory):
    root = tmp_path_factory.mktemp("runs")
    _eval(root, "base", range(5), role="base")
    # an old series whose base solves everything: it must never be paired with the s1 runs
    _eval(root, "base-old", range(N), role="base", series="s0", created="2020-01-01T00:00:00+00:00")
    for s in SEEDS:
        # claim 1: no-kl solves 25 + s against the base's 5 -> +0.40, +0.42, +0.44
        _eval(root, f"no-kl-{s}", range(25 + s), arm="no-kl", stage="level1-3", seed=s)
        # claim 2: the seeds disagree: 25+s vs 15 / 35 / 15 -> +0.20, -0.18, +0.24
        _eval(root, f"kl-nopenalty-{s}", range(35 if s == 1 else 15), arm="kl-nopenalty", stage="level1-3",
              seed=s)
        # claim 3: kl-penalty is always better: 25+s vs 35+2s -> -0.20, -0.22, -0.24
        _eval(root, f"kl-penalty-{s}", range(35 + 2 * s), arm="kl-penalty", stage="level1-3", seed=s)
        # claim 4: the level-4 stage solves 30+2s against 25+s -> +0.10, +0.12, +0.14
        _eval(root, f"level4-{s}", range(30 + 2 * s), arm="no-kl", stage="level4", seed=s)
        # claim 5: level 5 loses problems 0 .. 2+s (levels 1-2) but solves every problem of levels 3-5,
        # so it is *better* overall and worse on levels 1-2 only: -(3+s)/20 there
        _eval(root, f"level5-{s}", set(range(3 + s, N)), arm="no-kl", stage="level5", seed=s)
    return root


def _claims(root, **kw):
    with pytest.warns(UserWarning, match="left out"):
        evals = report.load_evals(root, **kw)
    return evals, {r["claim"]: r for r in report.claims(evals)}


def test_load_evals_keeps_one_series_and_lists_the_rest(runs):
    evals, _ = _claims(runs)
    assert evals.series == "s1" and len(evals) == 1 + 5 * len(SEEDS)
    assert any("base-old" in s and "'s0'" in s for s in evals.skipped)
    base = next(r for r in evals if r.role == "base")
    assert base.per_problem[4] == 1.0 and base.per_problem[5] == 0.0 and base.level_of[49] == 5
    assert sorted(base.per_level) == [1, 2, 3, 4, 5] and len(base.per_level[2]) == PER_LEVEL
    old, _ = _claims(runs, series="s0")
    assert [r.name for r in old] == ["base-old"]


def test_consistent_gain_is_reproduced_and_pinned(runs):
    _, rows = _claims(runs)
    up = rows["ZeroGRPO improves the base model"]
    assert up["verdict"] == "reproduced" and up["n_seeds"] == 3
    assert [p["difference"] for p in up["per_seed"]] == pytest.approx([0.40, 0.42, 0.44])
    # mean 0.42, sd 0.02, t(0.975, 2) = 4.302653 -> half-width 0.049683
    assert up["interval"] == pytest.approx([0.370317, 0.469683], abs=1e-6)
    assert "7.4% -> 35.0%" in up["paper"] and "Table 6" in up["paper"]
    assert not any("base-old" in p for p in up["run_cards"])  # the other series is never paired
    level4 = rows["a level-4 stage raises accuracy"]
    assert level4["verdict"] == "reproduced" and "46.6%" in level4["paper"]
    assert [p["difference"] for p in level4["per_seed"]] == pytest.approx([0.10, 0.12, 0.14])


def test_seeds_that_disagree_are_inconclusive_and_consistent_losses_are_not_reproduced(runs):
    _, rows = _claims(runs)
    mixed = rows["no-kl beats kl-nopenalty"]
    assert [p["difference"] for p in mixed["per_seed"]] == pytest.approx([0.20, -0.18, 0.24])
    assert mixed["verdict"] == "inconclusive" and mixed["interval"][0] < 0 < mixed["interval"][1]
    assert "reward" in mixed["note"]  # the paper's KL arms also changed the reward (Table 3)
    worse = rows["no-kl beats kl-penalty"]
    assert worse["verdict"] == "not reproduced" and worse["interval"][1] < 0
    assert "35.0% vs 13.4%" in worse["paper"]


def test_forgetting_uses_levels_1_2_only_and_direction_minus_one(runs):
    _, rows = _claims(runs)
    forget = rows["level-5 training lowers levels 1-2 (forgetting)"]
    assert [p["n"] for p in forget["per_seed"]] == [2 * PER_LEVEL] * 3
    assert [p["difference"] for p in forget["per_seed"]] == pytest.approx([-0.15, -0.20, -0.25])
    assert forget["verdict"] == "reproduced" and forget["direction"] == -1
    assert forget["interval"][1] < 0
    # on all 50 problems the same runs *gain*, so without the level filter the claim would fail
    evals, _ = _claims(runs)
    l4 = next(r for r in evals if r.stage == "level4" and r.seed == 0)
    l5 = next(r for r in evals if r.stage == "level5" and r.seed == 0)
    assert sum(l5.per_problem.values()) > sum(l4.per_problem.values())


def test_missing_runs_leave_the_claim_out_and_one_seed_is_inconclusive(tmp_path):
    _eval(tmp_path, "base", range(5), role="base")
    _eval(tmp_path, "no-kl-0", range(40), arm="no-kl", stage="level1-3", seed=0)
    evals = report.load_evals(tmp_path)
    assert evals.skipped == []
    rows = report.claims(evals)
    assert [r["claim"] for r in rows] == ["ZeroGRPO improves the base model"]
    assert rows[0]["n_seeds"] == 1 and rows[0]["verdict"] == "inconclusive"
    assert rows[0]["interval"] == [-math.inf, math.inf]
    assert report.claims(report.load_evals(tmp_path / "nothing")) == []


def test_samples_average_into_per_problem_fractions(tmp_path):
    _eval(tmp_path, "base", lambda i, s: s == 0, role="base", samples=2)
    (run,) = report.load_evals(tmp_path)
    assert set(run.per_problem.values()) == {0.5}


def test_absolute_table_sits_beside_the_papers_numbers(runs):
    evals, _ = _claims(runs)
    rows = report.absolute_table(evals)
    base = next(r for r in rows if r["role"] == "base" and r["subset"] == "all")
    assert base["accuracy"] == pytest.approx(0.1) and base["n"] == N
    assert (base["paper"], base["paper_source"]) == (paper.value("table6.base"), "Table 6")
    assert (base["ci_low"], base["ci_high"]) == pytest.approx(stats.wilson_interval(5, N))
    l1 = next(r for r in rows if r["run"] == "no-kl-0" and r["subset"] == "level 1")
    assert (l1["paper"], l1["paper_source"], l1["n"]) == (0.791, "Fig. 7", PER_LEVEL)
    l4 = next(r for r in rows if r["run"] == "level4-0" and r["subset"] == "all")
    assert l4["paper"] == paper.value("curriculum.level4")
    assert "verdict" not in base


def test_paper_errata_are_computed_from_paper_values():
    rows = {r["topic"]: r for r in report.paper_errata()}
    assert "3.7x" in rows["gain over the base"]["paper says"]
    assert "4.73x" in rows["gain over the base"]["its numbers give"]
    assert "2.5x" in rows["gain over standard GRPO"]["paper says"]
    assert "2.43x" in rows["gain over standard GRPO"]["its numbers give"]
    assert "43 / 90 / 105 / 128 / 134" in rows["MATH-500 problems per level"]["its numbers give"]
    assert "no format term" in rows["format term in the reward"]["its numbers give"]


def test_write_report_writes_verdicts_markdown_and_html(runs, tmp_path):
    with pytest.warns(UserWarning):
        paths = report.write_report(runs, tmp_path / "out")
    rows = json.loads(paths["verdicts"].read_text())
    assert len(rows) == 5
    for row in rows:
        assert REQUIRED <= set(row) and row["verdict"] in stats.VERDICTS and row["rule"] == stats.VERDICT_RULE
        assert row["run_cards"] and all(p.endswith("run_card.json") for p in row["run_cards"])
        assert set(row["per_seed"][0]) >= {"seed", "difference", "ci_low", "ci_high", "mcnemar_p", "n"}
    md, html = paths["md"].read_text(), paths["html"].read_text()
    assert "inconclusive" in md and "not reproduced" in md and "4.73x" in md and "base-old" in md
    assert "<html" in html.lower() and "Replication report" in html


def test_points_and_accuracy_formatters():
    row = {"mean_difference": 0.37333, "interval": [0.31406, 0.43261]}
    assert report.interval_points(row["interval"]) == "[+31.4, +43.3]"
    assert report.points(row) == "+37.3 points [+31.4, +43.3]"
    assert report.points({"mean_difference": -0.099, "interval": [-0.464, 0.265]}) == "-9.9 points [-46.4, +26.5]"
    ev = report.EvalRun(name="e", path=None, role="trained", arm=None, stage=None, seed=0, series=None,
                        per_problem={0: 1.0, 1: 0.0, 2: 1.0, 3: 0.5}, level_of={0: 1, 1: 1, 2: 2, 3: 3})
    assert ev.accuracy() == pytest.approx(0.625) and ev.accuracy([1]) == 0.5 and ev.accuracy([2, 3]) == 0.75
    assert math.isnan(ev.accuracy([5]))
