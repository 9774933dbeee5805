"""The README's figures table is generated from a series' claims.json: verdicts decided again by the current rule,
and rerun checks that can fail (exact on the same machine, pre-registered margins anywhere)."""

import copy
import json
import re

import pytest

from supersmall import stats
from supersmall.runner import REPO_ROOT
from supersmall.tools import readme

CLAIMS = REPO_ROOT / "docs" / "claims.json"


def _verdict(diffs, family="exploratory", direction=+1, se=0.01):
    m = sum(diffs) / len(diffs)
    return {"claim": "c", "mean_difference": m, "interval": [m - 0.1, m + 0.1], "verdict": "reproduced",
            "p_value": 0.1, "p_adjusted": 0.2, "family": family, "direction": direction,
            "seeds_same_sign": f"{len(diffs)} of {len(diffs)}",  # an old rule's row: decided again, never parsed
            "per_seed": [{"difference": d, "se": se} for d in diffs]}


def test_rows_are_decided_again_by_the_current_rule():
    claims = {"00.base_eval": {"value": {"accuracy": 0.186, "ci": [0.154, 0.222], "reasoning_rate": 0.0}},
              "08.zerogrpo_improves_the_base_model": {"value": {**_verdict([0.30, 0.35, 0.41], "paper claim"),
                                                                "claim": "ZeroGRPO improves the base model"}},
              "03.kl_beta1": {"value": _verdict([0.30, 0.35, 0.41])},
              "03.arms_paper": {"value": [{**_verdict([0.01, -0.02, 0.0]), "claim": "a"},
                                          {**_verdict([0.02, 0.0, 0.01]), "claim": "b"}]}}
    text = readme.table(claims)
    assert "18.6% [15.4, 22.2]" in text and "+35.3 points" in text
    assert "reproduced" not in text.split("\n\n")[0]  # the old word is never shown
    assert "supported (3 of 3 seeds the claimed way" in text and "Holm)" in text
    assert "direction found (exploratory) (3 of 3" in text
    assert "<!-- exact 00.base_eval accuracy 0.1860 -->" in text
    assert "<!-- margin 08.zerogrpo_improves_the_base_model +1 0.1 -->" in text
    # the paper's claim is Holm-adjusted over the fixed family of five (4 missing claims count as p = 1)
    row = readme.paper_rows(claims)["08.zerogrpo_improves_the_base_model"]
    alone = readme.redecide(claims["08.zerogrpo_improves_the_base_model"]["value"], "paper claim")
    assert row["p_adjusted"] == pytest.approx(min(1.0, 5 * alone["p_value"]))


def test_the_committed_claims_show_no_old_words_and_the_length_result():
    text = readme.table(json.loads(CLAIMS.read_text()))
    rows = text.split("\n\n")[0]
    assert "reproduced" not in rows and "stress test" in rows and "tokens" in rows
    for line in rows.splitlines()[2:]:
        verdict = line.split(" | ")[2]
        if "exploratory" in line or "(01" in line or "(02" in line or "(03" in line:
            assert "supported" not in verdict and "contradicted" not in verdict, line


def test_margin_test_by_hand():
    res = readme.margin_test([0.30, 0.35, 0.40], +1, 0.10)
    assert res["passed"] and res["bound"] == pytest.approx(0.35 - 2.919986 * 0.05 / 3 ** 0.5, abs=1e-5)
    assert not readme.margin_test([0.30, 0.35, 0.40], +1, 0.34)["passed"]
    assert readme.margin_test([-3.0, -2.0, -4.0], -1, 0.0)["passed"]
    assert not readme.margin_test([-3.0, 2.0, -4.0], -1, 0.0)["passed"]
    assert not readme.margin_test([0.5], +1, 0.0)["passed"]  # one seed never passes


def _altered(claims, key, per_seed_to):
    out = copy.deepcopy(claims)
    per_seed_to(out[key]["value"])
    return out


@pytest.mark.parametrize(("mutant", "key", "change"), [
    ("the reward's sign flipped: no gain over the base", "08.zerogrpo_improves_the_base_model",
     lambda v: [p.update(difference=-abs(p["difference"]) / 5) for p in v["per_seed"]]),
    ("the KL coefficient ignored: beta = 1 trains as no-kl", "03.kl_beta1",
     lambda v: [p.update(difference=d) for p, d in zip(v["per_seed"], (0.01, -0.02, 0.005))]),
    ("eq. 7 off: the arms differ by seed noise", "01.length_penalty",
     lambda v: v.update(completion_length_difference=[0.3, -0.5, 1.1, -0.2, 0.4])),
])
def test_each_preregistered_figure_fails_when_its_mechanism_is_broken(mutant, key, change):
    """The committed series passes every margin check; with the figure a broken mechanism gives, its check
    fails (the trained mutants are in tests/test_notebooks.py's slow series checks)."""
    claims = json.loads(CLAIMS.read_text())
    assert all(r["passed"] for r in readme.margin_checks(claims))
    broken = readme.margin_checks(_altered(claims, key, change))
    assert [r["key"] for r in broken if not r["passed"]] == [key], mutant


def test_a_missing_figure_fails_its_check():
    claims = json.loads(CLAIMS.read_text())
    del claims["03.kl_beta1"]
    assert [r["key"] for r in readme.margin_checks(claims) if not r["passed"]] == ["03.kl_beta1"]


def test_exact_check_compares_per_seed_figures_of_the_same_machine_and_code_version():
    claims = json.loads(CLAIMS.read_text())
    for v in claims.values():
        v["machine"] = "m1"
    assert readme.exact_mismatches(claims, claims) == []
    moved = copy.deepcopy(claims)
    moved["02.std_vs_mean"]["value"]["per_seed"][1]["difference"] += 0.002  # one problem on one seed
    assert len(readme.exact_mismatches(moved, claims)) == 1
    elsewhere = copy.deepcopy(moved)
    elsewhere["02.std_vs_mean"]["machine"] = "m2"  # another machine: not compared exactly
    assert readme.exact_mismatches(elsewhere, claims) == []


def test_every_marker_names_a_figure_of_its_claims():
    claims = json.loads(CLAIMS.read_text())
    text = readme.table(claims)
    margins = re.findall(r"<!-- margin (\S+) ([+-]1) (\S+) -->", text)
    assert {k for k, _, _ in margins} == {f.key for f in readme.PREREGISTERED}
    for key, direction, margin in margins:
        f = next(f for f in readme.PREREGISTERED if f.key == key)
        assert (int(direction), float(margin)) == (f.direction, f.margin) and f.values(claims)
    assert stats.VERDICT_RULE in text


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


# --- mutants: a broken mechanism, trained for real, must fail its pre-registered check ----------------------
MUTANT_FIGURE = {"the reward's sign flipped": "08.zerogrpo_improves_the_base_model",
                 "the KL coefficient ignored": "03.kl_beta1", "eq. 7 off": "01.length_penalty"}
# what each figure trains: (condition b, condition a or "base"), seeds; the length figure reads training metrics
FIGURE_RUNS = {"08.zerogrpo_improves_the_base_model": (("zerogrpo", "base"), (0, 1, 2)),
               "03.kl_beta1": (("zerogrpo", "kl-loss-beta1"), (0, 1, 2)),
               "01.length_penalty": (("zerogrpo-tight", "eq6-tight"), (0, 1, 2, 3, 4))}
# the condition each mutant changes (the other side of its figure is unaffected and reused from the series' runs)
MUTATED = {"the reward's sign flipped": "zerogrpo", "the KL coefficient ignored": "kl-loss-beta1",
           "eq. 7 off": "zerogrpo-tight"}


def _in_process(monkeypatch):
    """Train in this process (the pool's spawned workers would not see a monkeypatched mutant)."""
    from supersmall import experiments
    from supersmall.train import train

    monkeypatch.setattr(experiments, "train_many",
                        lambda runs, workers=2, desc="": [train(progress=False, **kw) for kw in runs])


def _mutate(monkeypatch, mutant):
    from supersmall import rewards
    from supersmall import train as train_module

    if mutant == "the reward's sign flipped":
        original = train_module.reward_functions

        def flipped(profile):
            funcs, weights = original(profile)
            return funcs, [-w for w in weights]

        monkeypatch.setattr(train_module, "reward_functions", flipped)
    elif mutant == "the KL coefficient ignored":  # both readers of the coefficients: the TRL config and the loop
        from supersmall import trl_args

        for module in (train_module, trl_args):
            monkeypatch.setattr(module, "arm_betas", lambda profile, arm: (0.0, 0.0))
    elif mutant == "eq. 7 off":
        monkeypatch.setattr(rewards, "length_penalty", lambda lengths, *a, **k: [0.0] * len(lengths))


def _figure(key, runs_dir):
    """One pre-registered figure of a small series under ``runs_dir``, as claims.json records it."""
    from supersmall import experiments

    (b, a), seeds = FIGURE_RUNS[key]
    if key == "01.length_penalty":
        folders = experiments.run("tiny", [b, a], runs_dir, seeds=list(seeds))
        diffs = [experiments.final_metric({s: folders[b][s]}, "completion_length")[0]
                 - experiments.final_metric({s: folders[a][s]}, "completion_length")[0] for s in seeds]
        return {key: {"value": {"completion_length_difference": diffs}}}
    experiments.run("tiny", [c for c in (a, b) if c != "base"], runs_dir, seeds=list(seeds))
    return {key: {"value": experiments.paired("tiny", a, b, runs_dir, claim=key, seeds=list(seeds))}}


def _check(claims, key):
    f = next(f for f in readme.PREREGISTERED if f.key == key)
    return readme.margin_test(f.values(claims), f.direction, f.margin, f.ses(claims))


@pytest.mark.slow
@pytest.mark.parametrize("mutant", list(MUTANT_FIGURE))
def test_a_broken_mechanism_fails_its_preregistered_check(series_dir, mutant, monkeypatch, tmp_path):
    """Train the condition a mutant breaks (the reward's sign flipped, the KL coefficient ignored, eq. 7 off)
    with the mutant patched in, pair it with the series' own runs of the unaffected side (the runs the README's
    figure comes from, reused: same config and code version), and the check must fail. The unmutated control is
    the series itself: test_notebooks.py's test_readme_figures_pass_their_rerun_checks (and on another CPU)."""
    import shutil

    key = MUTANT_FIGURE[mutant]
    (b, a), _ = FIGURE_RUNS[key]
    unaffected = next(side for side in (a, b) if side != MUTATED[mutant])
    shutil.copytree(series_dir / "shared" / unaffected, tmp_path / "shared" / unaffected)
    before = {p: p.stat().st_mtime_ns for p in (tmp_path / "shared" / unaffected).rglob("run_card.json")}
    _in_process(monkeypatch)
    _mutate(monkeypatch, mutant)
    res = _check(_figure(key, tmp_path), key)
    after = {p: p.stat().st_mtime_ns for p in (tmp_path / "shared" / unaffected).rglob("run_card.json")}
    assert before and after == before, f"the series' {unaffected} runs were not reused (trained again)"
    assert not res["passed"], (mutant, res)
