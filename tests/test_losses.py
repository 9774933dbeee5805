import math

import pytest
import torch

from supersmall.losses import (
    aggregate,
    clipped_surrogate,
    kl_estimate,
    kl_in_reward,
    policy_loss,
    token_weights,
)


def _two_seqs():
    # lengths 4 and 7, T = 7; per-token values 1 on the first, 2 on the second
    mask = torch.tensor([[1.0] * 4 + [0.0] * 3, [1.0] * 7])
    per_token = torch.tensor([[1.0] * 7, [2.0] * 7])
    return per_token, mask


@pytest.mark.parametrize("aggregation,expected", [
    ("grpo", (1.0 + 2.0) / 2),                 # each sequence's token mean, then the mean
    ("dapo", (4 * 1.0 + 7 * 2.0) / 11),        # global token mean
    ("bnpo", (4 * 1.0 + 7 * 2.0) / 11),
    ("dr_grpo", (4 * 1.0 + 7 * 2.0) / (2 * 7)),  # sum / (B * max length)
    ("sequence", (4 * 1.0 + 7 * 2.0) / 2),     # eq. 5 as printed: summed per sequence, mean over sequences
])
def test_each_aggregation_by_hand(aggregation, expected):
    per_token, mask = _two_seqs()
    assert aggregate(per_token, mask, aggregation).item() == pytest.approx(expected)


def test_dr_grpo_uses_the_given_max_length():
    per_token, mask = _two_seqs()
    assert aggregate(per_token, mask, "dr_grpo", max_length=10).item() == pytest.approx(18 / 20)


def test_group_token_mean_differs_from_global_token_mean():
    # two groups of two: lengths (4, 7) with values (1, 2) and (2, 2) with values (3, 3)
    mask = torch.tensor([[1.0] * 4 + [0.0] * 3, [1.0] * 7, [1.0] * 2 + [0.0] * 5, [1.0] * 2 + [0.0] * 5])
    per_token = torch.tensor([[1.0] * 7, [2.0] * 7, [3.0] * 7, [3.0] * 7])
    g = aggregate(per_token, mask, "group_token_mean", group_size=2).item()
    assert g == pytest.approx(((4 + 14) / 11 + 12 / 4) / 2)
    assert aggregate(per_token, mask, "dapo").item() == pytest.approx((4 + 14 + 12) / 15)
    with pytest.raises(ValueError, match="group_size"):
        aggregate(per_token, mask, "group_token_mean")


def test_token_weights_long_vs_short():
    w = token_weights([4, 7], "grpo")
    assert w[0, 0].item() == pytest.approx(1 / 8) and w[1, 0].item() == pytest.approx(1 / 14)
    assert w[0, 5].item() == 0.0  # padding
    w = token_weights([4, 7], "dapo")
    assert w[0, 0].item() == pytest.approx(1 / 11) == w[1, 0].item()


@pytest.mark.parametrize("ratio,adv,loss,grad_flows", [
    (1.5, 1.0, -1.2, False),   # above 1 + eps with A > 0: clipped, no gradient
    (1.5, -1.0, 1.5, True),    # above with A < 0: the unclipped (pessimistic) term, gradient flows
    (0.5, 1.0, -0.5, True),    # below with A > 0: unclipped, gradient flows
    (0.5, -1.0, 0.8, False),   # below 1 - eps with A < 0: clipped, no gradient
])
def test_clip(ratio, adv, loss, grad_flows):
    logp = torch.tensor([[math.log(ratio)]], requires_grad=True)
    old = torch.zeros(1, 1)
    out = clipped_surrogate(logp, old, torch.tensor([adv]), clip_eps=0.2)
    assert out.item() == pytest.approx(loss)
    out.sum().backward()
    assert (logp.grad.abs().item() > 0) == grad_flows
    if grad_flows:
        assert logp.grad.item() == pytest.approx(-adv * ratio)  # d(-ratio*A)/dlogp = -A * ratio


def test_asymmetric_upper_clip():
    logp = torch.tensor([[math.log(1.25)]])
    out = clipped_surrogate(logp, torch.zeros(1, 1), torch.tensor([1.0]), clip_eps=0.2, clip_eps_high=0.28)
    assert out.item() == pytest.approx(-1.25)  # inside the wider upper bound


def test_kl_estimators_at_known_points():
    logp, ref = torch.tensor([math.log(0.5)]), torch.tensor([math.log(0.25)])
    assert kl_estimate(logp, ref, "k1").item() == pytest.approx(math.log(2))
    assert kl_estimate(logp, ref, "k2").item() == pytest.approx(math.log(2) ** 2 / 2)
    assert kl_estimate(logp, ref, "k3").item() == pytest.approx(0.5 + math.log(2) - 1)
    same = torch.tensor([-1.3])
    for kind in ("k1", "k2", "k3"):
        assert kl_estimate(same, same, kind).item() == 0.0
    with pytest.raises(ValueError, match="kind must be one of"):
        kl_estimate(logp, ref, "k4")


def test_k3_gradient():
    logp = torch.tensor([math.log(0.5)], requires_grad=True)
    kl_estimate(logp, torch.tensor([math.log(0.25)]), "k3").backward()
    assert logp.grad.item() == pytest.approx(1 - 0.5)  # 1 - exp(ref - logp)


def test_kl_in_reward():
    out = kl_in_reward(torch.tensor([1.0, 0.0]), torch.tensor([2.0, -1.0]), beta=0.1)
    assert out.tolist() == pytest.approx([0.8, 0.1])


def test_kl_as_a_loss_term():
    logp = torch.full((1, 2), math.log(0.5), requires_grad=True)
    ref = torch.full((1, 2), math.log(0.25))
    mask = torch.ones(1, 2)
    base, _ = policy_loss(logp, logp.detach(), torch.tensor([1.0]), mask)
    with_kl, metrics = policy_loss(logp, logp.detach(), torch.tensor([1.0]), mask, ref_logp=ref, beta=0.04)
    k3 = 0.5 + math.log(2) - 1
    assert (with_kl - base).item() == pytest.approx(0.04 * k3)
    assert metrics["kl"] == pytest.approx(k3)
    assert policy_loss(logp, logp.detach(), torch.tensor([1.0]), mask, ref_logp=ref, beta=0.0)[0].item() == base.item()


def test_padding_gets_exactly_zero_gradient_and_masked_rows_no_nan():
    logp = torch.tensor([[-1.0, -2.0, float("-inf")], [float("nan"), float("nan"), float("nan")]], requires_grad=True)
    old = logp.detach().clone()
    mask = torch.tensor([[1, 1, 0], [0, 0, 0]])
    for agg in ("grpo", "dapo", "dr_grpo", "sequence"):
        logp.grad = None
        loss, metrics = policy_loss(logp, old, torch.tensor([1.0, -1.0]), mask, aggregation=agg,
                                    ref_logp=torch.zeros(2, 3), beta=0.1)
        loss.backward()
        assert torch.isfinite(loss), agg
        assert logp.grad[0, 2].item() == 0.0 and torch.equal(logp.grad[1], torch.zeros(3)), agg
        assert all(math.isfinite(v) for v in metrics.values())


def test_metrics_clip_fraction():
    logp = torch.log(torch.tensor([[1.5, 1.0]]))
    _, m = policy_loss(logp, torch.zeros(1, 2), torch.tensor([1.0]), torch.ones(1, 2))
    assert m["clip_fraction"] == pytest.approx(0.5) and m["ratio_mean"] == pytest.approx(1.25)
