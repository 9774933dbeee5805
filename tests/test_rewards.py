import math

import pytest

from supersmall import rewards
from supersmall.config import RewardConfig

C = ["<think>a</think>\\boxed{17}", "\\boxed{18}", "no box", [{"role": "assistant", "content": "\\boxed{17}"}]]
GOLD = ["17"] * 4


def test_correctness_and_bipolar():
    assert rewards.correctness(C, answer=GOLD) == [1.0, 0.0, 0.0, 1.0]
    assert rewards.bipolar(C, answer=GOLD) == [1.0, -1.0, -1.0, 1.0]


def test_length_penalty_strict_and_units():
    assert rewards.length_penalty([95, 96], 100) == [0.0, -0.1]
    assert rewards.length_penalty([95, 96], 100, strict=False) == [-0.1, -0.1]
    assert rewards.lengths_of(["abc"], unit="chars") == [3]
    with pytest.raises(ValueError, match="completion_ids is needed"):
        rewards.lengths_of(["abc"])


def test_supersmall_reward_is_eq6_plus_eq7():
    ids = [[0] * 10, [0] * 99, [0] * 50, [0] * 97]
    out = rewards.supersmall_reward(C, answer=GOLD, completion_ids=ids, max_length=100)
    assert out == pytest.approx([1.0, -0.1, 0.0, 0.9])
    with pytest.raises(ValueError, match="max_length"):
        rewards.supersmall_reward(C, answer=GOLD, completion_ids=ids)


def test_errors_name_the_argument():
    with pytest.raises(ValueError, match="'answer' has 1 items but completions has 4"):
        rewards.correctness(C, answer=["17"])
    with pytest.raises(ValueError, match="missing gold answers.*'solution'"):
        rewards.correctness(C, answer_column="solution")
    assert rewards.correctness(["\\boxed{2}"], solution=["2"], answer_column="solution") == [1.0]
    with pytest.raises(ValueError, match="completion_ids has 1 items"):
        rewards.supersmall_reward(C, answer=GOLD, completion_ids=[[1]], max_length=10)


def test_format_reward_and_prefill():
    assert rewards.format_reward(["<think>x</think>\\boxed{1}", "\\boxed{1}"]) == [1.0, 0.0]
    assert rewards.format_reward(["x</think>\\boxed{1}"], think_prefilled=True) == [1.0]
    assert rewards.format_reward(["x</think>\\boxed{1}"]) == [0.0]


def test_cosine_reward_by_hand_and_pitfalls():
    ids = [[0] * 0, [0] * 100, [0] * 50, [0] * 100]
    out = rewards.cosine_reward(["\\boxed{1}", "\\boxed{1}", "\\boxed{2}", "\\boxed{2}"], answer=["1", "1", "1", "1"],
                                completion_ids=ids, max_length=100)
    assert out == pytest.approx([1.0, 0.5, -0.75, -0.5])  # short right best, long wrong penalised least
    assert rewards.cosine_reward(["\\boxed{1}"], answer=[""], completion_ids=[[0]], max_length=10) == [0.0]
    # a gold answer math-verify cannot read pays nothing, whatever the length (was -1.9 for a wrong answer)
    assert rewards.cosine_reward(["\\boxed{2}", "x" * 50], answer=["}{", "}{"], completion_ids=[[0], [0] * 10],
                                 max_length=10) == [0.0, 0.0]
    # lengths above the maximum count as the maximum (no wrap-around): 25 tokens pay what 10 pay
    assert rewards.cosine_reward(["\\boxed{2}"], answer=["1"], completion_ids=[[0] * 25], max_length=10) == \
        rewards.cosine_reward(["\\boxed{2}"], answer=["1"], completion_ids=[[0] * 10], max_length=10)
    chars = rewards.cosine_reward(["\\boxed{1}"], answer=["1"], max_length=9, unit="chars")
    assert chars == pytest.approx([0.5])  # 9 characters = the whole budget


def test_structured_reward_reading():
    ok = "<think>r</think><answer>5</answer>"
    out = rewards.structured_reward([ok, ok, "5"], answer=["5", "6", "5"], completion_ids=[[0] * 32] * 3,
                                    target_length=1024, weight=0.5)
    r1 = math.log(32) / math.log(1024)
    assert out == pytest.approx([1 + 1 + 0.5 * r1, -(1 + 0.5 * r1), -(0.5 * r1)])


def test_build_reward_from_config():
    fns = rewards.build_reward(RewardConfig(), 100)
    assert [f.__name__ for f in fns] == ["supersmall"]
    out = fns[0](C, answer=GOLD, completion_ids=[[0] * 99] * 4)
    assert out == pytest.approx([0.9, -0.1, -0.1, 0.9])
    # Open-RS experiment 2 is format + accuracy; experiment 3 *replaces* accuracy with cosine (1.0 / 2.0)
    assert [f.__name__ for f in rewards.build_reward(RewardConfig(name="open_rs"), 100)] == ["format", "accuracy"]
    assert [f.__name__ for f in rewards.build_reward(RewardConfig(name="open_rs_cosine"), 100)] == ["format", "cosine"]
    assert rewards.reward_weights(RewardConfig(name="open_rs")) == [1.0, 2.0]
    assert rewards.reward_weights(RewardConfig(name="open_rs_cosine")) == [1.0, 2.0]
    with pytest.raises(ValueError, match="unknown reward"):
        rewards.build_reward(RewardConfig(name="nope"), 10)


def test_the_weights_come_with_the_config_from_paper_yaml():
    """rewards types no paper number: Open-RS's weights are paper.yaml's (App. E), by function name, in the order
    build_reward returns the functions; a config with other weights gets those."""
    from types import SimpleNamespace

    from supersmall import paper

    exp2, exp3 = paper.value("openrs.exp2.reward_weights"), paper.value("openrs.exp3.reward_weights")
    assert RewardConfig(name="open_rs").weights == exp2 and RewardConfig(name="open_rs_cosine").weights == exp3
    assert rewards.reward_weights(RewardConfig(name="open_rs")) == [exp2["format"], exp2["accuracy"]]
    assert rewards.reward_weights(RewardConfig(name="open_rs_cosine")) == [exp3["format"], exp3["cosine"]]
    assert RewardConfig().weights == {} and rewards.reward_weights(RewardConfig()) is None
    mine = SimpleNamespace(**{**vars(RewardConfig(name="open_rs")), "weights": {"accuracy": 5.0}})
    assert rewards.reward_weights(mine) == [1.0, 5.0]
    assert not hasattr(rewards, "OPEN_RS_WEIGHTS")
