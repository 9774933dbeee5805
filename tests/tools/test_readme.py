"""The README's figures table is generated from a series' claims.json, and its ranges are prediction intervals."""

import json
import math

import pytest
from scipy import stats as st

from supersmall.runner import REPO_ROOT
from supersmall.tools import readme

CLAIMS = REPO_ROOT / "docs" / "claims.json"


def _verdict(diffs, verdict="inconclusive", family="exploratory"):
    m = sum(diffs) / len(diffs)
    return {"mean_difference": m, "interval": [m - 0.1, m + 0.1], "verdict": verdict, "p_value": 0.1,
            "p_adjusted": 0.2, "family": family, "seeds_same_sign": f"{len(diffs)} of {len(diffs)}",
            "per_seed": [{"difference": d, "se": 0.01} for d in diffs]}


def test_rerun_range_is_the_prediction_interval_of_a_mean_of_k_new_seeds():
    diffs = [0.30, 0.35, 0.41, 0.38, 0.33]
    n_ranges = 17
    lo, hi = readme.rerun_range(diffs, n_ranges=n_ranges)
    k, m, sd = 5, sum(diffs) / 5, st.tstd(diffs)
    conf = 1 - 0.05 / n_ranges  # Bonferroni: all of a table's ranges hold together with 95% probability
    half = st.t.ppf(0.5 + conf / 2, k - 1) * sd * math.sqrt(1 / k + 1 / k)
    assert lo == pytest.approx(m - half) and hi == pytest.approx(m + half)
    assert readme.rerun_range([0.3]) is None  # one seed: no spread, no range
    # identical seeds still get a range as wide as one seed's own standard error allows
    lo, hi = readme.rerun_range([0.2, 0.2, 0.2], se=0.01)
    assert lo < 0.2 - 0.01 and hi > 0.2 + 0.01
    # and a range never leaves what the figure can be
    assert readme.rerun_range([0.0, 0.9], bounds=(0.0, 1.0)) == (0.0, 1.0)


def test_table_states_figures_verdicts_and_machine_readable_ranges():
    claims = {"00.base_eval": {"value": {"accuracy": 0.186, "ci": [0.154, 0.222], "reasoning_rate": 0.0}},
              "08.zerogrpo_improves_the_base_model": {"value": _verdict([0.30, 0.35, 0.41], "reproduced",
                                                                        "paper claim")},
              "03.arms_paper": {"value": [{**_verdict([0.01, -0.02, 0.0]), "claim": "a"},
                                          {**_verdict([0.02, 0.0, 0.01]), "claim": "b"}]}}
    text = readme.table(claims)
    assert "18.6% [15.4, 22.2]" in text and "+35.3 points" in text and "reproduced (3 of 3 seeds agree" in text
    assert "<!-- claim 00.base_eval accuracy 0.1860 0.1860 -->" in text
    assert "<!-- claim 03.arms_paper 1.mean_difference" in text
    assert readme.range_sentence(3) in text and "sqrt(1/k + 1/k)" in text  # 3 ranges: 05.gain and 2 arms
    # a table never states a range that excludes its own figure
    for line in text.splitlines():
        if "<!-- claim 08.zerogrpo" in line:
            marker = "<!-- claim 08.zerogrpo_improves_the_base_model mean_difference "
            lo, hi = (float(x) for x in line.split(marker)[1].split(" -->")[0].split())
            assert lo < sum([0.30, 0.35, 0.41]) / 3 < hi


def test_every_marker_path_reads_its_figure_from_the_claims_it_came_from():
    """Each ``<!-- claim KEY PATH LOW HIGH -->`` must name a figure that exists in the claims file (a list of
    rows inside a dict is ``rows.0.mean_difference``), and the figure must lie inside its own range."""
    import re

    claims = json.loads(CLAIMS.read_text())
    markers = re.findall(r"<!-- claim (\S+) (\S+) (\S+) (\S+) -->", readme.table(claims))
    assert len(markers) >= 10
    for key, path, lo, hi in markers:
        value = claims[key]["value"]
        for part in path.split("."):
            value = value[int(part)] if isinstance(value, list) else value[part]
        assert float(lo) - 1e-4 <= value <= float(hi) + 1e-4, (key, path, value, lo, hi)


def test_replace_block_needs_the_markers():
    with pytest.raises(ValueError, match="generated block"):
        readme.replace_block("no markers here", "x")
    text = f"a\n{readme.BEGIN}\nold\n{readme.END}\nb"
    assert readme.replace_block(text, "new") == f"a\n{readme.BEGIN}\nnew\n{readme.END}\nb"


def test_committed_readme_is_what_its_claims_generate():
    """The table in README.md is `python -m supersmall.tools.readme docs/claims.json` of the committed claims file
    (a figure typed by hand, or a claims file updated without regenerating, fails here)."""
    claims = json.loads(CLAIMS.read_text())
    text = (REPO_ROOT / "README.md").read_text()
    assert readme.replace_block(text, readme.table(claims)) == text, \
        "README.md's figures table is stale: run python -m supersmall.tools.readme docs/claims.json"
