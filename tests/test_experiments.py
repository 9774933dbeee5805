"""supersmall.experiments: conditions resolved against a profile, and the plan made before an experiment."""

import math

import pytest

from supersmall import experiments, stats
from supersmall.config import load_profile


def test_every_condition_resolves_to_plain_profile_values():
    for profile in ("tiny", "a6000x4"):
        p = load_profile(profile)
        for name in experiments.CONDITIONS:
            values = experiments.condition_overrides(p, name)
            assert all(not callable(v) for v in values.values()), name
            steps = values.pop("steps", p.notebooks.steps)  # a condition's own step count (an equal-samples control)
            assert isinstance(steps, int) and 0 < steps <= p.notebooks.steps, name
            load_profile(profile, **values)  # every value passes the profile's validation


def test_the_tight_limit_is_a_third_of_the_profiles():
    for profile in ("tiny", "a6000x4"):
        p = load_profile(profile)
        on = experiments.condition_overrides(p, "zerogrpo-tight")
        off = experiments.condition_overrides(p, "eq6-tight")
        assert on["train.max_completion_length"] == off["train.max_completion_length"] == p.train.max_completion_length // 3
        assert off["reward.name"] == "correctness" and "reward.name" not in on  # the two differ in eq. 7 only
        # evaluated at the limit they trained at
        assert on["eval.max_new_tokens"] == off["eval.max_new_tokens"] == on["train.max_completion_length"]


def test_the_offpolicy_control_draws_as_many_batches():
    p = load_profile("tiny")
    mu = experiments.condition_overrides(p, "offpolicy")["train.num_iterations"]
    control = experiments.condition_overrides(p, "offpolicy-samples")
    assert control["steps"] * mu == p.notebooks.steps and "train.num_iterations" not in control


def test_plan_reads_the_pilots_seeds(monkeypatch, tmp_path):
    scores = {0: 0.50, 1: 0.56, 2: 0.53}

    class Ev:
        def __init__(self, seed):
            self.seed, self.records = seed, [{}] * 500

        def accuracy(self):
            return scores[self.seed]

    monkeypatch.setattr(experiments, "run", lambda p, conds, d: {conds[0]: {s: tmp_path / str(s) for s in scores}})
    monkeypatch.setattr(experiments, "evaluation", lambda d, c, s: Ev(s))
    plan = experiments.run_pilot_and_plan("tiny", tmp_path)
    expected = stats.planned_mde(list(scores.values()), 3, 500)
    assert plan["mde"] == pytest.approx(expected["mde"]) and math.isfinite(plan["mde"])
    assert plan["pilot_scores"] == scores and f"{100 * plan['mde']:.1f} points" in plan["sentence"]
    few = experiments.run_pilot_and_plan("tiny", tmp_path, n_seeds=2, family="paper claim")
    assert few["mde"] == math.inf and "fewer than the verdict rule needs" in few["sentence"]


def test_the_variants_read_their_values_from_paper_yaml():
    """clip-higher, GSPO and CISPO take their clip values from paper.yaml, and experiments.py types none of them."""
    from pathlib import Path

    from supersmall import paper

    p = load_profile("tiny")
    expected = {"clip-higher": {"train.clip_eps_high": "variants.dapo.clip_eps_high"},
                "gspo": {"train.clip_eps": "variants.gspo.clip_eps", "train.clip_eps_high": "variants.gspo.clip_eps_high"},
                "cispo": {"train.clip_eps_high": "variants.cispo.eps_max"}}
    source = Path(experiments.__file__).read_text()
    for condition, keys in expected.items():
        values = experiments.condition_overrides(p, condition)
        for setting, key in keys.items():
            fact = paper.fact(key)
            assert values[setting] == fact.value and fact.kind in ("paper", "choice") and fact.source
            sci = f"{fact.value:.0e}".replace("e-0", "e-")  # 3e-4 as one would type it
            for typed in [repr(fact.value)] + ([sci] if fact.value < 0.01 else []):
                assert typed not in source, f"experiments.py types {typed} ({key}); read it with paper.value"


def test_record_writes_run_cards_relative_to_the_series_so_a_claims_file_is_the_same_on_every_machine(tmp_path):
    import json

    inside = tmp_path / "shared" / "eq6-mean" / "seed0" / "eval" / "final" / "run_card.json"
    elsewhere = "/elsewhere/eval/base/run_card.json"
    row = {"claim": "x", "per_seed": [{"seed": 0, "diff": 0.1}], "run_cards": [str(inside), elsewhere]}
    path = experiments.record(tmp_path, "03.arms", [row])
    stored = json.loads(path.read_text())["03.arms"]
    assert stored["value"] == [{**row, "run_cards": ["shared/eq6-mean/seed0/eval/final/run_card.json", elsewhere]}]
    assert list(stored["value"][0]) == list(row)  # the row's keys keep their order
    assert stored["code_version"] == experiments.code_version() and stored["machine"] == experiments.machine()
    assert (tmp_path / stored["value"][0]["run_cards"][0]).parent == inside.parent
