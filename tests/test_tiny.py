import pytest
from transformers import AutoModelForCausalLM, AutoTokenizer

from supersmall import grading, tiny
from supersmall.evaluate import evaluate


def test_problems_are_well_formed_and_splits_disjoint():
    train = tiny.make_problems(50, split="train", seed=0)
    test = tiny.test_problems(50)
    assert len(train) == len(test) == 250
    assert {p["level"] for p in train} == {1, 2, 3, 4, 5}
    assert not {p["prompt"] for p in train} & {p["prompt"] for p in test}
    for p in train[::7]:
        assert p["subject"] == tiny.SUBJECTS[p["level"]]
        assert grading.extract_answer(p["solution"]) == p["answer"]  # the worked target is right
        assert p["solution"].startswith("<think>") and "</think>\\boxed{" in p["solution"]
    assert tiny.make_problems(5, seed=3) == tiny.make_problems(5, seed=3)  # seeded
    with pytest.raises(ValueError, match="split"):
        tiny.make_problems(1, split="dev")


def test_skip_reasoning():
    assert tiny.skip_reasoning("<think>3+4=7</think>\\boxed{7}") == "<think></think>\\boxed{7}"


def test_tokenizer_round_trips_through_autotokenizer(tmp_path):
    tok = tiny.build_tokenizer()
    text = "(7-2)*(3+4)=?<think>7-2=5;3+4=7;5*7=35</think>\\boxed{35}"
    ids = tok(text, add_special_tokens=False)["input_ids"]
    assert tok.convert_ids_to_tokens(ids)[13] == "<think>" and "\\boxed{" in tok.convert_ids_to_tokens(ids)
    assert len(tok) < 40
    model = tiny.new_model(len(tok))
    model.save_pretrained(tmp_path)
    tok.save_pretrained(tmp_path)
    loaded = AutoTokenizer.from_pretrained(tmp_path)  # transformers picks the Qwen2 class: same ids?
    assert loaded(text, add_special_tokens=False)["input_ids"] == ids
    assert loaded.decode(ids) == text


def test_shipped_models_are_verified_and_match_the_code_that_builds_them(tmp_path, monkeypatch):
    import json
    import shutil

    path = tiny.base_model_dir()
    info = json.loads((path / "build.json").read_text())
    # an edit to the model config, the warm start or the task without `supersmall tiny build --ship` fails here
    assert info["spec"] == json.loads(json.dumps(tiny._spec()))
    assert json.loads((tiny.r1_model_dir() / "build.json").read_text())["from_sha256"] == info["sha256"]
    model = AutoModelForCausalLM.from_pretrained(path)
    assert 0.5e6 < sum(p.numel() for p in model.parameters()) < 2e6 and type(model).__name__ == "Qwen2ForCausalLM"
    assert tiny.model_path("tiny") == str(path) and tiny.model_path("some/hub-model") == "some/hub-model"
    # a damaged copy is refused with one sentence
    shutil.copytree(tiny.SHIPPED, tmp_path / "models")
    weights = tmp_path / "models" / "tiny" / "model.safetensors"
    weights.write_bytes(weights.read_bytes()[:-4] + b"\0\0\0\0")
    monkeypatch.setattr(tiny, "SHIPPED", tmp_path / "models")
    monkeypatch.setattr(tiny, "_VERIFIED", set())
    with pytest.raises(RuntimeError, match="checksum"):
        tiny.base_model_dir()
    with pytest.raises(ValueError, match="ships"):
        tiny.shipped_dir("tiny-xl")


def _eval_base(env: dict[str, str], out) -> dict:
    import json
    import os
    import subprocess
    import sys

    run = subprocess.run([sys.executable, "-m", "supersmall.cli", "eval", "--profile", "tiny", "--out", str(out)],
                         capture_output=True, text=True, env={**os.environ, **env}, timeout=600)
    assert run.returncode == 0, run.stderr[-2000:]
    return json.loads((out / "summary.json").read_text())


@pytest.mark.slow
def test_shipped_base_scores_the_same_on_another_cpu(tmp_path):
    """The student's first number does not depend on the CPU: the shipped base model's greedy evaluation is
    identical with the default kernels and with AVX2 kernels on one thread (``../shared/tools/other-cpu``),
    and equals the figure recorded when it was shipped."""
    import json

    here = _eval_base({}, tmp_path / "here")
    other = _eval_base({"ATEN_CPU_CAPABILITY": "avx2", "MKL_ENABLE_INSTRUCTIONS": "AVX2",
                        "ONEDNN_MAX_CPU_ISA": "AVX2", "OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1"},
                       tmp_path / "other")
    assert here["accuracy"] == other["accuracy"] and here["per_level"] == other["per_level"]
    shipped = json.loads((tiny.base_model_dir() / "build.json").read_text())["heldout"]
    assert here["accuracy"] == shipped["accuracy"] and here["n"] == shipped["n"] == 500
    # a base that can reason but usually does not: low greedy accuracy, rarely any reasoning
    assert here["accuracy"] < 0.45 and here["reasoning_rate"] < 0.3


@pytest.mark.slow
def test_a_rebuild_lands_in_the_build_to_build_range(tmp_path):
    """``supersmall tiny build`` rebuilds both models here; the rebuild's accuracy is a new draw from the build
    process, so it must land in the prediction range of the builds measured in ``models/builds.json``
    (different CPUs, thread counts and seeds), not in the shipped model's own Wilson interval, which a
    rebuild on another CPU misses (measured: 18.4% and 28.2% for the same recipe under two kernels)."""
    import json
    import os
    import subprocess
    import sys

    from supersmall import stats

    run = subprocess.run([sys.executable, "-m", "supersmall.cli", "tiny", "build", "--out", str(tmp_path), "--json"],
                         capture_output=True, text=True, env=dict(os.environ), timeout=900)
    assert run.returncode == 0, run.stderr[-2000:]
    row = json.loads(run.stdout.strip().splitlines()[-1])
    builds = json.loads((tiny.SHIPPED / "builds.json").read_text())["builds"]
    lo, hi = stats.prediction_interval([b["accuracy"] for b in builds])
    assert lo <= row["rebuilt"]["accuracy"] <= hi, (row, lo, hi)
    r1 = AutoTokenizer.from_pretrained(tmp_path / "tiny-r1")
    assert r1.chat_template == tiny.R1_TEMPLATE


def test_tiny_r1_opens_think_and_answers_through_its_template():
    from supersmall.data import format_prompt, prompt_text, template_opens_think

    path = tiny.model_path("tiny-r1")
    assert path == str(tiny.r1_model_dir())
    tok = AutoTokenizer.from_pretrained(path)
    assert template_opens_think(tok) and not template_opens_think(tiny.build_tokenizer())
    text = prompt_text(format_prompt("2+3=?", "chat", ""), tok)
    assert text == "<｜begin▁of▁sentence｜><｜User｜>2+3=?<｜Assistant｜><think>"
    ids = tok(text, add_special_tokens=False)["input_ids"]
    assert len(ids) == 3 + 5 + 1  # the R1 markers and <think> are single tokens, then one per character
    rows = [{**p, "prompt": format_prompt(p["prompt"], "chat", "")} for p in tiny.test_problems(4)]
    s = evaluate(AutoModelForCausalLM.from_pretrained(path), rows, tok, max_new_tokens=48, progress=False).summary
    assert s["boxed_rate"] > 0.5 and s["accuracy"] > 0.05  # adapted to the template: it answers in the R1 format
