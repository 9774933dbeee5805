"""The exercise checks pass the library's own functions and catch specific, plausible wrong answers."""

import math

import pytest
import torch
from scipy import stats as st

from supersmall import grading, losses, rewards, stats
from supersmall.checks import (
    NOT_IMPLEMENTED,
    Case,
    CheckFailed,
    check_extract_answer,
    check_grpo_step,
    check_masked_surrogate,
    check_paired_test,
    check_pass_at_1,
    check_supersmall_reward,
    check_verdict,
    check_wilson_interval,
    run_check,
)
from supersmall.checks.grpo import reference_grpo_step
from supersmall.checks.report import reference_verdict


# --- the machinery ---------------------------------------------------------------------------------
def _raises_on_empty(xs):
    if not xs:
        raise ValueError("empty")
    return len(xs)


def test_reference_error_must_be_raised_by_the_student_too():
    cases = [Case(([1, 2],)), Case(([],), label="empty")]
    assert run_check("n", _raises_on_empty, _raises_on_empty, cases, quiet=True)
    with pytest.raises(CheckFailed, match=r"empty.*\n  expected ValueError to be raised"):
        run_check("n", len, _raises_on_empty, cases, quiet=True)  # returns 0 instead of raising
    with pytest.raises(CheckFailed, match="raised ZeroDivisionError"):
        run_check("n", lambda xs: 1 / len(xs) and len(xs), _raises_on_empty, cases, quiet=True)
    lenient = [cases[0], Case(([],), label="empty", raises=(ValueError, ZeroDivisionError))]
    assert run_check("n", lambda xs: 1 / len(xs) and len(xs), _raises_on_empty, lenient, quiet=True)


def test_stub_reports_not_implemented(capsys):
    def stub(*args, **kwargs):
        raise NotImplementedError

    assert check_grpo_step(stub) is False
    assert NOT_IMPLEMENTED in capsys.readouterr().out


# --- strengthened checks ---------------------------------------------------------------------------
def test_extract_answer_check():
    assert check_extract_answer(grading.extract_answer)

    def crashes_on_none(text):
        return grading.extract_answer(text) if isinstance(text, str) or text.strip() else None

    with pytest.raises(CheckFailed, match="None"):
        check_extract_answer(crashes_on_none)  # AttributeError: 'NoneType' object has no attribute 'strip'

    def keeps_blank_box(text):  # "\boxed{ }" -> "" instead of None
        if text and text.rstrip().endswith("\\boxed{ }"):
            return ""
        return grading.extract_answer(text)

    with pytest.raises(CheckFailed, match=r"\\\\boxed\{ \}"):
        check_extract_answer(keeps_blank_box)


def test_supersmall_reward_check_needs_the_grader():
    assert check_supersmall_reward(
        lambda c, a, ids, m: rewards.supersmall_reward(c, answer=a, completion_ids=ids, max_length=m))

    def string_equality(completions, answer, completion_ids, max_length):
        out = []
        for c, gold, ids in zip(completions, answer, completion_ids):
            pred = grading.extract_answer(rewards.completion_text(c))
            out.append((1.0 if pred == gold else 0.0) + rewards.length_penalty([len(ids)], max_length)[0])
        return out

    with pytest.raises(CheckFailed, match="equivalent forms"):
        check_supersmall_reward(string_equality)


def test_masked_surrogate_check_catches_zero_length_rows():
    def reference(logp, old, adv, mask, clip_eps=0.2):
        return losses.aggregate(losses.clipped_surrogate(logp, old, adv, clip_eps), mask, "grpo")

    assert check_masked_surrogate(reference)

    def divides_by_raw_length(logp, old, adv, mask, clip_eps=0.2):
        ratio = torch.exp(logp - old)
        a = adv[:, None]
        per_token = -torch.min(ratio * a, ratio.clamp(1 - clip_eps, 1 + clip_eps) * a)
        return ((per_token * mask).sum(1) / mask.sum(1)).mean()  # 0 / 0 on a fully padded row

    with pytest.raises(CheckFailed, match="fully padded row(.|\n)*got NaN"):
        check_masked_surrogate(divides_by_raw_length)

    def skips_empty_rows(logp, old, adv, mask, clip_eps=0.2):  # no NaN, but a different mean
        keep = mask.sum(1) > 0
        return reference(logp[keep], old[keep], adv[keep], mask[keep], clip_eps)

    with pytest.raises(CheckFailed, match="fully padded row"):
        check_masked_surrogate(skips_empty_rows)


@pytest.mark.filterwarnings("ignore::RuntimeWarning")  # numpy: mean of an empty list
def test_pass_at_1_check_requires_an_error_on_empty():
    def good(correct):
        if not correct:
            raise ValueError("no problems")
        return sum(sum(r) / len(r) for r in correct) / len(correct)

    assert check_pass_at_1(good)

    def zero_division(correct):
        return sum(sum(r) / len(r) for r in correct) / len(correct)

    assert check_pass_at_1(zero_division)  # an error all the same (notebook 00's one-liner)

    def zero_for_empty(correct):  # a silent 0% for a run that scored nothing
        return good(correct) if correct else 0.0

    with pytest.raises(CheckFailed, match="no problems at all(.|\n)*expected ValueError to be raised"):
        check_pass_at_1(zero_for_empty)

    def numpy_mean(correct):  # nan (and a warning) for no problems
        import numpy as np

        return float(np.mean([np.mean(r) for r in correct]))

    with pytest.raises(CheckFailed, match="no problems at all(.|\n)*got      nan"):
        check_pass_at_1(numpy_mean)

    def index_error(correct):  # an unrelated crash is still a bug
        return correct[0] and good(correct)

    with pytest.raises(CheckFailed, match="raised IndexError"):
        check_pass_at_1(index_error)


# --- new checks ------------------------------------------------------------------------------------
def _grpo_step(completions, answers, lengths, logp, old_logp, mask, group_size, max_length, clip_eps=0.2,
               unbiased=True, aggregation="grpo", penalty=-0.1, detach=False):
    r = rewards.supersmall_reward(completions, answer=answers, completion_ids=[[0] * n for n in lengths],
                                  max_length=max_length, penalty=penalty)
    g = torch.tensor(r).view(-1, group_size)
    centred = g - g.mean(1, keepdim=True)
    std = g.std(1, unbiased=unbiased, keepdim=True)
    adv = torch.where(centred == 0, torch.zeros_like(centred), centred / (std + 1e-6)).flatten()
    loss, _ = losses.policy_loss(logp.detach() if detach else logp, old_logp, adv, mask, clip_eps=clip_eps,
                                 aggregation=aggregation)
    if detach:
        loss = loss + 0 * logp.sum()  # the value is right, the gradient is gone
    return r, adv, loss


def test_grpo_step_check():
    assert check_grpo_step(reference_grpo_step)
    assert check_grpo_step(_grpo_step)


@pytest.mark.parametrize("wrong, message", [
    ({"unbiased": False}, "advantages differ"),  # population std instead of TRL's unbiased one
    ({"penalty": 0.0}, "rewards differ"),  # eq. 6 without eq. 7
    ({"aggregation": "dapo"}, "loss differs"),  # global token mean instead of per-sequence
    ({"detach": True}, r"d loss / d logp differ"),  # right value, no gradient
    ({"clip_eps": 0.3}, "loss differs"),
])
def test_grpo_step_check_catches(wrong, message):
    def student(*args, **kwargs):
        return _grpo_step(*args, **kwargs, **wrong)

    with pytest.raises(CheckFailed, match=message):
        check_grpo_step(student)


def test_grpo_step_check_wants_a_tensor_loss():
    def item(*args, **kwargs):
        r, adv, loss = reference_grpo_step(*args, **kwargs)
        return r, adv, loss.item()

    with pytest.raises(CheckFailed, match="no gradient"):
        check_grpo_step(item)


def test_wilson_check():
    assert check_wilson_interval(stats.wilson_interval)

    def wald(k, n, z=1.96):
        if n == 0:
            return 0.0, 1.0
        p = k / n
        h = z * math.sqrt(p * (1 - p) / n)
        return max(0.0, p - h), min(1.0, p + h)

    with pytest.raises(CheckFailed, match="k = 0"):
        check_wilson_interval(wald)


def test_paired_test_check():
    def good(a, b):
        if len(a) != len(b):
            raise ValueError("not aligned")
        a_only = sum(1 for x, y in zip(a, b) if x and not y)
        b_only = sum(1 for x, y in zip(a, b) if y and not x)
        return a_only, b_only, stats.mcnemar_exact(a_only, b_only)

    assert check_paired_test(good)

    def one_sided(a, b):
        a_only, b_only, _ = good(a, b)
        n = a_only + b_only
        return a_only, b_only, float(st.binom.cdf(min(a_only, b_only), n, 0.5)) if n else 1.0

    with pytest.raises(CheckFailed, match="b solves 10 more"):
        check_paired_test(one_sided)

    def counts_totals(a, b):  # compares accuracies, not discordant pairs
        _, _, p = good(a, b)
        return sum(a), sum(b), p

    with pytest.raises(CheckFailed):
        check_paired_test(counts_totals)


def test_verdict_check():
    assert check_verdict(reference_verdict)

    def interval_only(diffs, direction, within_se):  # the old rule: the t interval, no seed count, no floor
        n = len(diffs)
        if n < 2:
            return "inconclusive"
        m = sum(diffs) / n
        sd = math.sqrt(sum((x - m) ** 2 for x in diffs) / (n - 1))
        h = st.t.ppf(0.975, n - 1) * sd / math.sqrt(n)
        lo, hi = sorted((direction * (m - h), direction * (m + h)))
        return "reproduced" if lo > 0 else "not reproduced" if hi < 0 else "inconclusive"

    with pytest.raises(CheckFailed, match="three seeds agree"):
        check_verdict(interval_only)

    def zero_width(diffs, direction, within_se):  # everything but the floor: identical seeds look certain
        n = len(diffs)
        if n < stats.MIN_SEEDS or not all(direction * x > 0 for x in diffs) and not all(direction * x < 0 for x in diffs):
            return "inconclusive"
        m = sum(diffs) / n
        h = st.t.ppf(0.975, n - 1) * math.sqrt(sum((x - m) ** 2 for x in diffs) / (n - 1)) / math.sqrt(n)
        lo, hi = sorted((direction * (m - h), direction * (m + h)))
        return "reproduced" if lo > 0 else "not reproduced" if hi < 0 else "inconclusive"

    with pytest.raises(CheckFailed, match="identical tiny gains"):
        check_verdict(zero_width)

    def ignores_direction(diffs, direction, within_se):
        return reference_verdict(diffs, +1, within_se)

    with pytest.raises(CheckFailed, match="the paper says it drops"):
        check_verdict(ignores_direction)



def test_every_check_of_every_topic_is_exported_once():
    """checks/__init__.py imports each topic's checks by name (no discovery): a new check_ function must be
    added there, and every exported name exists."""
    import importlib
    import pkgutil

    import supersmall.checks as checks

    written = {name for info in pkgutil.iter_modules(checks.__path__)
               for name in vars(importlib.import_module(f"supersmall.checks.{info.name}")) if name.startswith("check_")}
    exported = [name for name in checks.__all__ if name.startswith("check_")]
    assert len(exported) == len(set(exported)) and set(exported) == written
    assert all(hasattr(checks, name) for name in checks.__all__)
