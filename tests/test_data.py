import json

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
