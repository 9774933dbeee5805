"""supersmall.evaluate: intervals and pass@1 by hand, breakdowns, the HF backend end to end, records, compare, CLI."""

import json
import math
import os
import subprocess
import sys

import pytest
import torch

from supersmall import evaluate as ev
from supersmall import plots, stats, tiny
from supersmall.config import EvalConfig, load_profile
from supersmall.data import BOXED_INSTRUCTION, format_prompt, prompt_text
from supersmall.errors import UserError
from supersmall.evaluate import (
    budget_curve,
    eval_rows,
    evaluate,
    rescore,
    run_eval,
    sensitivity,
)
from supersmall.evaluation import SUMMARY_KEYS, Evaluation
from supersmall.grading import reasoned
from supersmall.stats import wilson_interval


# --- Wilson (its values: tests/test_stats.py) and pass@1 ---------------------------------------------------
def test_wilson_interval_edge_cases():
    assert not hasattr(ev, "wilson_interval") and "Evaluation" not in ev.__all__  # one home each: stats, evaluation
    assert wilson_interval(0, 0) == (0.0, 1.0)
    lo90, hi90 = wilson_interval(5, 10, z=1.645)
    lo95, hi95 = wilson_interval(5, 10)
    assert lo95 < lo90 < 0.5 < hi90 < hi95  # a lower confidence gives a narrower interval


def _rec(index, correct, sample=0, level=None, subject=None, length=10, truncated=False, extracted="1",
         reasoned_=False):
    return {"index": index, "sample": sample, "prompt": f"p{index}", "completion": "c", "extracted": extracted,
            "answer": "1", "correct": correct, "level": level, "subject": subject, "length": length,
            "truncated": truncated, "reasoned": reasoned_}


def test_pass_at_1_is_the_mean_over_samples_then_problems():
    # 3 problems x 2 samples: 1/2, 2/2, 0/2 -> pass@1 = (0.5 + 1 + 0) / 3 = 0.5
    recs = [_rec(0, True, 0), _rec(0, False, 1), _rec(1, True, 0), _rec(1, True, 1), _rec(2, False, 0),
            _rec(2, False, 1, truncated=True, extracted=None, length=40)]
    ev = Evaluation(recs)
    assert ev.per_problem == {0: 0.5, 1: 1.0, 2: 0.0}
    s = ev.summary
    assert s["accuracy"] == pytest.approx(0.5) and s["n"] == 3 and s["samples"] == 6
    # fractions are not a binomial count: the interval is a bootstrap over the problems, not Wilson
    assert (s["ci_low"], s["ci_high"]) == stats.mean_interval([0.5, 1.0, 0.0])
    assert s["truncated_fraction"] == pytest.approx(1 / 6)
    assert s["boxed_rate"] == pytest.approx(5 / 6)
    assert s["mean_length"] == pytest.approx((5 * 10 + 40) / 6)


def test_per_level_and_per_subject_breakdown_on_a_fixture():
    # level 1: 3/4 right, level 2: 1/2; subjects: Algebra 3/3, Geometry 1/3
    spec = [(1, "Algebra", True), (1, "Algebra", True), (1, "Geometry", True), (1, "Geometry", False),
            (2, "Algebra", True), (2, "Geometry", False)]
    recs = [_rec(i, ok, level=lv, subject=sub) for i, (lv, sub, ok) in enumerate(spec)]
    ev = Evaluation(recs)
    s = ev.summary
    assert set(s) == set(SUMMARY_KEYS)
    assert s["accuracy"] == pytest.approx(4 / 6)
    assert set(s["per_level"]) == {"1", "2"}
    assert s["per_level"]["1"]["accuracy"] == pytest.approx(0.75) and s["per_level"]["1"]["n"] == 4
    assert s["per_level"]["2"]["accuracy"] == pytest.approx(0.5) and s["per_level"]["2"]["n"] == 2
    assert s["per_subject"]["Algebra"]["accuracy"] == pytest.approx(1.0)
    assert s["per_subject"]["Geometry"]["accuracy"] == pytest.approx(1 / 3)
    lo, hi = wilson_interval(3, 4)
    assert (s["per_level"]["1"]["ci_low"], s["per_level"]["1"]["ci_high"]) == pytest.approx((lo, hi))
    # any subset: levels, a subject, or both
    assert ev.levels == [1, 2] and ev.accuracy([2]) == 0.5 and ev.accuracy(subject="Geometry") == pytest.approx(1 / 3)
    assert ev.accuracy([1], subject="Geometry") == 0.5 and math.isnan(ev.accuracy([5]))
    assert ev.interval(subject="Algebra") == {"accuracy": 1.0, "ci_low": wilson_interval(3, 3)[0], "ci_high": 1.0, "n": 3}
    with pytest.raises(ValueError, match="level"):
        ev.breakdown("seed")


def test_a_perfect_or_empty_subset_keeps_its_estimate_inside_its_interval():
    for recs in ([_rec(i, True) for i in range(100)], [_rec(i, False) for i in range(7)],
                 [_rec(0, True, 0), _rec(0, True, 1)], [_rec(i, i % 3 == 0, s) for i in range(5) for s in range(3)]):
        s = Evaluation(recs).summary
        assert s["ci_low"] <= s["accuracy"] <= s["ci_high"]
    assert Evaluation([]).interval()["n"] == 0

def test_reasoned_needs_a_non_empty_think_block():
    assert reasoned("<think>2+3=5</think>\\boxed{5}")
    assert not reasoned("<think></think>\\boxed{5}")
    assert not reasoned("<think>  </think>\\boxed{5}")
    assert not reasoned("\\boxed{5}")
    # an R1-style template opened <think> in the prompt: the completion only closes it
    assert reasoned("2+3=5</think>\\boxed{5}")
    assert not reasoned("</think>\\boxed{5}")


# --- prompt templates -------------------------------------------------------------------------------
CHAT = "{% for m in messages %}<|{{ m['role'] }}|>{{ m['content'] }}{% endfor %}{% if add_generation_prompt %}<|assistant|>{% endif %}"


def test_prompt_templates():
    tok = tiny.build_tokenizer()
    assert format_prompt("2+3=?", "raw", "") == "2+3=?"
    assert format_prompt("2+3=?", "raw") == f"2+3=?\n{BOXED_INSTRUCTION}"  # the default instruction
    assert format_prompt("2+3=?", "chat", "") == [{"role": "user", "content": "2+3=?"}]
    assert format_prompt("2+3=?") == [{"role": "user", "content": f"2+3=?\n{BOXED_INSTRUCTION}"}]
    assert format_prompt("2+3=?", "chat", None) == [{"role": "user", "content": "2+3=?"}]
    with pytest.raises(ValueError, match="template"):
        format_prompt("2+3=?", "chat_boxed")
    assert prompt_text("2+3=?", tok) == "2+3=?"  # a plain prompt is the text as is
    conv = format_prompt("What is 2+3?", "chat", "")
    with pytest.raises(ValueError, match="chat template"):
        prompt_text(conv, tok)  # the tiny tokenizer has no chat template
    tok.chat_template = CHAT
    assert prompt_text(conv, tok) == "<|user|>What is 2+3?<|assistant|>"
    assert prompt_text(format_prompt("What is 2+3?"), tok) == f"<|user|>What is 2+3?\n{BOXED_INSTRUCTION}<|assistant|>"


def test_rows_with_a_problem_only_use_the_prompt_template():
    tok = tiny.build_tokenizer()
    tok.chat_template = CHAT
    rows = [{"problem": "2+3=?", "answer": "5"}]
    model = ScriptedLM(tok, {"2+3=?\n" + BOXED_INSTRUCTION: "\\boxed{5}",
                             f"<|user|>2+3=?\n{BOXED_INSTRUCTION}<|assistant|>": "\\boxed{5}"}, decode_prompt=True)
    raw = evaluate(model, rows, tok, prompt_template="raw", max_new_tokens=8, progress=False)
    chat = evaluate(model, rows, tok, prompt_template="chat", max_new_tokens=8, progress=False)
    assert raw.records[0]["prompt"] == "2+3=?\n" + BOXED_INSTRUCTION
    assert chat.records[0]["prompt"] == f"<|user|>2+3=?\n{BOXED_INSTRUCTION}<|assistant|>"
    assert raw.summary["accuracy"] == chat.summary["accuracy"] == 1.0 and isinstance(raw, Evaluation)
    with pytest.raises(ValueError, match="'prompt' or 'problem'"):
        evaluate(model, [{"answer": "1"}], tok, max_new_tokens=8, progress=False)


# --- the HF backend ---------------------------------------------------------------------------------
class ScriptedLM(torch.nn.Module):
    """A stand-in for a causal LM whose ``generate`` writes a scripted completion per prompt.

    It checks what the backend must do around ``model.generate``: left padding, slicing the prompt
    off, stopping at EOS, counting tokens, flagging truncation, decoding, grading.
    """

    def __init__(self, tokenizer, script: dict[str, str], max_positions: int = 128, decode_prompt: bool = False):
        super().__init__()
        self.w = torch.nn.Parameter(torch.zeros(1))
        self.tok = tokenizer
        self.script = script
        self.by_ids = {}
        if decode_prompt:  # prompts with characters the tiny vocabulary lacks: look them up by their token ids
            self.by_ids = {tuple(tokenizer(p, add_special_tokens=False)["input_ids"]): c for p, c in script.items()}
        self.config = type("Cfg", (), {"max_position_embeddings": max_positions})()
        self.calls: list[dict] = []

    def generate(self, input_ids, attention_mask, max_new_tokens, pad_token_id, eos_token_id, **kw):
        self.calls.append({"shape": tuple(input_ids.shape), "max_new_tokens": max_new_tokens, **kw})
        assert (attention_mask[:, -1] == 1).all(), "prompts must be left-padded"
        rows = []
        for ids, mask in zip(input_ids, attention_mask):
            kept = ids[mask.bool()].tolist()
            text = self.by_ids[tuple(kept)] if self.by_ids else self.script[self.tok.decode(kept)]
            new = self.tok(text, add_special_tokens=False)["input_ids"] + [eos_token_id]
            new = new[:max_new_tokens]
            rows.append(new + [pad_token_id] * (max_new_tokens - len(new)))
        return torch.cat([input_ids, torch.tensor(rows, dtype=input_ids.dtype)], dim=1)


def _problems():
    return tiny.make_problems(4, split="test", seed=7)  # 20 problems, 4 per level


def test_hf_backend_pipeline_with_a_scripted_model():
    tok = tiny.build_tokenizer()
    rows = _problems()
    # right on levels 1-3 (with reasoning), wrong on level 4 (no reasoning), cut mid-thought on level 5
    script = {}
    for r in rows:
        if r["level"] <= 3:
            script[r["prompt"]] = r["solution"]
        elif r["level"] == 4:
            script[r["prompt"]] = f"<think></think>\\boxed{{{int(r['answer']) + 1}}}"
        else:
            script[r["prompt"]] = "<think>" + "1+1=2;" * 10
    model = ScriptedLM(tok, script)
    res = evaluate(model, rows, tok, max_new_tokens=24, batch_size=6, progress=False)
    s = res.summary
    assert s["accuracy"] == pytest.approx(12 / 20) and s["n"] == 20
    assert [s["per_level"][str(lv)]["accuracy"] for lv in range(1, 6)] == [1.0, 1.0, 1.0, 0.0, 0.0]
    assert s["per_subject"][tiny.SUBJECTS[1]]["accuracy"] == 1.0
    assert s["truncated_fraction"] == pytest.approx(4 / 20) and s["boxed_rate"] == pytest.approx(16 / 20)
    assert s["reasoning_rate"] == pytest.approx(12 / 20)
    by_level = {r["level"]: r for r in res.records}
    first = next(r for r in rows if r["level"] == 1)
    rec = next(x for x in res.records if x["prompt"] == first["prompt"])
    assert rec["completion"] == first["solution"] and rec["extracted"] == first["answer"] and rec["correct"]
    assert rec["length"] == len(tok(first["solution"], add_special_tokens=False)["input_ids"])  # EOS not counted
    assert by_level[5]["truncated"] and by_level[5]["length"] == 24 and by_level[5]["extracted"] is None
    assert not by_level[4]["truncated"] and by_level[4]["extracted"] is not None and not by_level[4]["correct"]
    assert [c["shape"][0] for c in model.calls] == [6, 6, 6, 2]  # batched
    assert all(c["do_sample"] is False for c in model.calls)  # temperature 0 = greedy
    assert res.settings["max_new_tokens"] == 24 and res.settings["problems"] == 20


def test_sampling_settings_reach_generate_and_samples_are_recorded():
    tok = tiny.build_tokenizer()
    rows = _problems()[:3]
    model = ScriptedLM(tok, {r["prompt"]: r["solution"] for r in rows})
    res = evaluate(model, rows, tok, max_new_tokens=32, temperature=0.6, top_p=0.95, n_samples=4, progress=False)
    call = model.calls[0]
    assert call["do_sample"] is True and call["temperature"] == 0.6 and call["top_p"] == 0.95
    assert len(res.records) == 12 and [r["sample"] for r in res.records[:4]] == [0, 1, 2, 3]
    assert res.summary["n"] == 3 and res.summary["samples"] == 12 and res.summary["accuracy"] == 1.0


def test_settings_come_from_an_eval_config_and_must_be_valid():
    tok = tiny.build_tokenizer()
    rows = _problems()[:2]
    model = ScriptedLM(tok, {r["prompt"]: r["solution"] for r in rows})
    res = evaluate(model, rows, tok, progress=False)  # no settings: EvalConfig's defaults
    assert model.calls[-1]["max_new_tokens"] == EvalConfig().max_new_tokens
    assert res.settings["max_new_tokens"] == EvalConfig().max_new_tokens and res.settings["seed"] == 0
    settings = load_profile("tiny").eval  # a profile's settings, one field overridden
    res = evaluate(model, rows, tok, settings=settings, progress=False, max_new_tokens=40, seed=3)
    assert model.calls[-1]["max_new_tokens"] == 40 and model.calls[-1]["do_sample"] is False
    assert res.settings["max_new_tokens"] == 40 and res.settings["batch_size"] == settings.batch_size
    assert res.settings["seed"] == 3 and settings.max_new_tokens == 48  # the profile's settings are not changed
    with pytest.raises(ValueError, match="backend"):
        evaluate(model, rows, tok, max_new_tokens=8, backend="tgi")
    with pytest.raises(ValueError, match="'solutions'"):
        evaluate(model, rows, tok, max_new_tokens=8, answer_column="solutions")
    with pytest.raises(ValueError, match="tokenizer"):
        evaluate(model, rows, None, max_new_tokens=8)
    with pytest.raises(TypeError):
        evaluate(model, rows, tok, max_new_tokkens=8)  # a misspelt setting is an error, not ignored
    rows_gold = [{**r, "gold": r["answer"], "answer": "nope"} for r in rows]
    assert evaluate(model, rows_gold, tok, answer_column="gold", progress=False).summary["accuracy"] == 1.0


def test_vllm_backend_without_vllm_says_how_to_get_it():
    try:
        import vllm  # noqa: F401
    except ImportError:
        with pytest.raises(ImportError, match="pip install -e '.\\[gpu\\]'"):
            evaluate(str(tiny.base_model_dir()), _problems()[:2], tiny.build_tokenizer(), backend="vllm", max_new_tokens=8)
    else:  # pragma: no cover - GPU hosts
        pytest.skip("vLLM is installed: the GPU path is exercised by the full-scale runs")


def test_random_qwen2_greedy_is_deterministic_and_batch_invariant():
    """A real ``Qwen2ForCausalLM.generate``: left padding must not change greedy completions."""
    tok = tiny.build_tokenizer()
    model = tiny.new_model(len(tok), seed=3)
    rows = _problems()[:8]
    a = evaluate(model, rows, tok, max_new_tokens=12, batch_size=8, progress=False)
    b = evaluate(model, rows, tok, max_new_tokens=12, batch_size=1, progress=False)
    assert [r["completion"] for r in a.records] == [r["completion"] for r in b.records]
    for r in a.records:
        assert r["length"] <= 12 and r["truncated"] == (r["length"] == 12)
    model.train()
    evaluate(model, rows[:2], tok, max_new_tokens=4, progress=False)
    assert model.training  # restored after evaluation


def test_tiny_base_model_end_to_end_from_its_path():
    path = tiny.base_model_dir()
    rows = tiny.test_problems(4)
    res = evaluate(str(path), rows, max_new_tokens=48, progress=False)
    s = res.summary
    assert s["n"] == 20 and 0.0 <= s["ci_low"] <= s["accuracy"] <= s["ci_high"] <= 1.0
    assert s["boxed_rate"] > 0.5  # the warm-started base answers in the R1 format
    for r in res.records:
        assert r["correct"] == (r["extracted"] is not None and r["extracted"].strip() == r["answer"])
    short = evaluate(str(path), rows, max_new_tokens=3, progress=False).summary
    assert short["accuracy"] == 0.0 and short["truncated_fraction"] == 1.0  # a short budget collapses the score


# --- records, compare, sensitivity ------------------------------------------------------------------
def test_records_round_trip_through_jsonl(tmp_path):
    tok = tiny.build_tokenizer()
    rows = _problems()
    model = ScriptedLM(tok, {r["prompt"]: r["solution"] if r["level"] < 3 else "<think>" for r in rows})
    res = evaluate(model, rows, tok, max_new_tokens=24, progress=False)
    path = res.to_jsonl(tmp_path / "sub" / "records.jsonl")
    assert len(path.read_text().splitlines()) == 20
    back = Evaluation.load(path)
    assert back.records == res.records and back.summary == res.summary
    assert "accuracy=0.400" in repr(back) and "truncated_fraction=" in repr(back)
    assert Evaluation.load(path.parent).per_problem == res.per_problem  # the folder, or its records file
    with pytest.raises(FileNotFoundError, match="records.jsonl"):
        Evaluation.load(tmp_path / "nowhere")


def test_compare_on_a_fixture():
    # 20 problems: both right on 0-5, only b right on 6-13 (8), only a right on 14-15 (2), both wrong on 16-19
    a = Evaluation([_rec(i, i < 6 or 14 <= i < 16) for i in range(20)])
    b = Evaluation([_rec(i, i < 14) for i in range(20)])
    c = a.compare(b)
    assert set(c) >= {"n", "difference", "ci_low", "ci_high", "a_better", "b_better", "mcnemar_p", "accuracy_a",
                      "accuracy_b"}  # stats.paired_difference's keys and each side's accuracy
    assert (c["accuracy_a"], c["accuracy_b"]) == (8 / 20, 14 / 20)
    assert c["n"] == 20 and c["b_better"] == 8 and c["a_better"] == 2
    assert c["difference"] == pytest.approx((14 - 8) / 20)
    expected_p = 2 * sum(math.comb(10, i) for i in range(3)) / 2**10  # 2 * 56 / 1024
    assert c["mcnemar_p"] == pytest.approx(expected_p)
    assert c["ci_low"] < c["difference"] < c["ci_high"]
    # the interval is stats' paired bootstrap over the per-problem scores, aligned by problem
    pa = [float(i < 6 or 14 <= i < 16) for i in range(20)]
    pb = [float(i < 14) for i in range(20)]
    assert (c["ci_low"], c["ci_high"]) == stats.paired_bootstrap(pa, pb, n_boot=2000, seed=0)
    assert c["ci_low"] >= 0.0 and c["mcnemar_p"] > 0.05  # 8 vs 2 of 20: a rise, but McNemar cannot tell
    strong = a.compare(Evaluation([_rec(i, i < 18) for i in range(20)]))  # 12 vs 2
    assert strong["ci_low"] > 0 and strong["mcnemar_p"] < 0.05
    shuffled = Evaluation(list(reversed(b.records)))  # records in another order pair by index
    assert a.compare(shuffled) == c
    assert a.compare(a)["difference"] == 0 and a.compare(a)["mcnemar_p"] == 1.0
    assert b.compare(a)["difference"] == pytest.approx(-c["difference"])
    with pytest.raises(ValueError, match="share no problems"):
        a.compare(Evaluation([_rec(100, True)]))


def test_sensitivity_grid_shows_the_budget_collapse_and_plots():
    import matplotlib

    matplotlib.use("Agg")
    tok = tiny.build_tokenizer()
    rows = _problems()
    model = ScriptedLM(tok, {r["prompt"]: r["solution"] for r in rows})
    df = sensitivity(model, rows, tok, grid={"max_new_tokens": [4, 64]}, progress=False, temperature=0.0)
    assert list(df["value"]) == [4, 64]
    assert list(df["accuracy"]) == [0.0, 1.0] and list(df["truncated_fraction"]) == [1.0, 0.0]
    fig = plots.sensitivity(df)
    assert len(fig.axes) == 1
    import matplotlib.pyplot as plt

    plt.close(fig)


# --- CLI and the full MATH-500 pipeline -------------------------------------------------------------
@pytest.mark.slow
def test_cli_full_math500_pipeline_offline_on_cpu(tmp_path):
    """All 500 vendored MATH-500 problems through the CLI: generate, grade, records, summary, run card."""
    out = subprocess.run([sys.executable, "-m", "supersmall.cli", "eval", "--profile", "tiny", "--dataset", "math500",
                          "--set", "eval.max_new_tokens=8", "--out", str(tmp_path)], capture_output=True, text=True,
                         env={**os.environ, "HF_HUB_OFFLINE": "1"}, timeout=600)
    assert out.returncode == 0, out.stderr[-2000:]
    assert "on 500 problems" in out.stdout
    summary = json.loads((tmp_path / "summary.json").read_text())
    assert summary["n"] == 500 and {k: v["n"] for k, v in summary["per_level"].items()} == \
        {"1": 43, "2": 90, "3": 105, "4": 128, "5": 134}
    assert len(summary["per_subject"]) == 7 and sum(v["n"] for v in summary["per_subject"].values()) == 500
    assert set(summary) == {*SUMMARY_KEYS, "budgets"}
    assert 0.0 <= summary["accuracy"] <= 0.05  # a model that cannot read English scores ~0: the point is the pipeline
    records = tmp_path / "records.jsonl"
    assert len(records.read_text().splitlines()) == 500
    assert Evaluation.load(tmp_path).summary["accuracy"] == summary["accuracy"]
    card = json.loads((tmp_path / "run_card.json").read_text())
    assert card["kind"] == "eval" and card["metrics"]["accuracy"] == summary["accuracy"]
    assert card["settings"]["max_new_tokens"] == 8 and card["settings"]["problems"] == 500


def test_cli_vllm_backend_without_vllm_is_a_clear_error(tmp_path):
    try:
        import vllm  # noqa: F401
    except ImportError:
        pass
    else:  # pragma: no cover - GPU hosts
        pytest.skip("vLLM is installed")
    out = subprocess.run([sys.executable, "-m", "supersmall.cli", "eval", "--set", "eval.backend=vllm",
                          "--out", str(tmp_path)],
                         capture_output=True, text=True)
    assert out.returncode == 2 and "vLLM" in out.stderr and "Traceback" not in out.stderr


# --- budgets: re-scoring one long pass ----------------------------------------------------------------
def _budget_records():
    # r0 right in 5 tokens, r1 right in 12, r2 wrong in 8, r3 cut off at the full budget (48, truncated)
    return [_rec(0, True, length=5), _rec(1, True, length=12), _rec(2, False, length=8),
            _rec(3, False, length=48, truncated=True, extracted=None)]


def test_rescore_by_hand():
    recs = _budget_records()
    at10 = rescore(recs, 10)
    assert [r["correct"] for r in at10] == [True, False, False, False]  # r1 (12 tokens) no longer finishes
    assert [r["truncated"] for r in at10] == [False, True, False, True]
    assert [r["length"] for r in at10] == [5, 12, 8, 48] and at10[1]["index"] == 1  # the rest is kept
    assert [r["correct"] for r in recs] == [True, True, False, False]  # the input is not changed
    assert rescore(recs, 48) == [{**r, "correct": bool(r["correct"]), "truncated": bool(r["truncated"])} for r in recs]
    assert [r["correct"] for r in rescore(recs, 12)] == [True, True, False, False]  # length == budget still fits
    assert not any(r["correct"] for r in rescore(recs, 4)) and all(r["truncated"] for r in rescore(recs, 4))


def test_budget_curve_by_hand():
    curve = budget_curve(_budget_records(), [4, 10, 48])
    assert list(curve) == ["4", "10", "48"]
    # budget 4: nothing finishes
    assert curve["4"]["accuracy"] == 0.0 and curve["4"]["truncated_fraction"] == 1.0
    assert curve["4"]["completed_accuracy"] is None
    # budget 10: r0 right; r1 and r3 cut; of the completed (r0, r2) half are right
    assert curve["10"]["accuracy"] == pytest.approx(1 / 4) and curve["10"]["truncated_fraction"] == pytest.approx(2 / 4)
    assert curve["10"]["completed_accuracy"] == pytest.approx(1 / 2)
    assert (curve["10"]["ci_low"], curve["10"]["ci_high"]) == pytest.approx(wilson_interval(1, 4))
    # budget 48 (the pass itself): r0 and r1 right; only r3 truncated; 2 of the 3 completed are right
    assert curve["48"]["accuracy"] == pytest.approx(2 / 4) and curve["48"]["truncated_fraction"] == pytest.approx(1 / 4)
    assert curve["48"]["completed_accuracy"] == pytest.approx(2 / 3)
    assert curve["48"]["accuracy"] == Evaluation(_budget_records()).accuracy()
    # with 2 samples per problem, pass@1 averages the samples first
    two = [_rec(0, True, 0, length=5), _rec(0, True, 1, length=20), _rec(1, False, 0, length=5), _rec(1, True, 1, length=5)]
    assert budget_curve(two, [10])["10"]["accuracy"] == pytest.approx((0.5 + 0.5) / 2)


# --- eval_rows and run_eval ----------------------------------------------------------------------------
def test_eval_rows_of_each_profile():
    rows = eval_rows(load_profile("tiny"))
    assert len(rows) == 500 and rows == tiny.test_problems(100)
    assert len(eval_rows(load_profile("tiny", **{"eval.problems_per_level": 3}))) == 15
    rehearsal = eval_rows(load_profile("rehearsal"))  # MATH-500's schema, conversational prompts
    assert len(rehearsal) == 50 and {"problem", "answer", "level", "subject", "unique_id", "prompt"} <= set(rehearsal[0])
    assert rehearsal[0]["prompt"] == [{"role": "user", "content": rehearsal[0]["problem"]}]
    full = eval_rows(load_profile("a6000x4"))  # offline: the vendored MATH-500 with DeepSeek's boxed instruction
    assert len(full) == 500
    assert full[0]["prompt"] == [{"role": "user", "content": f"{full[0]['problem']}\n{BOXED_INSTRUCTION}"}]


def _tiny_eval_profile():
    return load_profile("tiny", **{"eval.problems_per_level": 2, "eval.max_new_tokens": 16, "eval.budgets": [6, 16]})


def test_run_eval_writes_its_files_and_reuses_a_complete_eval(tmp_path, monkeypatch):
    profile = _tiny_eval_profile()
    out = tmp_path / "eval" / "base"
    calls = []
    real = ev.evaluate

    def counting(*a, **kw):
        calls.append(kw)
        return real(*a, **kw)

    monkeypatch.setattr(ev, "evaluate", counting)
    s = run_eval("tiny", profile, out, meta={"role": "base", "seed": 5}, progress=False)
    assert len(calls) == 1 and calls[0]["settings"].max_new_tokens == 16
    assert {p.name for p in out.iterdir()} >= {"records.jsonl", "summary.json", "run_card.json", "run_card.md"}
    records = [json.loads(x) for x in (out / "records.jsonl").read_text().splitlines()]
    assert len(records) == 10 and s["n"] == 10
    assert json.loads((out / "summary.json").read_text()) == s
    assert s["accuracy"] == pytest.approx(sum(r["correct"] for r in records) / 10)
    assert set(s["budgets"]) == {"6", "16"} and s["budgets"]["16"]["accuracy"] == pytest.approx(s["accuracy"])
    assert s["budgets"]["6"] == budget_curve(records, [6])["6"]
    card = json.loads((out / "run_card.json").read_text())
    assert card["kind"] == "eval" and card["status"] == "complete" and card["role"] == "base" and card["seed"] == 5
    assert card["name"] == "base" and card["eval_key"]["settings"]["max_new_tokens"] == 16
    assert card["metrics"]["accuracy"] == s["accuracy"]
    back = Evaluation.load(out)  # the folder read back: records, settings and the card's fields
    assert back.summary == {k: s[k] for k in SUMMARY_KEYS} and back.role == "base" and back.seed == 5
    assert back.settings["max_new_tokens"] == 16 and back.name == "base" and back.path == out

    # the same model, settings and code: reused, never regenerated
    def boom(*a, **kw):
        raise AssertionError("a complete evaluation was redone")

    monkeypatch.setattr(ev, "evaluate", boom)
    assert run_eval("tiny", profile, out, meta={"role": "base", "seed": 5}, progress=False) == s
    assert run_eval("tiny", _tiny_eval_profile(), out, progress=False) == s  # an equal profile, loaded again

    # other settings or another dataset size in the same folder: refused (runcard.reuse_decision, as training),
    # evaluated in another folder
    monkeypatch.setattr(ev, "evaluate", counting)
    for other in ({"max_new_tokens": 8}, {"limit": 4}):
        with pytest.raises(UserError, match="another config"):
            run_eval("tiny", profile, out, progress=False, **other)
    assert len(calls) == 1 and json.loads((out / "summary.json").read_text()) == s  # the finished one is kept
    s8 = run_eval("tiny", profile, tmp_path / "eval" / "short", progress=False, max_new_tokens=8)
    assert len(calls) == 2 and calls[-1]["settings"].max_new_tokens == 8
    short = tmp_path / "eval" / "short"
    assert json.loads((short / "run_card.json").read_text())["eval_key"]["settings"]["max_new_tokens"] == 8
    assert all(r["length"] <= 8 for r in map(json.loads, (short / "records.jsonl").read_text().splitlines()))
    assert s8["n"] == 10
    model, tok = tiny.load_base()
    run_eval(model, profile, out, tokenizer=tok, progress=False, limit=4)
    assert len(calls) == 3  # an in-memory model has no name to check: it is always evaluated


def test_run_eval_redoes_an_eval_of_other_code(tmp_path, monkeypatch):
    profile = _tiny_eval_profile()
    out = tmp_path / "e"
    run_eval("tiny", profile, out, progress=False, limit=3)
    card = json.loads((out / "run_card.json").read_text())
    card["code_version"] = "0123456789ab"  # as if written by an older kit
    (out / "run_card.json").write_text(json.dumps(card))
    calls = []
    real = ev.evaluate
    monkeypatch.setattr(ev, "evaluate", lambda *a, **kw: calls.append(1) or real(*a, **kw))
    run_eval("tiny", profile, out, progress=False, limit=3)
    assert calls == [1]
    run_eval("tiny", profile, out, progress=False, limit=3)
    assert calls == [1]  # now current: reused
    card = json.loads((out / "run_card.json").read_text())
    (out / "run_card.json").write_text(json.dumps({**card, "status": "running"}))  # an unfinished eval is redone
    run_eval("tiny", profile, out, progress=False, limit=3)
    assert calls == [1, 1]


# --- issue 22: one BOS for vLLM, budgets re-scored from the prefix ---------------------------------------
def _bos_tokenizer():
    """A tokenizer that adds BOS itself (``add_bos_token``-like post-processor) and a chat template that also
    writes it, as DeepSeek-R1-Distill's."""
    from tokenizers import Tokenizer, models, pre_tokenizers, processors
    from transformers import PreTrainedTokenizerFast

    vocab = {"<bos>": 0, "<eos>": 1, "<unk>": 2, "<|User|>": 3, "<|Assistant|>": 4, "1": 5, "+": 6, "=": 7, "?": 8,
             "<think>": 9, "\\boxed{2}": 10, "\\boxed{3}": 11, "so": 12}
    tok = Tokenizer(models.WordLevel(vocab, unk_token="<unk>"))
    tok.pre_tokenizer = pre_tokenizers.WhitespaceSplit()
    tok.post_processor = processors.TemplateProcessing(single="<bos> $A", special_tokens=[("<bos>", 0)])
    t = PreTrainedTokenizerFast(tokenizer_object=tok, bos_token="<bos>", eos_token="<eos>", unk_token="<unk>")
    t.chat_template = "{{ bos_token }}{% for m in messages %}<|User|> {{ m['content'] }}{% endfor %} <|Assistant|> <think>"
    return t


def test_vllm_prompts_are_token_ids_with_one_bos():
    tok = _bos_tokenizer()
    text = prompt_text([{"role": "user", "content": "1 + 1 = ?"}], tok)
    assert tok(text)["input_ids"][:2] == [0, 0]  # a string through the tokenizer: two BOS (what vLLM did)
    (ids,) = ev.prompt_token_ids([text], tok)
    assert ids.count(tok.bos_token_id) == 1 and ids[0] == tok.bos_token_id
    assert ids == tok.apply_chat_template([{"role": "user", "content": "1 + 1 = ?"}], tokenize=True,
                                          add_generation_prompt=True, return_dict=True)["input_ids"]


def test_budget_cuts_are_the_prefix_ends_of_the_first_b_tokens():
    tok = _bos_tokenizer()
    text = "so \\boxed{2} so so \\boxed{3}"
    assert ev.budget_cuts(text, tok, [1, 2, 4, 5, 9]) == {"1": 2, "2": 12, "4": 18}  # 5 tokens: b >= 5 keeps all
    assert ev.budget_cuts(text, tok, []) == {} and ev.budget_cuts(text, None, [2]) == {}


def test_rescore_grades_the_last_box_of_the_budgets_prefix():
    """R1 often boxes inside <think> and keeps thinking: a run cut at b tokens is graded on the last box of its
    first b tokens, not marked wrong because the full pass went on."""
    text = "so \\boxed{2} so so \\boxed{3}"  # 5 tokens; boxes 2 (token 2), then 3 (token 5)
    cuts = {"1": 2, "2": 12, "4": 18}
    recs = [{**_rec(0, False, length=5, extracted="3"), "answer": "2", "completion": text, "cuts": cuts},
            {**_rec(1, True, length=5, extracted="3"), "answer": "3", "completion": text, "cuts": cuts}]
    at2, at4, at1 = rescore(recs, 2), rescore(recs, 4), rescore(recs, 1)
    assert [r["correct"] for r in at2] == [True, False] and [r["extracted"] for r in at2] == ["2", "2"]
    assert [r["correct"] for r in at4] == [True, False] and all(r["truncated"] for r in at4)
    assert [r["correct"] for r in at1] == [False, False] and [r["extracted"] for r in at1] == [None, None]
    assert [r["correct"] for r in rescore(recs, 5)] == [False, True]  # the whole pass: as graded
    # without stored cuts the prefix is the same fraction of the characters (approximate)
    old = [{k: v for k, v in r.items() if k != "cuts"} for r in recs]
    assert [r["extracted"] for r in rescore(old, 3)] == ["2", "2"]  # 28 chars x 3 / 5 tokens: "so \\boxed{2} so "
    assert budget_curve(recs, [2])["2"]["accuracy"] == pytest.approx(0.5)
