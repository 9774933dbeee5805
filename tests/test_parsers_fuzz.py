"""Property tests of the parsers a user types into: ``--set KEY=VALUE``, curriculum stage strings and level
ranges. Each input is either accepted with the meaning written or refused with one sentence (a
``UserError`` or a ``ValueError`` such as ``ProfileError``); never silently ignored, never another
exception."""

import math
import string

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from supersmall.commands import parse_sets
from supersmall.config import Profile, load_profile
from supersmall.curriculum import MAX_LEVEL, Stage, parse_levels, parse_stages, stage_name
from supersmall.errors import UserError

FUZZ = settings(max_examples=150, deadline=None, derandomize=True, database=None,
                suppress_health_check=[HealthCheck.too_slow])
TINY = load_profile("tiny")
KEYS = [f"{s}.{k}" for s, v in vars(TINY).items() if hasattr(v, "__dataclass_fields__") for k in vars(v)]


def _one_sentence(error: Exception) -> None:
    msg = str(error)
    assert msg.strip() and "\n" not in msg, repr(msg)


def _refused(fn, *args, **kwargs):
    """``fn(*args, **kwargs)``, or None when it refuses with one sentence (any other exception fails the test)."""
    try:
        return fn(*args, **kwargs)
    except (UserError, ValueError) as e:
        _one_sentence(e)
        return None


# --- level ranges ------------------------------------------------------------------------------------
levels_part = st.tuples(st.integers(0, MAX_LEVEL + 20), st.none() | st.integers(0, MAX_LEVEL + 20))


def _levels_text(parts, prefix: bool, blank: str) -> str:
    text = "+".join(f"{blank}{a}{blank}" if b is None else f"{a}{blank}-{blank}{b}" for a, b in parts)
    return ("level" if prefix else "") + text


@FUZZ
@given(st.lists(levels_part, min_size=1, max_size=4), st.booleans(), st.sampled_from(["", " "]))
def test_a_level_range_means_what_it_says_or_is_refused(parts, prefix, blank):
    text = _levels_text(parts, prefix, blank)
    got = _refused(parse_levels, text)
    ok = all((b is None or a <= b) and max(a, b or a) <= MAX_LEVEL for a, b in parts)
    if ok:
        assert got == tuple(x for a, b in parts for x in range(a, (a if b is None else b) + 1)), text
    else:
        assert got is None, f"{text!r} read as {got}: an inverted or too-high range must be refused"


@FUZZ
@given(st.text(alphabet=string.printable + "٣²_ ", max_size=12))
def test_any_text_as_levels_is_levels_or_one_sentence(text):
    got = _refused(parse_levels, text)
    if got is not None:  # accepted: only digits, '-', '+' and blanks after the optional "level"
        assert set(text.strip().removeprefix("level")) <= set("0123456789-+ \t\n\r\x0b\x0c"), text
        assert all(0 <= x <= MAX_LEVEL for x in got) and got


# --- stage strings -------------------------------------------------------------------------------------
valid_levels = st.lists(st.tuples(st.integers(0, 9), st.integers(0, 3)), min_size=1, max_size=3)
stage = st.tuples(valid_levels, st.integers(1, 500), st.none() | st.from_regex(r"[a-z][a-z0-9.]{0,6}", fullmatch=True))


@FUZZ
@given(st.lists(stage, min_size=1, max_size=4))
def test_a_stage_string_means_what_it_says_or_is_refused(stages):
    items, want = [], []
    for parts, steps, name in stages:
        ranges = [(a, a + d) for a, d in parts]
        text = "+".join(f"{a}-{b}" if a != b else f"{a}" for a, b in ranges)
        levels = tuple(x for a, b in ranges for x in range(a, b + 1))
        items.append(f"{name}={text}:{steps}" if name else f"{text}:{steps}")
        want.append(Stage(name or stage_name(levels), levels, steps))
    spec = ",".join(items)
    got = _refused(parse_stages, spec)
    if len({s.name for s in want}) == len(want):
        assert got == want, spec
    else:  # two stages of one name would share eval/<name>: refused
        assert got is None, spec
    # through the profile, as --stages and --set curriculum.stages give it
    profile = _refused(load_profile, "tiny", **{"curriculum.stages": spec})
    assert (profile is None) == (got is None)


@FUZZ
@given(st.text(alphabet=string.printable + "²=", max_size=20))
def test_any_text_as_stages_is_stages_or_one_sentence(text):
    got = _refused(parse_stages, text)
    if got is not None:
        assert all(s.steps >= 1 and s.levels and s.name for s in got)
        assert sum(1 for item in text.split(",") if item.strip()) == len(got)  # no stage dropped


# --- --set KEY=VALUE -------------------------------------------------------------------------------------
values = st.one_of(
    st.integers(-5, 10**6).map(str), st.floats(allow_nan=True).map(repr), st.sampled_from(
        ["true", "false", "yes", "no", "null", "~", "", "017", "4:20", "1_000", "0x10", "1e-5", "[0, 1]", "[a]",
         "{a: 1}", "2001-12-14", "'quoted '", "!!binary aGk=", "1-3:5,4:5", "9-3:5", "none", "group", "nan"]),
    st.text(alphabet=string.printable, max_size=10))
keys = st.one_of(st.sampled_from(KEYS), st.sampled_from(["train", "name", "trian.steps", "train.stepz", "train..x",
                                                         "train.steps.x", ".steps"]),
                 st.text(alphabet=string.ascii_lowercase + "._", max_size=12))


def _same(got, written: str) -> bool:
    """``got`` is what ``written`` says: the text itself for a string, the number for a number, etc."""
    w = written.strip()
    if got is None:
        return w in ("null", "~")
    if isinstance(got, bool):
        return w.lower() == str(got).lower()
    if isinstance(got, int):
        return int(w) == got
    if isinstance(got, float):
        return float(w) == got or (math.isnan(got) and math.isnan(float(w)))
    if isinstance(got, list):
        return True  # a YAML list, checked element by element by the profile's types
    return got == w or (w[:1] in "'\"" and got == w[1:-1])


@FUZZ
@given(keys, values)
def test_a_set_item_is_set_as_written_or_refused(key, value):
    sets = _refused(parse_sets, [f"{key}={value}"])
    if sets is None:
        return
    profile = _refused(Profile.replace, TINY, **sets)
    if profile is None:
        return
    section, _, leaf = key.strip().rpartition(".")
    got = getattr(getattr(profile, section), leaf) if section else getattr(profile, leaf)
    assert _same(got, value), f"--set {key}={value} set {got!r}"


@pytest.mark.parametrize("item, expected", [("curriculum.stages=4:20", "4:20"), ("data.levels=017", "017"),
                                             ("train.steps=017", 17), ("train.learning_rate=1e-5", 1e-5),
                                             ("train.clip_eps_high=null", None), ("eval.budgets=[8, 16]", [8, 16])])
def test_set_reads_the_value_for_its_key_not_as_yaml_guesses(item, expected):
    """Plain YAML reads 4:20 as 260 (base 60) and 017 as 15 (octal); --set keeps what was written."""
    assert list(parse_sets([item]).values()) == [expected]


@pytest.mark.parametrize("item, message", [("train=5", "is a section of the profile"),
                                            ("train.bf16=yes", "train.bf16 must be true or false"),
                                            ("train.learning_rate=1_0", "must be a number"),
                                            ("eval.budgets=5", "eval.budgets must be a list")])
def test_set_refuses_what_its_key_cannot_hold(item, message):
    with pytest.raises(ValueError, match=message):
        parse_sets([item])
