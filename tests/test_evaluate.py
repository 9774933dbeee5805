import json
import subprocess
import sys

import pytest

from supersmall import tiny
from supersmall.evaluate import EvalResult, compare, evaluate, format_prompt, summarize, wilson_interval


def test_wilson_interval_by_hand():
    lo, hi = wilson_interval(175, 500)  # the paper's 35.0%
    assert lo == pytest.approx(0.3094, abs=1e-4) and hi == pytest.approx(0.3929, abs=1e-4)
    assert wilson_interval(0, 10)[0] == 0.0 and wilson_interval(0, 10)[1] == pytest.approx(0.2775, abs=1e-4)
    assert wilson_interval(0, 0) == (0.0, 1.0)


def _rec(i, correct, level=1, subject="A", sample=0):
    return {"index": i, "sample": sample, "correct": correct, "level": level, "subject": subject, "length": 10,
            "truncated": False, "reasoned": True, "extracted": "1", "prompt": "p", "completion": "c", "answer": "1"}


def test_pass_at_1_per_level_and_subject():
    recs = [_rec(0, True, 1, "A", 0), _rec(0, False, 1, "A", 1),   # problem 0: 1/2
            _rec(1, True, 2, "B", 0), _rec(1, True, 2, "B", 1),    # problem 1: 2/2
            _rec(2, False, 2, "A", 0), _rec(2, False, 2, "A", 1)]  # problem 2: 0/2
    s = summarize(recs)
    assert s["accuracy"] == pytest.approx(0.5) and s["n"] == 3 and s["samples"] == 6
    assert s["per_level"]["1"]["accuracy"] == pytest.approx(0.5) and s["per_level"]["2"]["accuracy"] == 0.5
    assert s["per_subject"]["B"]["accuracy"] == 1.0 and s["per_subject"]["A"]["n"] == 2


def test_records_round_trip_and_compare(tmp_path):
    a = EvalResult([_rec(i, i < 5) for i in range(20)], {})
    b = EvalResult([_rec(i, i < 15) for i in range(20)], {})
    a.summary, b.summary = summarize(a.records), summarize(b.records)
    path = a.to_jsonl(tmp_path / "a.jsonl")
    again = EvalResult.from_jsonl(path)
    assert again.records == a.records and again.summary == a.summary
    c = compare(a, b)
    assert c["difference"] == pytest.approx(0.5) and c["b_better"] == 10 and c["a_better"] == 0
    assert c["mcnemar_p"] == pytest.approx(2 / 2 ** 10) and c["ci_low"] > 0


def test_prompt_templates():
    row = {"problem": "1+1?", "answer": "2"}
    assert format_prompt(row, None, "raw") == "1+1?"
    with pytest.raises(ValueError, match="chat template"):
        format_prompt(row, type("T", (), {"chat_template": None})(), "chat")
    assert format_prompt(row, None, lambda r: "Q: " + r["problem"]) == "Q: 1+1?"


@pytest.mark.slow
def test_hf_backend_on_the_tiny_model():
    model, tok = tiny.load_base()
    res = evaluate(model, tiny.test_problems(20), tok, max_new_tokens=48, progress=False)
    s = res.summary
    assert s["n"] == 100 and set(s["per_level"]) == {"1", "2", "3", "4", "5"}
    assert all(r["completion"].startswith("<think>") for r in res.records[:10])
    short = evaluate(model, tiny.test_problems(20), tok, max_new_tokens=4, progress=False)
    assert short.summary["truncation_rate"] == 1.0 and short.summary["accuracy"] == 0.0
    with pytest.raises(ValueError, match="max_new_tokens is required"):
        evaluate(model, tiny.test_problems(1), tok)


@pytest.mark.slow
def test_full_math500_pipeline_offline_on_cpu(tmp_path):
    out = subprocess.run([sys.executable, "-m", "supersmall.cli", "eval", "--profile", "tiny", "--dataset", "math500",
                          "--max-new-tokens", "8", "--out", str(tmp_path)], capture_output=True, text=True,
                         env={**__import__("os").environ, "HF_HUB_OFFLINE": "1"}, timeout=600)
    assert out.returncode == 0, out.stderr[-2000:]
    summary = json.loads((tmp_path / "summary.json").read_text())
    assert summary["n"] == 500 and {k: v["n"] for k, v in summary["per_level"].items()} == \
        {"1": 43, "2": 90, "3": 105, "4": 128, "5": 134}
    for key in ("accuracy", "ci_low", "ci_high", "per_subject", "truncation_rate"):
        assert key in summary
    assert len((tmp_path / "records.jsonl").read_text().splitlines()) == 500
    assert json.loads((tmp_path / "run_card.json").read_text())["kind"] == "eval"


def test_vllm_backend_without_vllm_is_a_clear_error(tmp_path):
    pytest.importorskip("torch")
    try:
        import vllm  # noqa: F401
        pytest.skip("vLLM is installed")
    except ImportError:
        pass
    out = subprocess.run([sys.executable, "-m", "supersmall.cli", "eval", "--backend", "vllm", "--out", str(tmp_path)],
                         capture_output=True, text=True)
    assert out.returncode == 2 and "vLLM" in out.stderr and "Traceback" not in out.stderr
