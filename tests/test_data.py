import json
import math

import pytest

from supersmall import data
from supersmall.data import DataUnavailable, load_deepmath, load_math500, template_opens_think

SAMPLE = str(data.FIXTURES / "deepmath_sample.jsonl")


def test_deepmath_from_a_local_file_with_levels():
    ds = load_deepmath(source=SAMPLE)
    assert {"prompt", "answer", "level", "difficulty", "topic"} <= set(ds.column_names) and len(ds) == 40
    assert ds[0]["prompt"][0]["role"] == "user" and "\\boxed{}" in ds[0]["prompt"][0]["content"]
    low = load_deepmath(levels="1-3", source=SAMPLE)
    assert set(low["level"]) <= {1, 2, 3} and len(low) > 0
    floor = load_deepmath(levels=3, scheme="floor", source=SAMPLE)
    round_ = load_deepmath(levels=3, scheme="round", source=SAMPLE)
    assert 3.5 in floor["difficulty"] and 3.5 not in round_["difficulty"]  # 3.5: level 3 floored, 4 rounded
    assert 2.5 in round_["difficulty"] and 2.5 not in floor["difficulty"]  # 2.5: level 3 rounded, 2 floored


def test_deepmath_without_optional_columns(tmp_path):
    f = tmp_path / "minimal.jsonl"
    f.write_text("\n".join(json.dumps({"question": f"{i}+1?", "final_answer": str(i + 1), "difficulty": 3.0 + i})
                           for i in range(4)))
    ds = load_deepmath(source=str(f))
    assert ds["topic"] == [""] * 4 and ds["level"] == [3, 4, 5, 6]
    g = tmp_path / "wrong.jsonl"
    g.write_text(json.dumps({"q": "x"}))
    with pytest.raises(Exception, match="lacks the columns"):
        load_deepmath(source=str(g))


def test_offline_error_names_the_alternative(monkeypatch):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    with pytest.raises(DataUnavailable) as e:
        load_deepmath()
    msg = str(e.value)
    assert "zwhe99/DeepMath-103K" in msg and "source=" in msg and "\n" not in msg


def test_network_down_is_the_same_clear_error(monkeypatch):
    import datasets

    monkeypatch.setenv("HF_HUB_OFFLINE", "0")

    def down(*a, **k):
        raise ConnectionError("no route to host")

    monkeypatch.setattr(datasets, "load_dataset", down)
    with pytest.raises(DataUnavailable, match="unreachable.*source="):
        load_deepmath()


def test_math500_vendored_copy_offline(monkeypatch):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    ds = load_math500()
    assert len(ds) == 500
    levels = {lvl: ds["level"].count(lvl) for lvl in range(1, 6)}
    assert levels == {1: 43, 2: 90, 3: 105, 4: 128, 5: 134}
    assert {"problem", "answer", "subject", "prompt"} <= set(ds.column_names)


def test_think_prefill_detection():
    class Tok:
        def __init__(self, tail):
            self.chat_template, self.tail = "x", tail

        def apply_chat_template(self, messages, tokenize, add_generation_prompt):
            return "<|User|>1+1<|Assistant|>" + self.tail

    assert template_opens_think(Tok("<think>\n")) and not template_opens_think(Tok(""))
    assert not template_opens_think(type("T", (), {"chat_template": None})())


# --- the rehearsal's files, bad rows, the prompt-length filter -----------------------------------------
REHEARSAL = data.FIXTURES / "rehearsal"


def _same(a, b):
    """Rows equal, NaN equal to NaN (NaN != NaN in Python)."""
    if isinstance(a, float) and isinstance(b, float) and math.isnan(a) and math.isnan(b):
        return True
    if isinstance(a, dict) and isinstance(b, dict):
        return a.keys() == b.keys() and all(_same(a[k], b[k]) for k in a)
    return type(a) is type(b) and a == b


def _jsonl(path):
    return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]


def test_committed_fixtures_equal_what_tiny_writes():
    from supersmall import tiny

    deepmath, want = _jsonl(REHEARSAL / "deepmath.jsonl"), tiny.deepmath_rows()
    assert len(deepmath) == len(want) == 401
    assert all(_same(a, b) for a, b in zip(deepmath, want))
    nan_rows = [r for r in deepmath if isinstance(r["difficulty"], float) and math.isnan(r["difficulty"])]
    assert len(nan_rows) == 1 and not _same(deepmath[0], {**deepmath[0], "difficulty": 0.0})
    math500, want = _jsonl(REHEARSAL / "math500.jsonl"), tiny.math500_rows()
    assert len(math500) == len(want) == 50 and all(_same(a, b) for a, b in zip(math500, want))


def test_deepmath_skips_bad_difficulties_and_counts_them():
    counts = {}
    ds = load_deepmath(source=str(REHEARSAL / "deepmath.jsonl"), counts=counts)
    assert counts == {"bad_difficulty": 3}  # one NaN, one negative, one missing
    assert len(ds) == 401 - 3
    assert all(math.isfinite(d) and d >= 0 for d in ds["difficulty"])
    assert set(ds["level"]) == {1, 2, 3, 4, 5}  # level +- 0.4 rounds back to the level
    counts = {}
    low = load_deepmath(levels="1-3", source=str(REHEARSAL / "deepmath.jsonl"), counts=counts)
    assert counts["bad_difficulty"] == 3 and set(low["level"]) == {1, 2, 3}
    good = load_deepmath(source=SAMPLE, counts=counts)
    assert counts["bad_difficulty"] == 0 and len(good) == 40


def test_drop_long_prompts_drops_and_counts():
    from transformers import AutoTokenizer

    from supersmall import tiny

    tok = AutoTokenizer.from_pretrained(tiny.model_path("tiny-r1"))
    rows = [{"prompt": data.format_prompt(q, "chat", ""), "answer": "2"} for q in ("1+1=?", "12+34=?", "1+1=?" * 8)]
    lengths = [len(tok(data.prompt_text(r["prompt"], tok), add_special_tokens=False)["input_ids"]) for r in rows]
    assert lengths[0] < lengths[1] < lengths[2]
    # one token per character, the same template tokens around every prompt: the differences are the characters
    assert lengths[1] - lengths[0] == 2 and lengths[2] - lengths[0] == 35
    kept, dropped = data.drop_long_prompts(rows, tok, lengths[1])
    assert kept == rows[:2] and dropped == 1  # a prompt of exactly the limit is kept
    kept, dropped = data.drop_long_prompts(rows, tok, lengths[1] - 1)
    assert kept == rows[:1] and dropped == 2
    assert data.drop_long_prompts(rows, tok, 10_000) == (rows, 0)
    raw = [{"prompt": "1+1=?"}, {"prompt": "1+1=?" * 8}]
    assert data.drop_long_prompts(raw, tiny.build_tokenizer(), 5) == (raw[:1], 1)  # plain prompts: characters


def test_the_rehearsal_training_pool_counts_what_it_leaves_out():
    from transformers import AutoTokenizer

    from supersmall import tiny
    from supersmall.config import load_profile
    from supersmall.train import training_rows

    p = load_profile("rehearsal")
    counts = {}
    pool = data.train_rows(p, counts)
    assert counts == {"bad_difficulty": 3} and len(pool) == 398
    assert all(isinstance(r["prompt"], list) and r["prompt"][0]["role"] == "user" for r in pool)
    rows, stages, left_out = training_rows(p, AutoTokenizer.from_pretrained(tiny.model_path("tiny-r1")))
    assert left_out["bad_difficulty"] == 3 and left_out["prompt_too_long"] >= 1
    assert stages == [] and len(rows) == p.train.steps * p.train.prompts_per_step
    assert {r["level"] for r in rows} <= {1, 2, 3} and all(len(r["prompt"][0]["content"]) < 40 for r in rows)
