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
    check_length_penalty,
    check_masked_surrogate,
    check_paired_test,
    check_pass_at_1,
    check_supersmall_reward,
    check_verdict,
    check_wilson_interval,
    run_check,
)
from supersmall.checks.grpo import reference_grpo_step
from supersmall.checks.report import buggy_verdict, reference_verdict


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
                                 loss_type=aggregation)
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
    assert check_verdict(lambda d, k, w: buggy_verdict(d, k, w))  # the written-out rule is the library's

    def t_only(diffs, direction, within_se):  # the seeds' t test alone: no problems' error
        n = len(diffs)
        if n < 3:
            return "inconclusive"
        m = sum(diffs) / n
        sd = math.sqrt(sum((x - m) ** 2 for x in diffs) / (n - 1))
        h = st.t.ppf(0.975, n - 1) * sd / math.sqrt(n)
        lo, hi = sorted((direction * (m - h), direction * (m + h)))
        return "supported" if lo > 0 else "contradicted" if hi < 0 else "inconclusive"

    with pytest.raises(CheckFailed, match="identical"):
        check_verdict(t_only)

    def shrinking(diffs, direction, within_se):  # the problems' error divided by the number of seeds
        return buggy_verdict(diffs, direction, within_se, shared=False)

    with pytest.raises(CheckFailed, match="identical tiny gains"):
        check_verdict(shrinking)

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


# --- targeted hints ------------------------------------------------------------------------------------
def test_a_hint_fires_only_when_the_bug_explains_every_case_so_far():
    def reference(x):
        return abs(x)

    cases = [Case((3,)), Case((0,)), Case((-2,))]
    hints = [(lambda x: x, "forgot the abs"), (lambda x: -x, "negated"), (lambda x: x * x, "squared")]
    with pytest.raises(CheckFailed) as err:
        run_check("abs", lambda x: x, reference, cases, hints=hints, quiet=True)
    assert "hint: forgot the abs" in str(err.value) and "negated" not in str(err.value)  # -3 != 3 at case 1
    assert run_check("abs", abs, reference, cases, hints=hints, quiet=True)  # a correct function: no failure
    with pytest.raises(CheckFailed) as err:  # wrong, but like none of the injected bugs: no hint
        run_check("abs", lambda x: abs(x) + (x < 0), reference, cases, hints=hints, quiet=True)
    assert "hint" not in str(err.value)


def test_a_hint_can_recognise_an_exception():
    def reference(xs):
        return sum(xs) / len(xs) if xs else 0.0

    hints = [(lambda xs: sum(xs) / len(xs), "an empty list divides by zero")]
    with pytest.raises(CheckFailed, match="hint: an empty list divides by zero"):
        run_check("mean", lambda xs: sum(xs) / len(xs), reference, [Case(([1, 2],)), Case(([],))], hints=hints)


def test_alternatives_are_accepted():
    cases = [Case((2.0,))]
    assert run_check("x", lambda x: x + 1e-3, lambda x: x, cases, alternatives=[lambda x: x + 1e-3], quiet=True)
    with pytest.raises(CheckFailed):
        run_check("x", lambda x: x + 1e-2, lambda x: x, cases, alternatives=[lambda x: x + 1e-3], quiet=True)


def _only_hint(err, text):
    """The failure carries exactly one hint, and it is the expected one."""
    hints = [line for line in str(err.value).splitlines() if line.strip().startswith("hint:")]
    assert len(hints) == 1 and text in hints[0], str(err.value)


def _fails_with_hint(check, fn, text):
    with pytest.raises(CheckFailed) as err:
        check(fn)
    _only_hint(err, text)


# rewards
def _first_box_student(text):
    if not text:
        return None
    i = text.find("\\boxed{")
    if i < 0:
        return grading.extract_answer(text)
    depth = 0
    for j in range(i + 6, len(text)):
        depth += (text[j] == "{") - (text[j] == "}")
        if depth == 0:
            return text[i + 7:j].strip() or None
    return None


def _regex_student(text):
    import re

    found = re.findall(r"\\(?:boxed|fbox)\{([^}]*)\}", text or "")
    return found[-1].strip() or None if found else None


@pytest.mark.parametrize("fn, text", [(_first_box_student, "the *first* box"), (_regex_student, "first '}'")])
def test_extract_answer_hints(fn, text):
    _fails_with_hint(check_extract_answer, fn, text)


def test_extract_answer_hint_for_a_blank_box():
    def keeps_blank_box(text):  # strips the answer but forgets that "" is no answer
        import re

        boxes = list(re.finditer(r"\\boxed\{(\s*)\}", text or ""))
        if boxes and "\\boxed" not in text[boxes[-1].end():] and "\\fbox" not in text[boxes[-1].end():]:
            return ""
        return grading.extract_answer(text)

    _fails_with_hint(check_extract_answer, keeps_blank_box, "an empty or whitespace-only box")


def _penalty(by_chars=False, op=">", ceil=False):
    def fn(completions, completion_ids, max_length, threshold=0.95, penalty=-0.1):
        limit = math.ceil(threshold * max_length) if ceil else threshold * max_length
        lengths = [len(t) for t in completions] if by_chars else [len(ids) for ids in completion_ids]
        return [penalty if (n > limit if op == ">" else n >= limit) else 0.0 for n in lengths]
    return fn


@pytest.mark.parametrize("fn, text", [
    (_penalty(by_chars=True, op=">=", ceil=True), "still behaves like the buggy version"),  # notebook 1.2's
    (_penalty(by_chars=True), "looks like characters"),
    (_penalty(op=">="), "looks like >= where eq. 7 has >"),
    (_penalty(op=">=", ceil=True), "looks like >= where eq. 7 has >"),  # ceil then >= is exactly >=
    (_penalty(ceil=True), "rounded up"),
])
def test_length_penalty_hints(fn, text):
    assert check_length_penalty(_penalty())
    _fails_with_hint(check_length_penalty, fn, text)


def _reward(same="grader", penalty=-0.1, unit="tokens"):
    def fn(completions, answer, completion_ids, max_length):
        out = []
        for c, gold, ids in zip(completions, answer, completion_ids):
            pred = grading.extract_answer(rewards.completion_text(c))
            ok = grading.is_equivalent(pred, gold) if same == "grader" else pred == gold
            n = len(rewards.completion_text(c)) if unit == "chars" else len(ids)
            out.append(float(ok) + (penalty if n > 0.95 * max_length else 0.0))
        return out
    return fn


@pytest.mark.parametrize("fn, text", [(_reward(same="string"), "string equality"),
                                      (_reward(penalty=0.0), "eq. 6 alone"),
                                      (_reward(unit="chars"), "reads characters")])
def test_supersmall_reward_hints(fn, text):
    assert check_supersmall_reward(_reward())
    _fails_with_hint(check_supersmall_reward, fn, text)


# advantages
def _numpy_advantages(ddof=1, eps=1e-6, layout="contiguous", guard=True, divide_none=False):
    import numpy as np

    def fn(rewards, group_size, scale):
        r = np.asarray(rewards, dtype=np.float64)
        g = r.reshape(-1, group_size) if layout == "contiguous" else r.reshape(group_size, -1).T
        if layout == "batch":
            g = r.reshape(1, -1)
        c = g - g.mean(axis=1, keepdims=True)
        if scale == "none" and not divide_none:
            out = c
        else:
            sd = g.std(axis=1, ddof=ddof, keepdims=True) if g.shape[1] > 1 else np.zeros_like(c)
            with np.errstate(invalid="ignore", divide="ignore"):
                out = np.where(c == 0, 0.0, c / (sd + eps)) if guard else c / (sd + eps)
        return (out.T if layout == "interleaved" else out).reshape(-1)
    return fn


def test_group_advantages_accepts_the_kits_and_trls_epsilon():
    from supersmall.checks import check_group_advantages

    assert check_group_advantages(_numpy_advantages())
    assert check_group_advantages(_numpy_advantages(eps=1e-4))  # TRL 1.16's std_rewards + 1e-4
    with pytest.raises(CheckFailed):
        check_group_advantages(_numpy_advantages(eps=1e-2))


@pytest.mark.parametrize("kw, text", [({"ddof": 0}, "population std"),
                                      ({"guard": False, "eps": 0.0}, "gives NaN"),
                                      ({"layout": "interleaved"}, "interleaved groups"),
                                      ({"layout": "batch"}, "mean over the whole batch"),
                                      ({"divide_none": True}, "scale='none' divides")])
def test_group_advantages_hints(kw, text):
    from supersmall.checks import check_group_advantages

    _fails_with_hint(check_group_advantages, _numpy_advantages(**kw), text)


# losses
@pytest.mark.parametrize("fn, text", [
    (lambda lp, ref: lp - ref, "that is k1"),
    (lambda lp, ref: (lp - ref) ** 2 / 2, "that is k2"),
    (lambda lp, ref: torch.exp(lp - ref) - (lp - ref) - 1, "upside down"),
    (lambda lp, ref: -(torch.exp(ref - lp) - (ref - lp) - 1), "sign is flipped"),
    (lambda lp, ref: (lp - ref) - (torch.exp(ref - lp) - 1), "lambda = -1"),
])
def test_k3_hints(fn, text):
    from supersmall.checks import check_k3

    assert check_k3(lambda lp, ref: torch.exp(ref - lp) - (ref - lp) - 1)
    _fails_with_hint(check_k3, fn, text)


def _surrogate(mask_it=True, agg="grpo", sign=-1.0, clip=True, use_min=True):
    def fn(logp, old, adv, mask, clip_eps=0.2):
        ratio, a = torch.exp(logp - old), adv[:, None]
        second = torch.clamp(ratio, 1 - clip_eps, 1 + clip_eps) * a if clip else ratio * a
        per_token = sign * (torch.min(ratio * a, second) if use_min else second)
        if not mask_it:
            return per_token.mean()
        if agg == "dapo":
            return (per_token * mask).sum() / mask.sum().clamp(min=1)
        return ((per_token * mask).sum(1) / mask.sum(1).clamp(min=1)).mean()
    return fn


@pytest.mark.parametrize("kw, text", [({"mask_it": False}, "the mask is missing"),
                                      ({"agg": "dapo"}, "one global token mean"),
                                      ({"sign": 1.0}, "sign is flipped"),
                                      ({"clip": False}, "not clipped"),
                                      ({"use_min": False}, "clipped term alone")])
def test_masked_surrogate_hints(kw, text):
    assert check_masked_surrogate(_surrogate())
    _fails_with_hint(check_masked_surrogate, _surrogate(**kw), text)


# curriculum
def test_difficulty_level_hints():
    from supersmall.checks import check_difficulty_level

    assert check_difficulty_level(lambda d, s: math.floor(d + 0.5) if s == "round" else math.floor(d))
    _fails_with_hint(check_difficulty_level, lambda d, s: round(d) if s == "round" else math.floor(d), "rounds half to *even*")


def test_balanced_levels_check():
    from supersmall.checks import check_balanced_levels

    def brute(difficulties, n_levels):
        import itertools

        values = sorted(set(difficulties))
        if len(values) < n_levels:
            raise ValueError("too few")
        counts = [difficulties.count(v) for v in values]
        best = min((max(sum(counts[a:b]) for a, b in zip((0, *c), (*c, len(values)))), c)
                   for c in itertools.combinations(range(1, len(values)), n_levels - 1))
        edges = (0, *best[1], len(values))
        level = {values[i]: lv for lv, (a, b) in enumerate(zip(edges, edges[1:]), 1) for i in range(a, b)}
        return [level[d] for d in difficulties]

    assert check_balanced_levels(brute)

    def quantiles(difficulties, n_levels):
        if len(set(difficulties)) < n_levels:
            raise ValueError("too few")
        order = sorted(difficulties)
        return [min(n_levels, 1 + order.index(d) * n_levels // len(order)) for d in difficulties]

    _fails_with_hint(check_balanced_levels, quantiles, "cuts at the quantiles")

    def reversed_levels(difficulties, n_levels):
        return [n_levels + 1 - lv for lv in brute(difficulties, n_levels)]

    with pytest.raises(CheckFailed, match="a harder problem got a lower level"):
        check_balanced_levels(reversed_levels)


def _shares(cumulative=True, by="problem"):
    def fn(stage_levels, level_sizes):
        out, seen = [], set()
        for levels in stage_levels:
            seen |= set(levels)
            pool = {lv: level_sizes.get(lv, 0) for lv in (seen if cumulative else set(levels)) if level_sizes.get(lv, 0)}
            if not pool:
                raise ValueError("empty")
            out.append({lv: (n / sum(pool.values()) if by == "problem" else 1 / len(pool)) for lv, n in pool.items()})
        return out
    return fn


def test_cumulative_shares_check_and_hints():
    from supersmall.checks import check_cumulative_shares

    assert check_cumulative_shares(_shares())
    _fails_with_hint(check_cumulative_shares, _shares(cumulative=False), "staged schedule")
    _fails_with_hint(check_cumulative_shares, _shares(by="level"), "equal share")


def test_cumulative_shares_reference_is_what_build_schedule_draws():
    from collections import Counter

    from supersmall import curriculum
    from supersmall.checks.curriculum import reference_cumulative_shares

    sizes = {1: 2, 2: 3, 4: 5}  # pools of 5 and 10: 50 draws are whole passes over each
    pool = [{"level": lv, "prompt": f"{lv}-{i}"} for lv, n in sizes.items() for i in range(n)]
    plan = curriculum.build_schedule(pool, "1+2:1,4:1", "cumulative", prompts_per_step=50, seed=0)  # 50 = 10 passes
    for step, expected in enumerate(reference_cumulative_shares([(1, 2), (4,)], sizes)):
        drawn = Counter(r["level"] for r in plan.rows_at(step))
        assert {lv: n / 50 for lv, n in drawn.items()} == pytest.approx(expected)


# grpo
def _gradient(sign=-1.0, ddof=1, masked=True, weights=None, scale=True):
    def fn(rewards, lengths, group_size, T, aggregation="grpo", max_length=None):
        r = torch.tensor(rewards).view(-1, group_size)
        c = r - r.mean(1, keepdim=True)
        if scale:
            sd = r.std(1, keepdim=True, unbiased=bool(ddof)) if group_size > 1 else torch.zeros_like(c)
            c = torch.where(c == 0, torch.zeros_like(c), c / (sd + 1e-6))
        adv, n, B = c.flatten(), torch.tensor(lengths, dtype=torch.float32), len(lengths)
        mask = (torch.arange(T)[None] < n[:, None]).float() if masked else torch.ones(B, T)
        kind = weights or aggregation
        w = {"grpo": 1 / (B * n.clamp(min=1)), "per_seq": 1 / n.clamp(min=1),
             "dapo": torch.full((B,), 1 / max(float(n.sum()), 1.0)),
             "dr_grpo": torch.full((B,), 1 / (B * (max_length or T)))}[kind]
        return sign * adv[:, None] * w[:, None] * mask
    return fn


@pytest.mark.parametrize("kw, text", [({"sign": 1.0}, "sign is flipped"),
                                      ({"ddof": 0}, "population std"),
                                      ({"masked": False}, "padding tokens get gradient"),
                                      ({"weights": "per_seq"}, "not the 1 / B"),
                                      ({"weights": "dapo"}, "dapo's 1 / (tokens in the batch) for 'grpo'"),
                                      ({"weights": "grpo"}, "grpo's 1 / (B * length) for every aggregation"),
                                      ({"scale": False}, "not divided by the group std")])
def test_logp_gradient_check_and_hints(kw, text):
    from supersmall.checks import check_logp_gradient

    assert check_logp_gradient(_gradient())
    _fails_with_hint(check_logp_gradient, _gradient(**kw), text)


@pytest.mark.parametrize("wrong, text", [({"unbiased": False}, "population std"),
                                         ({"penalty": 0.0}, "eq. 6 alone"),
                                         ({"aggregation": "dapo"}, "one global token mean")])
def test_grpo_step_hints(wrong, text):
    _fails_with_hint(check_grpo_step, lambda *a, **k: _grpo_step(*a, **k, **wrong), text)


# evaluation
def _wilson(precedence=False, exact=True, guard=True):
    def fn(k, n, z=1.96):
        if n == 0 and guard:
            return 0.0, 1.0
        p, d = k / n, 1 + z * z / n
        centre = (p + (z * z / 2 * n if precedence else z * z / (2 * n))) / d
        half = z * math.sqrt(p * (1 - p) / n + (z * z / 4 * n * n if precedence else z * z / (4 * n * n))) / d
        low, high = max(0.0, centre - half), min(1.0, centre + half)
        return ((0.0 if k == 0 else low), (1.0 if k == n else high)) if exact else (low, high)
    return fn


@pytest.mark.parametrize("kw, text", [({"precedence": True}, "z * z / 2 * n"),
                                      ({"exact": False}, "a hair off 0 or 1"),
                                      ({"guard": False}, "no trials"),
                                      ({"precedence": True, "exact": False, "guard": False}, "all three bugs")])  # 6.1's
def test_wilson_hints(kw, text):
    assert check_wilson_interval(_wilson())
    _fails_with_hint(check_wilson_interval, _wilson(**kw), text)


def test_paired_test_hints():
    def good(a, b):
        if len(a) != len(b):
            raise ValueError("not aligned")
        a_only = sum(1 for x, y in zip(a, b) if x and not y)
        b_only = sum(1 for x, y in zip(a, b) if y and not x)
        return a_only, b_only, stats.mcnemar_exact(a_only, b_only)

    def uncapped(a, b):
        a_only, b_only, _ = good(a, b)
        n = a_only + b_only
        return a_only, b_only, 2 * float(st.binom.cdf(min(a_only, b_only), n, 0.5)) if n else 1.0

    def one_sided(a, b):
        a_only, b_only, _ = good(a, b)
        n = a_only + b_only
        return a_only, b_only, float(st.binom.cdf(min(a_only, b_only), n, 0.5)) if n else 1.0

    def totals(a, b):
        return sum(a), sum(b), good(a, b)[2]

    _fails_with_hint(check_paired_test, uncapped, "at most 1")
    _fails_with_hint(check_paired_test, one_sided, "one-sided")
    _fails_with_hint(check_paired_test, totals, "discordant")


# report
def _verdict(min_seeds=3, shared=True, problems=True, use_direction=True):
    def fn(diffs, direction, within_se):
        direction = direction if use_direction else 1
        return buggy_verdict(diffs, direction, within_se, min_seeds=min_seeds, shared=shared, problems=problems)
    return fn


@pytest.mark.parametrize("kw, text", [({"min_seeds": 2}, "fewer than 3 seeds"),
                                      ({"shared": False}, "shared by every seed"),
                                      ({"problems": False}, "the problems' error is missing"),
                                      ({"use_direction": False}, "direction is ignored"),
                                      ({"min_seeds": 2, "shared": False}, "fewer than 3 seeds")])
def test_verdict_hints(kw, text):
    assert check_verdict(_verdict())
    _fails_with_hint(check_verdict, _verdict(**kw), text)
