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


@pytest.mark.slow
def test_base_model_is_cached_loadable_and_levels_are_ordered():
    path = tiny.ensure_base_model(progress=False)
    assert tiny.cached_model_dir() == path and tiny.ensure_base_model() == path  # second call: cache hit
    model = AutoModelForCausalLM.from_pretrained(path)
    tokenizer = AutoTokenizer.from_pretrained(path)
    n = sum(p.numel() for p in model.parameters())
    assert 0.5e6 < n < 2e6 and type(model).__name__ == "Qwen2ForCausalLM"
    s = evaluate(model, tiny.test_problems(100), tokenizer, max_new_tokens=48, progress=False, batch_size=500).summary
    levels = [s["per_level"][str(k)]["accuracy"] for k in range(1, 6)]
    # a base that can reason but usually does not: low greedy accuracy, rarely any reasoning
    assert 0.05 < s["accuracy"] < 0.45 and s["reasoning_rate"] < 0.3
    # levels are ordered by measured base accuracy (adjacent levels may tie within sampling noise)
    assert levels[0] == max(levels) and levels[-1] <= min(levels[:3])
    assert all(b <= a + 0.1 for a, b in zip(levels, levels[1:])), levels


def test_tiny_r1_opens_think_and_answers_through_its_template():
    from supersmall.data import format_prompt, prompt_text, template_opens_think

    path = tiny.model_path("tiny-r1")
    assert path == str(tiny.r1_model_dir()) and tiny.model_path("some/hub-model") == "some/hub-model"
    tok = AutoTokenizer.from_pretrained(path)
    assert template_opens_think(tok) and not template_opens_think(tiny.build_tokenizer())
    text = prompt_text(format_prompt("2+3=?", "chat", ""), tok)
    assert text == "<｜begin▁of▁sentence｜><｜User｜>2+3=?<｜Assistant｜><think>"
    ids = tok(text, add_special_tokens=False)["input_ids"]
    assert len(ids) == 3 + 5 + 1  # the R1 markers and <think> are single tokens, then one per character
    rows = [{**p, "prompt": format_prompt(p["prompt"], "chat", "")} for p in tiny.test_problems(4)]
    s = evaluate(AutoModelForCausalLM.from_pretrained(path), rows, tok, max_new_tokens=48, progress=False).summary
    assert s["boxed_rate"] > 0.5 and s["accuracy"] > 0.05  # adapted to the template: it answers in the R1 format
