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
        loss, metrics = policy_loss(logp, old, torch.tensor([1.0, -1.0]), mask, loss_type=agg,
                                    ref_logp=torch.zeros(2, 3), beta=0.1)
        loss.backward()
        assert torch.isfinite(loss), agg
        assert logp.grad[0, 2].item() == 0.0 and torch.equal(logp.grad[1], torch.zeros(3)), agg
        assert all(math.isfinite(v) for v in metrics.values())


def test_metrics_clip_fraction():
    logp = torch.log(torch.tensor([[1.5, 1.0]]))
    _, m = policy_loss(logp, torch.zeros(1, 2), torch.tensor([1.0]), torch.ones(1, 2))
    assert m["clip_fraction"] == pytest.approx(0.5) and m["ratio_mean"] == pytest.approx(1.25)


# --- what each KL estimator's gradient estimates (checks.kl_gradients) --------------------------------
def _toy_policy(shift: float = 1.0, vocab: int = 12, seed: int = 0) -> tuple[torch.Tensor, torch.Tensor]:
    g = torch.Generator().manual_seed(seed)
    ref = torch.randn(vocab, generator=g)
    return ref + shift * torch.randn(vocab, generator=g), ref


def test_exact_divergence_gradients_match_the_hand_derived_forms():
    from supersmall.checks import kl_gradients

    logits, ref_logits = _toy_policy()
    pi, ref = torch.softmax(logits.double(), -1), torch.softmax(ref_logits.double(), -1)
    kl = float((pi * (pi / ref).log()).sum())
    res = kl_gradients(logits, ref_logits, n_samples=10)
    # d KL(pi||ref) / d theta_j = pi_j (log(pi_j / ref_j) - KL);  d KL(ref||pi) / d theta_j = pi_j - ref_j
    assert torch.allclose(res.targets["reverse"], pi * ((pi / ref).log() - kl), atol=1e-12)
    assert torch.allclose(res.targets["forward"], pi - ref, atol=1e-12)
    # the exact expectation over the vocabulary: k1 -> 0, k2 -> reverse KL, k3 -> forward KL (identities)
    assert torch.allclose(res.expected["k1"], torch.zeros_like(pi), atol=1e-12)
    assert torch.allclose(res.expected["k2"], res.targets["reverse"], atol=1e-12)
    assert torch.allclose(res.expected["k3"], res.targets["forward"], atol=1e-12)


def test_per_sample_gradient_of_each_estimator_by_hand():
    from supersmall.checks.kl_gradients import kl_sample_gradients

    logits, ref_logits = _toy_policy(vocab=5)
    pi, ref = torch.softmax(logits.double(), -1), torch.softmax(ref_logits.double(), -1)
    tokens = torch.tensor([0, 3, 3, 4])
    score = torch.eye(5, dtype=torch.float64)[tokens] - pi  # d log pi(y) / d theta
    log_ratio = (pi / ref).log()[tokens].unsqueeze(1)
    want = {"k1": score, "k2": log_ratio * score, "k3": (1 - (-log_ratio).exp()) * score}
    for kind, w in want.items():
        assert torch.allclose(kl_sample_gradients(logits, ref_logits, tokens, kind), w, atol=1e-12), kind


@pytest.mark.parametrize("seed", [0, 1])
def test_sampled_kl_gradients_follow_zero_reverse_and_forward_kl(seed):
    from supersmall.checks import kl_gradients

    res = kl_gradients(*_toy_policy(shift=1.0, seed=seed), n_samples=20_000, seed=seed)
    n_se = 4.5  # every component, 12 of them: a chance miss is ~1e-4 per estimator
    assert res.max_z("k1", "zero") < n_se  # an unbiased value whose expected gradient is zero
    assert res.max_z("k2", "reverse") < n_se  # KL(pi || pi_ref), eq. 2's term
    assert res.max_z("k3", "forward") < n_se  # KL(pi_ref || pi)
    # and the measurement tells them apart: far from the other targets in units of its own SE
    assert res.max_z("k2", "forward") > 3 * n_se and res.max_z("k3", "reverse") > 3 * n_se
    assert res.max_z("k1", "reverse") > 3 * n_se
    assert [res.follows(k) for k in ("k1", "k2", "k3")] == [["zero"], ["reverse"], ["forward"]]
    assert all(torch.all(res.se[k] > 0) for k in ("k1", "k2", "k3"))


# --- off-policy updates and the modern variants (notebook 05, section 6) -------------------------------------
def test_sequence_ratio_is_the_exp_of_the_masked_mean_log_ratio():
    from supersmall.losses import importance_ratio

    logp = torch.tensor([[0.2, 0.4, 9.0], [0.3, -0.3, 0.6]])
    mask = torch.tensor([[1, 1, 0], [1, 1, 1]])  # the padded 9.0 must not count
    s = importance_ratio(logp, torch.zeros(2, 3), mask, level="sequence")
    assert s.shape == (2, 1)
    assert s[:, 0].tolist() == pytest.approx([math.exp(0.3), math.exp(0.2)])
    with pytest.raises(ValueError, match="mask"):
        importance_ratio(logp, logp, level="sequence")
    with pytest.raises(ValueError, match="token, sequence"):
        importance_ratio(logp, logp, mask, level="word")


def test_gspo_clips_the_whole_sequence_with_its_one_ratio():
    # one sequence of 2 tokens, log-ratios 0.1 and 0.3: s = exp(0.2) > 1 + 4e-4; A > 0 -> clipped, no gradient
    logp = torch.tensor([[0.1, 0.3]], requires_grad=True)
    mask = torch.ones(1, 2)
    out = clipped_surrogate(logp, torch.zeros(1, 2), torch.tensor([1.0]), 3e-4, 4e-4, level="sequence", mask=mask)
    assert out.shape == (1, 2) and out[0].tolist() == pytest.approx([-(1 + 4e-4)] * 2)
    out.sum().backward()
    assert logp.grad.abs().max().item() == 0.0
    # A < 0: the unclipped term, and each token's gradient is -A * s / |y| (d s / d logp_t = s / |y|)
    logp.grad = None
    out = clipped_surrogate(logp, torch.zeros(1, 2), torch.tensor([-1.0]), 3e-4, 4e-4, level="sequence", mask=mask)
    out[:, 0].sum().backward()  # one token's copy of the sequence term
    assert logp.grad[0].tolist() == pytest.approx([math.exp(0.2) / 2] * 2)


def test_cispo_weight_is_capped_and_carries_no_gradient():
    from supersmall.losses import cispo_surrogate

    # ratios 0.5, 2 and 8 with A = 1 and eps_max = 5: weights 0.5, 2, 5; the gradient is -w * A on each log pi
    logp = torch.log(torch.tensor([[0.5, 2.0, 8.0]])).requires_grad_(True)
    out = cispo_surrogate(logp, torch.zeros(1, 3), torch.tensor([1.0]), eps_max=5.0)
    assert out[0].tolist() == pytest.approx([-0.5 * math.log(0.5), -2.0 * math.log(2.0), -5.0 * math.log(8.0)])
    out.sum().backward()
    assert logp.grad[0].tolist() == pytest.approx([-0.5, -2.0, -5.0])  # capped, never zeroed (unlike PPO's clip)


def test_policy_loss_cispo_sums_over_tokens_and_reports_its_capped_fraction():
    logp = torch.log(torch.tensor([[2.0, 8.0, 1.0], [8.0, 1.0, 1.0]]))
    mask = torch.tensor([[1, 1, 0], [1, 1, 1]])
    adv = torch.tensor([1.0, -1.0])
    loss, m = policy_loss(logp, torch.zeros(2, 3), adv, mask, loss_type="cispo", clip_eps_high=5.0)
    by_hand = (-(2.0 * math.log(2.0) + 5.0 * math.log(8.0)) + 5.0 * math.log(8.0)) / 5  # dapo: / 5 tokens
    assert loss.item() == pytest.approx(by_hand)
    assert m["clip_fraction"] == pytest.approx(1 / 5)  # ratio > eps_max with A > 0 (TRL's cispo_clip_ratio)


def test_policy_loss_gspo_counts_clipped_sequences():
    logp = torch.tensor([[0.5, 0.5], [0.0, 0.0], [-0.5, -0.5]])
    mask = torch.ones(3, 2)
    adv = torch.tensor([1.0, 1.0, -1.0])  # clipped: the 1st (s > 1 + eps, A > 0) and the 3rd (s < 1 - eps, A < 0)
    loss, m = policy_loss(logp, torch.zeros(3, 2), adv, mask, clip_eps=3e-4, clip_eps_high=4e-4,
                          importance_sampling_level="sequence")
    assert m["clip_fraction"] == pytest.approx(2 / 3)
    assert loss.item() == pytest.approx((-(1 + 4e-4) - 1.0 + (1 - 3e-4)) / 3)


def test_reused_batch_ratio_and_clip_act_on_policy_they_do_not():
    logp = torch.tensor([[0.5, -0.5, 0.0]])
    mask = torch.ones(1, 3)
    _, on = policy_loss(logp, logp, torch.tensor([1.0]), mask)
    _, off = policy_loss(logp, torch.zeros(1, 3), torch.tensor([1.0]), mask)
    assert on["clip_fraction"] == 0.0 and on["ratio_mean"] == pytest.approx(1.0)
    assert off["clip_fraction"] == pytest.approx(1 / 3)  # exp(0.5) > 1.2 with A > 0


def test_a_loss_type_is_a_surrogate_and_an_aggregation():
    """policy_loss reads its surrogate and its aggregation from LOSS_PARTS: no mode flag rebinds one behind the other."""
    from supersmall.losses import LOSS_PARTS, LOSS_TYPES, aggregate, cispo_surrogate, clipped_surrogate

    assert LOSS_TYPES == tuple(LOSS_PARTS) and LOSS_PARTS["cispo"] == ("cispo", "dapo")
    torch.manual_seed(0)
    logp, old = torch.randn(4, 3), torch.randn(4, 3)
    adv, mask = torch.tensor([1.0, -1.0, 0.5, -0.5]), torch.tensor([[1, 1, 1], [1, 1, 0], [1, 0, 0], [1, 1, 1]])
    for loss_type, (surrogate, aggregation) in LOSS_PARTS.items():
        loss, _ = policy_loss(logp, old, adv, mask, loss_type, clip_eps_high=0.3, group_size=2, max_length=5)
        per_token = (cispo_surrogate(logp, old, adv, 0.3, "token", mask) if surrogate == "cispo"
                     else clipped_surrogate(logp, old, adv, 0.2, 0.3, "token", mask))
        assert loss.item() == pytest.approx(aggregate(per_token, mask, aggregation, 2, 5).item()), loss_type
    with pytest.raises(ValueError, match="loss_type must be one of"):
        policy_loss(logp, old, adv, mask, "cisp0")
    with pytest.raises(TypeError):  # one name per idea: the old keyword is gone
        policy_loss(logp, old, adv, mask, aggregation="grpo")


# --- which aggregation's gradient is the policy-gradient estimate (notebook 00, section 8) --------------------
def _estimate_and_loss_gradients(aggregation: str) -> tuple[torch.Tensor, torch.Tensor]:
    """On a per-position softmax policy (logits theta, T x V) and 4 completions of unequal lengths: the estimate
    g = 1/B sum_i A_i grad log pi(y_i) (the sequence's log-prob summed over its tokens), and the gradient of
    ``policy_loss`` at ratio 1 (old_logp = logp.detach())."""
    g = torch.Generator().manual_seed(0)
    T, V = 6, 5
    theta = torch.randn(T, V, generator=g, requires_grad=True)
    lengths = torch.tensor([1, 3, 6, 2])
    ids = torch.randint(0, V, (4, T), generator=g)
    mask = (torch.arange(T)[None] < lengths[:, None]).long()
    adv = torch.tensor([1.0, -0.5, 0.8, -1.3])
    logp = torch.log_softmax(theta, -1).expand(4, T, V).gather(-1, ids.unsqueeze(-1)).squeeze(-1)  # (B, T)
    seq_logp = (logp * mask).sum(-1)  # log pi(y_i | x)
    (estimate,) = torch.autograd.grad((adv * seq_logp).mean(), theta, retain_graph=True)
    loss, _ = policy_loss(logp, logp.detach(), adv, mask, loss_type=aggregation)
    (loss_grad,) = torch.autograd.grad(loss, theta)
    return estimate, loss_grad


def test_sequence_aggregation_gradient_is_minus_the_estimate_and_grpo_is_not():
    estimate, seq_grad = _estimate_and_loss_gradients("sequence")
    assert torch.allclose(seq_grad, -estimate, atol=1e-6)  # loss.backward() gives -g
    _, grpo_grad = _estimate_and_loss_gradients("grpo")
    # grpo divides completion i by |y_i|: not -g, and not a multiple of it either (lengths differ)
    assert not torch.allclose(grpo_grad, -estimate, atol=1e-3)
    scale = float((grpo_grad * -estimate).sum() / (estimate * estimate).sum())
    assert not torch.allclose(grpo_grad, -scale * estimate, atol=1e-3)


# --- the KL of whole sequences (checks.sequence_kl_gradients, notebook 03) -----------------------------------------
def test_token_level_kl_loss_misses_the_future_part_and_off_policy_needs_weights():
    from supersmall.checks import sequence_kl_gradients

    r = sequence_kl_gradients()
    on, off = r.expected["pi"], r.expected["pi_old"]
    assert float(r.future.norm()) > 0.05 * float(r.exact.norm())  # the toy is not degenerate
    # on-policy: the KL in the reward (score function with the summed k1) is the exact sequence-KL gradient
    assert r.relative_error("pi", "KL in the reward") < 1e-10
    assert r.relative_error("pi", "KL in the reward x sequence weight") < 1e-10
    # a token-level k2 loss gets only each token's own term: exact = k2 per token + the future part
    assert torch.allclose(on["k2 per token"] + r.future, r.exact, atol=1e-12)
    assert r.relative_error("pi", "k2 per token") > 0.05 and r.relative_error("pi", "k3 per token") > 0.05
    assert torch.allclose(on["k3 per token x token ratio"], on["k2 per token"], atol=1e-12)  # ratio-weighted k3 = k2
    assert float(on["k1 per token"].abs().max()) < 1e-12
    # off-policy samples: without the importance weight the reward-side estimator is biased, with it exact
    assert r.relative_error("pi_old", "KL in the reward") > 0.05
    assert r.relative_error("pi_old", "KL in the reward x sequence weight") < 1e-10
    assert not torch.allclose(off["k2 per token"], on["k2 per token"], atol=1e-6)
