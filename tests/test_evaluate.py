"""supersmall.evaluate: intervals and pass@1 by hand, breakdowns, the HF backend end to end, records, compare, CLI."""

import json
import math
import os
import subprocess
import sys

import pytest
import torch

from supersmall import tiny
from supersmall.evaluate import (
    BOXED_INSTRUCTION,
    EvalResult,
    _mcnemar_exact,
    compare,
    evaluate,
    format_prompt,
    reasoned,
    sensitivity,
    summarize,
    wilson_interval,
)


# --- Wilson interval and pass@1 against values computed by hand -------------------------------------
@pytest.mark.parametrize(
    ("k", "n", "low", "high"),
    [
        # p = 1/2, z^2 = 3.8416: centre 0.5, half-width 1.96*sqrt(0.025 + 3.8416/400)/1.38416 = 0.26341
        (5, 10, 0.23659, 0.76341),
        # k = 0: [0, z^2/(n + z^2)] = [0, 3.8416/13.8416]
        (0, 10, 0.0, 0.27753),
        # k = n: the mirror image
        (10, 10, 0.72247, 1.0),
        # 35.0% of 500 (the paper's headline): denom 1.0076832, centre 0.3538416/denom = 0.351144,
        # half 1.96*sqrt(0.000455 + 3.8416e-6)/denom = 0.041664
        (175, 500, 0.30948, 0.39281),
    ],
)
def test_wilson_interval_matches_hand_computation(k, n, low, high):
    lo, hi = wilson_interval(k, n)
    assert lo == pytest.approx(low, abs=1e-4) and hi == pytest.approx(high, abs=1e-4)


def test_wilson_interval_edge_cases():
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
    s = summarize(recs)
    assert s["accuracy"] == pytest.approx(0.5) and s["n"] == 3 and s["samples"] == 6
    assert (s["ci_low"], s["ci_high"]) == pytest.approx(wilson_interval(round(1.5), 3))
    assert s["truncation_rate"] == pytest.approx(1 / 6)
    assert s["boxed_rate"] == pytest.approx(5 / 6)
    assert s["mean_length"] == pytest.approx((5 * 10 + 40) / 6)


def test_per_level_and_per_subject_breakdown_on_a_fixture():
    # level 1: 3/4 right, level 2: 1/2; subjects: Algebra 3/3, Geometry 1/3
    spec = [(1, "Algebra", True), (1, "Algebra", True), (1, "Geometry", True), (1, "Geometry", False),
            (2, "Algebra", True), (2, "Geometry", False)]
    recs = [_rec(i, ok, level=lv, subject=sub) for i, (lv, sub, ok) in enumerate(spec)]
    s = summarize(recs)
    assert s["accuracy"] == pytest.approx(4 / 6)
    assert set(s["per_level"]) == {"1", "2"}
    assert s["per_level"]["1"]["accuracy"] == pytest.approx(0.75) and s["per_level"]["1"]["n"] == 4
    assert s["per_level"]["2"]["accuracy"] == pytest.approx(0.5) and s["per_level"]["2"]["n"] == 2
    assert s["per_subject"]["Algebra"]["accuracy"] == pytest.approx(1.0)
    assert s["per_subject"]["Geometry"]["accuracy"] == pytest.approx(1 / 3)
    lo, hi = wilson_interval(3, 4)
    assert (s["per_level"]["1"]["ci_low"], s["per_level"]["1"]["ci_high"]) == pytest.approx((lo, hi))


def test_reasoned_needs_a_non_empty_think_block():
    assert reasoned("<think>2+3=5</think>\\boxed{5}")
    assert not reasoned("<think></think>\\boxed{5}")
    assert not reasoned("<think>  </think>\\boxed{5}")
    assert not reasoned("\\boxed{5}")


# --- prompt templates -------------------------------------------------------------------------------
CHAT = "{% for m in messages %}<|{{ m['role'] }}|>{{ m['content'] }}{% endfor %}{% if add_generation_prompt %}<|assistant|>{% endif %}"


def test_prompt_templates():
    tok = tiny.build_tokenizer()
    row = {"prompt": "2+3=?", "answer": "5"}
    assert format_prompt(row, tok) == "2+3=?"  # no chat template: default = raw
    assert format_prompt(row, tok, "raw") == "2+3=?"
    with pytest.raises(ValueError, match="chat template"):
        format_prompt(row, tok, "chat_boxed")
    with pytest.raises(ValueError, match="prompt_template"):
        format_prompt(row, tok, "nonsense")
    assert format_prompt(row, tok, lambda r: r["prompt"] + "!") == "2+3=?!"
    tok.chat_template = CHAT
    assert format_prompt(row, tok) == f"<|user|>2+3=?\n{BOXED_INSTRUCTION}<|assistant|>"  # default = chat_boxed
    assert format_prompt(row, tok, "chat") == "<|user|>2+3=?<|assistant|>"
    conv = {"prompt": [{"role": "user", "content": "What is 2+3?"}], "problem": "What is 2+3?", "answer": "5"}
    assert format_prompt(conv, tok, "chat") == "<|user|>What is 2+3?<|assistant|>"
    assert format_prompt(conv, tok, "raw") == "What is 2+3?"
    with pytest.raises(ValueError, match="'prompt' or 'problem'"):
        format_prompt({"answer": "1"}, tok)


# --- the HF backend ---------------------------------------------------------------------------------
class ScriptedLM(torch.nn.Module):
    """A stand-in for a causal LM whose ``generate`` writes a scripted completion per prompt.

    It checks what the backend must do around ``model.generate``: left padding, slicing the prompt
    off, stopping at EOS, counting tokens, flagging truncation, decoding, grading.
    """

    def __init__(self, tokenizer, script: dict[str, str], max_positions: int = 128):
        super().__init__()
        self.w = torch.nn.Parameter(torch.zeros(1))
        self.tok = tokenizer
        self.script = script
        self.config = type("Cfg", (), {"max_position_embeddings": max_positions})()
        self.calls: list[dict] = []

    def generate(self, input_ids, attention_mask, max_new_tokens, pad_token_id, eos_token_id, **kw):
        self.calls.append({"shape": tuple(input_ids.shape), "max_new_tokens": max_new_tokens, **kw})
        assert (attention_mask[:, -1] == 1).all(), "prompts must be left-padded"
        rows = []
        for ids, mask in zip(input_ids, attention_mask):
            prompt = self.tok.decode(ids[mask.bool()].tolist())
            new = self.tok(self.script[prompt], add_special_tokens=False)["input_ids"] + [eos_token_id]
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
    assert s["truncation_rate"] == pytest.approx(4 / 20) and s["boxed_rate"] == pytest.approx(16 / 20)
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


def test_settings_must_be_explicit_and_valid():
    tok = tiny.build_tokenizer()
    rows = _problems()[:2]
    model = ScriptedLM(tok, {})
    with pytest.raises(ValueError, match="max_new_tokens"):
        evaluate(model, rows, tok)
    with pytest.raises(ValueError, match="backend"):
        evaluate(model, rows, tok, max_new_tokens=8, backend="tgi")
    with pytest.raises(ValueError, match="'solutions'"):
        evaluate(model, rows, tok, max_new_tokens=8, answer_column="solutions")
    with pytest.raises(ValueError, match="tokenizer"):
        evaluate(model, rows, None, max_new_tokens=8)


def test_vllm_backend_without_vllm_says_how_to_get_it():
    try:
        import vllm  # noqa: F401
    except ImportError:
        with pytest.raises(ImportError, match="pip install -e '.\\[gpu\\]'"):
            evaluate(str(tiny.model_dir()), _problems()[:2], tiny.build_tokenizer(), backend="vllm", max_new_tokens=8)
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
    path = tiny.ensure_base_model(progress=False)
    rows = tiny.test_problems(4)
    res = evaluate(str(path), rows, max_new_tokens=48, progress=False)
    s = res.summary
    assert s["n"] == 20 and 0.0 <= s["ci_low"] <= s["accuracy"] <= s["ci_high"] <= 1.0
    assert s["boxed_rate"] > 0.5  # the warm-started base answers in the R1 format
    for r in res.records:
        assert r["correct"] == (r["extracted"] is not None and r["extracted"].strip() == r["answer"])
    short = evaluate(str(path), rows, max_new_tokens=3, progress=False).summary
    assert short["accuracy"] == 0.0 and short["truncation_rate"] == 1.0  # a short budget collapses the score


# --- records, compare, sensitivity ------------------------------------------------------------------
def test_records_round_trip_through_jsonl(tmp_path):
    tok = tiny.build_tokenizer()
    rows = _problems()
    model = ScriptedLM(tok, {r["prompt"]: r["solution"] if r["level"] < 3 else "<think>" for r in rows})
    res = evaluate(model, rows, tok, max_new_tokens=24, progress=False)
    path = res.to_jsonl(tmp_path / "sub" / "records.jsonl")
    assert len(path.read_text().splitlines()) == 20
    back = EvalResult.from_jsonl(path)
    assert back.records == res.records and back.summary == res.summary
    assert "accuracy=0.400" in repr(back)


def test_mcnemar_exact_by_hand():
    # 1 vs 5 discordant pairs: 2 * (C(6,0) + C(6,1)) / 2^6 = 2 * 7 / 64
    assert _mcnemar_exact(1, 5) == pytest.approx(14 / 64)
    assert _mcnemar_exact(5, 1) == pytest.approx(14 / 64)
    assert _mcnemar_exact(0, 0) == 1.0
    assert _mcnemar_exact(3, 3) == 1.0
    assert _mcnemar_exact(0, 10) == pytest.approx(2 / 1024)


def test_compare_on_a_fixture():
    # 20 problems: both right on 0-5, only b right on 6-13 (8), only a right on 14-15 (2), both wrong on 16-19
    a = EvalResult([_rec(i, i < 6 or 14 <= i < 16) for i in range(20)], {})
    b = EvalResult([_rec(i, i < 14) for i in range(20)], {})
    c = compare(a, b)
    assert c["n"] == 20 and c["b_better"] == 8 and c["a_better"] == 2
    assert c["difference"] == pytest.approx((14 - 8) / 20)
    expected_p = 2 * sum(math.comb(10, i) for i in range(3)) / 2**10  # 2 * 56 / 1024
    assert c["mcnemar_p"] == pytest.approx(expected_p)
    assert c["ci_low"] < c["difference"] < c["ci_high"] and c["ci_low"] > 0  # 8 vs 2 out of 20: a real rise
    assert compare(a, a)["difference"] == 0 and compare(a, a)["mcnemar_p"] == 1.0
    with pytest.raises(ValueError, match="share no problems"):
        compare(a, EvalResult([_rec(100, True)], {}))


def test_sensitivity_grid_shows_the_budget_collapse_and_plots():
    import matplotlib

    matplotlib.use("Agg")
    from supersmall.evaluate import plot_sensitivity

    tok = tiny.build_tokenizer()
    rows = _problems()
    model = ScriptedLM(tok, {r["prompt"]: r["solution"] for r in rows})
    df = sensitivity(model, rows, tok, grid={"max_new_tokens": [4, 64]}, progress=False, temperature=0.0)
    assert list(df["value"]) == [4, 64]
    assert list(df["accuracy"]) == [0.0, 1.0] and list(df["truncation_rate"]) == [1.0, 0.0]
    fig = plot_sensitivity(df)
    assert len(fig.axes) == 1


# --- CLI and the full MATH-500 pipeline -------------------------------------------------------------
@pytest.mark.slow
def test_cli_full_math500_pipeline_offline_on_cpu(tmp_path):
    """All 500 vendored MATH-500 problems through the CLI: generate, grade, records, summary, run card."""
    tiny.ensure_base_model(progress=False)
    out = subprocess.run([sys.executable, "-m", "supersmall.cli", "eval", "--profile", "tiny", "--dataset", "math500",
                          "--max-new-tokens", "8", "--out", str(tmp_path)], capture_output=True, text=True,
                         env={**os.environ, "HF_HUB_OFFLINE": "1"}, timeout=600)
    assert out.returncode == 0, out.stderr[-2000:]
    assert "max_new_tokens=8" in out.stdout  # the settings are printed
    summary = json.loads((tmp_path / "summary.json").read_text())
    assert summary["n"] == 500 and {k: v["n"] for k, v in summary["per_level"].items()} == \
        {"1": 43, "2": 90, "3": 105, "4": 128, "5": 134}
    assert len(summary["per_subject"]) == 7 and sum(v["n"] for v in summary["per_subject"].values()) == 500
    for key in ("accuracy", "ci_low", "ci_high", "truncation_rate"):
        assert key in summary
    assert 0.0 <= summary["accuracy"] <= 0.05  # a model that cannot read English scores ~0: the point is the pipeline
    records = tmp_path / "records.jsonl"
    assert len(records.read_text().splitlines()) == 500
    assert EvalResult.from_jsonl(records).summary["accuracy"] == summary["accuracy"]
    card = json.loads((tmp_path / "run_card.json").read_text())
    assert card["kind"] == "eval" and card["metrics"]["accuracy"] == summary["accuracy"]


def test_cli_vllm_backend_without_vllm_is_a_clear_error(tmp_path):
    try:
        import vllm  # noqa: F401
    except ImportError:
        pass
    else:  # pragma: no cover - GPU hosts
        pytest.skip("vLLM is installed")
    out = subprocess.run([sys.executable, "-m", "supersmall.cli", "eval", "--backend", "vllm", "--out", str(tmp_path)],
                         capture_output=True, text=True)
    assert out.returncode == 2 and "vLLM" in out.stderr and "Traceback" not in out.stderr
