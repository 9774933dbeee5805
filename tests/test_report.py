"""supersmall.report: verdicts from paired per-seed evidence, read from fabricated evaluation folders.

50 problems, 10 per level (index i has level i // 10 + 1). A model "solves range(0, k)" when it is
correct on problems 0 .. k-1, so paired differences are easy to work out by hand.
"""

import json
import math

import pytest
from scipy import stats as st

from supersmall import experiments, paper, report, stats
from supersmall.evaluation import Evaluation
from supersmall.runcard import write_run_card

N, PER_LEVEL, SEEDS = 50, 10, (0, 1, 2, 3, 4)  # 5 seeds, as the profile's notebooks.claim_seeds
REQUIRED = {"claim", "paper", "measured", "interval", "verdict", "n_seeds", "rule", "per_seed", "run_cards",
            "p_value", "p_adjusted", "mde", "seeds_agree", "seeds_against", "dropped_seeds", "size", "family", "reason",
            "se_seeds", "se_problems", "share_seeds", "share_problems"}


def _problem_se(per_problem):
    """The problem-level standard error by hand: average each problem's difference over the seeds, then the
    standard error of the mean over the problems, sd / sqrt(n) (not divided by the number of seeds)."""
    n = len(per_problem)
    m = sum(per_problem) / n
    return math.sqrt(sum((x - m) ** 2 for x in per_problem) / (n - 1) / n)


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
        # claim 1: no-kl solves 25 + s against the base's 5 -> +0.40, +0.42, ..., +0.48
        _eval(root, f"no-kl-{s}", range(25 + s), arm="no-kl", stage="level1-3", seed=s)
        # claim 2: the seeds disagree: 25+s vs 15 / 35 / 15 / 15 / 15 -> +0.20, -0.18, +0.24, +0.26, +0.28
        _eval(root, f"kl-nopenalty-{s}", range(35 if s == 1 else 15), arm="kl-nopenalty", stage="level1-3",
              seed=s)
        # claim 3: kl-penalty is always better: 25+s vs 35+2s -> -0.20, -0.22, ..., -0.28
        _eval(root, f"kl-penalty-{s}", range(35 + 2 * s), arm="kl-penalty", stage="level1-3", seed=s)
        # claim 4: the level-4 stage solves 30+2s against 25+s -> +0.10, +0.12, ..., +0.18
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
    assert base.levels == [1, 2, 3, 4, 5] and len(base.scores([2])) == PER_LEVEL
    assert isinstance(base, Evaluation) and base.series == "s1" and base.path.name == "base"
    old, _ = _claims(runs, series="s0")
    assert [r.name for r in old] == ["base-old"]


def test_consistent_gain_is_supported_and_pinned(runs):
    _, rows = _claims(runs)
    up = rows["ZeroGRPO improves the base model"]
    assert up["verdict"] == "supported" and up["n_seeds"] == 5 and (up["seeds_agree"], up["seeds_against"]) == (5, 0)
    diffs = [0.40, 0.42, 0.44, 0.46, 0.48]
    assert [p["difference"] for p in up["per_seed"]] == pytest.approx(diffs)
    # base solves 0..4, seed s solves 0..24+s: averaged over seeds, problems 5..24 moved by 1, problem 25 by 4/5,
    # 26 by 3/5, 27 by 2/5, 28 by 1/5, the rest by 0; its standard error is shared by every seed
    pse = _problem_se([0] * 5 + [1] * 20 + [0.8, 0.6, 0.4, 0.2] + [0] * 21)
    a = 0.02 ** 2 * 2.5 / 5  # the seeds' variance: sd of 0.40..0.48 is 0.0316, s^2 / k
    se = math.sqrt(a + pse ** 2)
    df = 4  # the seeds' k - 1
    half = st.t.ppf(0.975, df) * se
    assert up["se_problems"] == pytest.approx(pse) and up["se_seeds"] == pytest.approx(math.sqrt(a))
    assert up["interval"] == pytest.approx([0.44 - half, 0.44 + half], abs=1e-6)
    assert up["p_value"] == pytest.approx(2 * st.t.sf(0.44 / se, df))
    assert up["share_problems"] == pytest.approx(pse ** 2 / (a + pse ** 2)) and up["share_problems"] > 0.9
    assert up["mde"] == pytest.approx(stats.minimum_detectable_effect(5, up["sd"], problem_se=pse, family_size=5))
    assert up["family"] == "paper claim" and up["dropped_seeds"] == []
    assert up["size"] == "contains the paper's effect" and up["interval"][0] < 0.276  # +27.6 points (35.0 - 7.4)
    assert "7.4% -> 35.0%" in up["paper"] and "Table 6" in up["paper"]
    assert not any("base-old" in p for p in up["run_cards"])  # the other series is never paired
    level4 = rows["a level-4 stage raises accuracy"]
    # on 50 problems the shared problems' error keeps it undecided: off zero alone, not after Holm over five
    assert level4["verdict"] == "inconclusive" and "46.6%" in level4["paper"] and level4["interval"][0] > 0
    assert level4["p_value"] < 0.05 <= level4["p_adjusted"] and "Holm" in level4["reason"]
    assert [p["difference"] for p in level4["per_seed"]] == pytest.approx([0.10, 0.12, 0.14, 0.16, 0.18])


def test_the_claims_are_one_holm_family(runs):
    _, rows = _claims(runs)
    rows = list(rows.values())
    assert len(rows) == 5 and {r["family"] for r in rows} == {"paper claim"}
    assert [r["p_adjusted"] for r in rows] == pytest.approx(stats.holm([r["p_value"] for r in rows]))
    assert all(r["p_adjusted"] >= r["p_value"] for r in rows)
    smallest = min(rows, key=lambda r: r["p_value"])
    assert smallest["p_adjusted"] == pytest.approx(5 * smallest["p_value"])
    # a notebook's comparison is exploratory: never adjusted, and labelled so
    evals, _ = _claims(runs)
    by = {(r.arm, r.stage, r.seed): r for r in evals}
    extra = report.paired("level 4 beats level 5 overall", [(s, by[("no-kl", "level5", s)], by[("no-kl", "level4", s)])
                                                            for s in SEEDS])
    assert extra["family"] == "exploratory" and extra["p_adjusted"] == extra["p_value"]
    assert report.paper_family([extra]) == [extra]


def test_seeds_that_disagree_are_inconclusive_and_consistent_losses_contradict(runs):
    _, rows = _claims(runs)
    mixed = rows["no-kl beats kl-nopenalty"]
    assert [p["difference"] for p in mixed["per_seed"]] == pytest.approx([0.20, -0.18, 0.24, 0.26, 0.28])
    assert mixed["verdict"] == "inconclusive" and mixed["interval"][0] < 0 < mixed["interval"][1]
    assert (mixed["seeds_agree"], mixed["seeds_against"]) == (4, 1)
    assert "reward" in mixed["note"]  # the paper's KL arms also changed the reward (Table 3)
    worse = rows["no-kl beats kl-penalty"]
    assert worse["verdict"] == "contradicted" and worse["interval"][1] < 0 and worse["seeds_agree"] == 0
    assert "35.0% vs 13.4%" in worse["paper"] and worse["size"] == "excludes it (smaller)"


def test_forgetting_uses_levels_1_2_only_and_direction_minus_one(runs):
    _, rows = _claims(runs)
    forget = rows["level-5 training lowers levels 1-2 (forgetting)"]
    assert [p["n"] for p in forget["per_seed"]] == [2 * PER_LEVEL] * 5
    assert [p["difference"] for p in forget["per_seed"]] == pytest.approx([-0.15, -0.20, -0.25, -0.30, -0.35])
    assert forget["seeds_agree"] == 5 and "no effect size" in forget["size"]  # Fig. 10 prints none
    assert forget["direction"] == -1 and forget["mean_difference"] < 0 and forget["seeds_against"] == 0
    # 20 problems per seed: the problems' shared error (not divided by the seeds) leaves it undecided
    assert forget["verdict"] == "inconclusive" and forget["share_problems"] > 0.8
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
    assert rows[0]["mde"] == math.inf and rows[0]["p_value"] == 1.0
    assert report.claims(report.load_evals(tmp_path / "nothing")) == []


def test_a_dropped_seed_is_named_in_the_row(tmp_path):
    _eval(tmp_path, "base", range(5), role="base")
    for s in range(6):
        _eval(tmp_path, f"no-kl-{s}", range(25 + s), arm="no-kl", stage="level1-3", seed=s)
        if s != 3:  # seed 3's kl-penalty run is missing
            _eval(tmp_path, f"kl-penalty-{s}", range(35 + s), arm="kl-penalty", stage="level1-3", seed=s)
    rows = {r["claim"]: r for r in report.claims(report.load_evals(tmp_path))}
    row = rows["no-kl beats kl-penalty"]
    assert row["dropped_seeds"] == [3] and row["n_seeds"] == 5 and "dropped: seed(s) 3" in row["measured"]
    assert [p["seed"] for p in row["per_seed"]] == [0, 1, 2, 4, 5]
    assert rows["ZeroGRPO improves the base model"]["dropped_seeds"] == []
    # the same seed dropped from a size-less stand-in: the size is not read
    tiny = report.claims(report.load_evals(tmp_path), size_transfers=False)
    assert {r["size"] for r in tiny} == {stats.NO_TRANSFER}


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
    assert (base["ci_low"], base["ci_high"]) == pytest.approx(stats.mean_interval(base_scores := [1] * 5 + [0] * 45))
    assert len(base_scores) == N
    l1 = next(r for r in rows if r["run"] == "no-kl-0" and r["subset"] == "level 1")
    assert (l1["paper"], l1["n"]) == (0.791, PER_LEVEL) and "Fig. 7" in l1["paper_source"]
    l4 = next(r for r in rows if r["run"] == "level4-0" and r["subset"] == "all")
    assert l4["paper"] == paper.value("curriculum.level4")
    assert "verdict" not in base


def test_paper_errata_are_computed_from_paper_values():
    rows = {r["topic"]: r for r in paper.errata()}
    base = rows["gain over the base"]  # the paper prints +373.0%; 3.7x is the project page's
    assert "+373.0% (Table 6, 000:243" in base["paper says"] and "3.7x (project page, 001:62)" in base["paper says"]
    assert "4.73x" in base["its numbers give"] and "3.73x" in base["its numbers give"]
    assert base["kind"] == "error (project page)"
    grpo = rows["gain over standard GRPO"]  # holds against kl-penalty (2.61x), the text's reading: ambiguous
    assert grpo["kind"] == "ambiguity" and "000:228" in grpo["paper says"] and "2.5x" in grpo["paper says"]
    assert "2.61x against kl-penalty" in grpo["its numbers give"] and "2.43x" in grpo["its numbers give"]
    assert "43 / 90 / 105 / 128 / 134" in rows["MATH-500 problems per level"]["its numbers give"]
    assert "000:166" in rows["MATH-500 problems per level"]["paper says"]
    assert "no format term" in rows["format term in the reward"]["its numbers give"]
    assert "000:13" in rows["format term in the reward"]["paper says"]  # the paper's own abstract
    forget = rows["forgetting after level 5"]  # the paper against itself
    assert forget["kind"] == "contradiction" and "000:327" in forget["paper says"] and "000:335" in forget["paper says"]
    assert all(r["paper says"] and r["kind"] for r in rows.values())


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
    assert "inconclusive" in md and "contradicted" in md and "4.73x" in md and "base-old" in md
    assert "Holm" in md and "5 of 5" in md and "reproduced" not in md.split("## Accuracy")[0]
    assert "<html" in html.lower() and "Replication report" in html


def test_points_and_accuracy_formatters():
    row = {"mean_difference": 0.37333, "interval": [0.31406, 0.43261]}
    assert report.interval_points(row["interval"]) == "[+31.4, +43.3]"
    assert report.points(row) == "+37.3 points [+31.4, +43.3]"
    assert report.points({"mean_difference": -0.099, "interval": [-0.464, 0.265]}) == "-9.9 points [-46.4, +26.5]"
    recs = [{"index": i, "correct": ok, "level": lv} for i, ok, lv in ((0, 1, 1), (1, 0, 1), (2, 1, 2))]
    ev = Evaluation(recs + [{"index": 3, "sample": s, "correct": s == 0, "level": 3} for s in range(2)])
    assert ev.accuracy() == pytest.approx(0.625) and ev.accuracy([1]) == 0.5 and ev.accuracy([2, 3]) == 0.75
    assert math.isnan(ev.accuracy([5]))


def test_differences_print_in_points_never_percent(runs, tmp_path):
    _, rows = _claims(runs)
    up = rows["ZeroGRPO improves the base model"]
    shown = report.interval_points(up["interval"])
    assert f"mean paired difference +44.0 points over 5 seed(s) {shown}" in up["measured"]
    assert "0: +40.0 (n=50)" in up["measured"] and "10.0% -> 54.0%" in up["measured"]
    with pytest.warns(UserWarning):
        md = report.write_report(runs, tmp_path / "out")["md"].read_text()
    assert f"{shown} points" in md and "+44.0%" not in md


def test_the_series_decides_the_same_claims_as_the_report(tmp_path):
    """experiments.series_claims reads report.claim_specs: the same claim texts, paper numbers, levels and
    directions, with the series' folder layout (an arm is a condition, a stage claim pairs two stages)."""
    runs = tmp_path / "nb"
    seeds = [0, 1]

    def write(folder, solved):
        folder.mkdir(parents=True)
        (folder / "records.jsonl").write_text("".join(
            json.dumps({"index": i, "correct": i in solved, "level": i // PER_LEVEL + 1}) + "\n" for i in range(N)))

    write(experiments.eval_dir(runs, "base"), range(5))
    for s in seeds:
        write(experiments.eval_dir(runs, "zerogrpo", s), range(25 + s))
        write(experiments.eval_dir(runs, "kl-penalty", s), range(35 + 2 * s))
        for stage, solved in (("level1-3", range(25)), ("level4", range(30 + 2 * s)), ("level5", set(range(3 + s, N)))):
            write(experiments.eval_dir(runs, "curriculum-staged", s, stage), solved)
    rows = {r["claim"]: r for r in experiments.series_claims("tiny", runs)}
    specs = {c.claim: c for c in report.claim_specs()}
    assert set(rows) == set(specs) - {"no-kl beats kl-nopenalty"}  # its runs are missing: left out
    for claim, row in rows.items():
        assert row["paper"] == specs[claim].paper and row["direction"] == specs[claim].direction
    assert [p["difference"] for p in rows["ZeroGRPO improves the base model"]["per_seed"]] == pytest.approx([0.4, 0.42])
    assert [p["difference"] for p in rows["no-kl beats kl-penalty"]["per_seed"]] == pytest.approx([-0.2, -0.22])
    forget = rows["level-5 training lowers levels 1-2 (forgetting)"]
    assert [p["n"] for p in forget["per_seed"]] == [2 * PER_LEVEL] * 2 and forget["per_seed"][0]["difference"] == -0.15
    assert "reward" in rows["no-kl beats kl-penalty"]["note"]


def test_seeds_needed_is_the_fewest_seeds_whose_mde_reaches_the_effect():
    n = report.seeds_needed(0.02, 0.03)
    assert n is not None and n >= stats.MIN_SEEDS
    assert stats.minimum_detectable_effect(n, 0.02) <= 0.03 < stats.minimum_detectable_effect(n - 1, 0.02)
    assert report.seeds_needed(0.01, 0.5) == stats.MIN_SEEDS  # below MIN_SEEDS nothing is detectable
    assert report.seeds_needed(0.1, 0.001) is None and report.seeds_needed(0.0, 0.05) is None
    assert report.seeds_needed(0.02, 0.0) is None and report.seeds_needed(math.nan, 0.05) is None
