"""Exercise 00's "GRPO from scratch" checks: the solutions pass, and each classic bug is caught with its hint."""

import pytest
import torch

from supersmall import advantages, losses
from supersmall.checks import (
    NOT_IMPLEMENTED,
    CheckFailed,
    check_grpo_loop,
    check_mask_after_eos,
    check_sequence_logps,
)
from supersmall.checks.scratch import EOS_HINTS, LOGPS_HINTS, LOOP_HINTS


# --- exercise 0.2 --------------------------------------------------------------------------------------------
def logps(model, prompt_ids, prompt_mask, completion_ids, completion_mask, temperature=1.0, bug=None):
    """The solution, with one classic bug switched on by name."""
    ids = torch.cat([prompt_ids, completion_ids], dim=1)
    attention = torch.cat([prompt_mask, completion_mask], dim=1)
    position_ids = (attention.cumsum(-1) - 1).clamp(min=0)
    if bug == "no_attention_mask":
        logits = model(input_ids=ids).logits
    else:
        logits = model(input_ids=ids, attention_mask=attention, position_ids=position_ids).logits
    P = prompt_ids.size(1)
    logits = logits[:, P:] if bug == "unshifted" else logits[:, P - 1:-1]
    if bug != "no_temperature":
        logits = logits / temperature
    logprobs = logits.softmax(-1) if bug == "softmax" else logits.log_softmax(-1)
    per_token = logprobs.gather(-1, completion_ids.unsqueeze(-1)).squeeze(-1)
    if bug == "sums":
        return (per_token * completion_mask).sum(-1)
    return per_token.detach() if bug == "no_grad" else per_token


def test_sequence_logps_solution_passes(capsys):
    assert check_sequence_logps(logps)
    assert "passed" in capsys.readouterr().out


def test_sequence_logps_accepts_the_library_function():
    from supersmall import grpo

    assert check_sequence_logps(grpo.sequence_logps)  # returns (logp, entropy): the first is compared


@pytest.mark.parametrize("bug", ["unshifted", "no_attention_mask", "no_temperature", "softmax", "sums", "no_grad"])
def test_sequence_logps_bug_is_caught_with_its_hint(bug):
    with pytest.raises(CheckFailed) as failure:
        check_sequence_logps(lambda *a: logps(*a, bug=bug))
    assert LOGPS_HINTS[bug] in str(failure.value)


def test_unshifted_hint_says_what_the_logit_predicts():
    assert "the logit at position t predicts token t+1" in LOGPS_HINTS["unshifted"]


def test_stub_is_not_implemented_yet(capsys):
    def stub(*args, **kwargs):
        raise NotImplementedError

    assert check_sequence_logps(stub) is False
    assert check_grpo_loop(stub) is False
    assert NOT_IMPLEMENTED in capsys.readouterr().out


# --- exercise 0.3 --------------------------------------------------------------------------------------------
def updates(model, optimizer, prompt_ids, prompt_mask, completion_ids, completion_mask, rewards, group_size,
            num_iterations=1, temperature=1.0, clip_eps=0.2, bug=None):
    """The solution (written apart from the reference), with one classic bug switched on by name."""
    r = rewards if bug == "advantages_attached" else rewards.detach()
    if bug == "population_std":
        g = r.view(-1, group_size)
        adv = ((g - g.mean(1, keepdim=True)) / (g.std(1, unbiased=False, keepdim=True) + 1e-6)).flatten()
    else:
        adv = advantages.group_advantages(r, group_size)
    temp = 1.0 if bug == "no_temperature" else temperature

    def score():
        return logps(model, prompt_ids, prompt_mask, completion_ids, completion_mask, temp)

    old = score() if bug == "old_logp_once_attached" else None
    if old is None:
        with torch.no_grad():
            old = score()
    out = []
    for _ in range(num_iterations):
        logp = score()
        if bug == "old_logp_each_iteration":
            old = logp.detach()
        if bug == "old_logp_attached":
            old = logp
        mask = torch.ones_like(completion_mask) if bug == "no_mask" else completion_mask
        loss, _ = losses.policy_loss(logp, old, adv, mask, clip_eps=clip_eps, loss_type="grpo")
        if bug != "no_zero_grad":
            optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        out.append(loss.item())
    return out


@pytest.mark.slow  # over 20 s (CLI processes / a training loop): the slow tier
def test_grpo_loop_solution_passes(capsys):
    assert check_grpo_loop(updates)
    assert "passed" in capsys.readouterr().out


@pytest.mark.slow
@pytest.mark.parametrize("bug", ["old_logp_attached", "old_logp_each_iteration", "population_std", "no_mask",
                                 "no_zero_grad", "no_temperature"])
def test_grpo_loop_bug_is_caught_with_its_hint(bug):
    with pytest.raises(CheckFailed) as failure:
        check_grpo_loop(lambda *a, **k: updates(*a, **k, bug=bug))
    assert LOOP_HINTS[bug] in str(failure.value)


@pytest.mark.parametrize("bug", ["advantages_attached", "old_logp_once_attached"])
def test_grpo_loop_catches_constants_that_carry_gradient(bug):
    """Advantages from rewards that carry a gradient, or old_logp computed once with gradient: caught in case 1
    (gradient in the rewards) or case 2 (backward through a freed graph), with a hint naming the detach."""
    with pytest.raises(CheckFailed) as failure:
        check_grpo_loop(lambda *a, **k: updates(*a, **k, bug=bug))
    assert ("rewards.detach()" if bug == "advantages_attached" else "torch.no_grad()") in str(failure.value)
    assert "not detached" in str(failure.value)


# --- exercise 0.4: the EOS mask -------------------------------------------------------------------------------
def eos_mask(ids, eos_id, pad_id, bug=None):
    """A solution written apart from the library (cumulative count of EOS), with one classic bug by name."""
    is_eos = ids == eos_id
    seen_before = (is_eos.long().cumsum(1) - is_eos.long()) > 0  # strictly after the first EOS
    keep = ~seen_before
    if bug == "eos_dropped":
        keep = is_eos.long().cumsum(1) == 0
    elif bug == "tail_unmasked":
        keep = ids != pad_id
    elif bug == "no_eos":  # argmax of an all-False row is 0
        first = is_eos.long().argmax(1)
        keep = torch.arange(ids.size(1))[None] <= first[:, None]
    elif bug == "last_eos":
        after_last = is_eos.flip(1).long().cumsum(1).flip(1) == 0
        keep = ~after_last | ~is_eos.any(1, keepdim=True)
    out_ids = ids if bug == "tail_not_padded" else ids.masked_fill(~keep, pad_id)
    return out_ids, keep.long(), ~is_eos.any(1)


def test_mask_after_eos_solution_and_library_pass(capsys):
    from supersmall import grpo

    assert check_mask_after_eos(eos_mask)
    assert check_mask_after_eos(grpo.mask_after_eos)
    assert "passed" in capsys.readouterr().out


@pytest.mark.parametrize("bug", ["eos_dropped", "tail_unmasked", "no_eos", "last_eos", "tail_not_padded"])
def test_mask_after_eos_bug_is_caught_with_its_hint(bug):
    with pytest.raises(CheckFailed) as failure:
        check_mask_after_eos(lambda *a: eos_mask(*a, bug=bug))
    assert EOS_HINTS[bug] in str(failure.value)


def test_mask_after_eos_stub_and_wrong_return():
    def stub(*args):
        raise NotImplementedError

    assert check_mask_after_eos(stub) is False
    with pytest.raises(CheckFailed, match="return a tuple"):
        check_mask_after_eos(lambda ids, eos, pad: eos_mask(ids, eos, pad)[1])
