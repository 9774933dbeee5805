import math

import pytest
import torch

from supersmall.advantages import (
    expected_gradient_factor,
    group_advantages,
    leave_one_out,
    outcome_split,
    toy_gradient_factor,
    zero_std_fraction,
)


def test_equal_rewards_give_exact_zero_never_nan():
    for scale in ("group", "none", "batch", "std"):
        a = group_advantages([1.0, 1.0, 1.0, 1.0, 0.0, 0.0, 0.0, 0.0], 4, scale=scale)
        assert torch.equal(a, torch.zeros(8)), scale
    assert torch.equal(group_advantages([0.5], 1), torch.zeros(1))


def test_one_of_four_success_by_hand():
    # mean 0.25, unbiased std sqrt(((0.75)^2 + 3 * 0.25^2) / 3) = 0.5
    a = group_advantages([1.0, 0.0, 0.0, 0.0], 4, scale="group", eps=0.0)
    assert a.tolist() == pytest.approx([1.5, -0.5, -0.5, -0.5])
    # a rare failure gets |A| = 1.5 too (the difficulty bias the notebook shows)
    b = group_advantages([0.0, 1.0, 1.0, 1.0], 4, scale="group", eps=0.0)
    assert b.tolist() == pytest.approx([-1.5, 0.5, 0.5, 0.5])
    c = group_advantages([1.0, 0.0, 0.0, 0.0], 4, scale="none")
    assert c.tolist() == pytest.approx([0.75, -0.25, -0.25, -0.25])


def test_two_groups_side_by_side_are_independent():
    a = group_advantages([1.0, 0.0, 3.0, 3.0, 2.0, 0.0], 3, scale="none")
    assert a.tolist() == pytest.approx([-1 / 3, -4 / 3, 5 / 3, 4 / 3, 1 / 3, -5 / 3])
    s = group_advantages([1.0, 0.0, 3.0, 3.0, 2.0, 0.0], 3, scale="group", eps=0.0)
    std1 = torch.tensor([1.0, 0.0, 3.0]).std().item()
    std2 = torch.tensor([3.0, 2.0, 0.0]).std().item()
    assert s.tolist() == pytest.approx([-1 / 3 / std1, -4 / 3 / std1, 5 / 3 / std1, 4 / 3 / std2, 1 / 3 / std2, -5 / 3 / std2])


def test_r_and_2r_minus_1_give_identical_std_advantages():
    r = torch.tensor([1.0, 0.0, 0.0, 1.0, 0.0, 0.0, 0.0, 0.0])
    assert torch.allclose(group_advantages(r, 4, eps=0.0), group_advantages(2 * r - 1, 4, eps=0.0))
    # without std scaling they differ by the factor 2, but the sign pattern is the same
    assert torch.allclose(2 * group_advantages(r, 4, scale="none"), group_advantages(2 * r - 1, 4, scale="none"))


def test_batch_scale_matches_trl_semantics():
    r = torch.tensor([1.0, 0.0, 0.0, 0.0, 1.0, 1.0, 0.0, 1.0])
    a = group_advantages(r, 4, scale="batch", eps=0.0)
    centred = torch.tensor([0.75, -0.25, -0.25, -0.25, 0.25, 0.25, -0.75, 0.25])
    assert torch.allclose(a, centred / r.std())


def test_errors():
    with pytest.raises(ValueError, match="not a multiple of group_size=4"):
        group_advantages([1.0, 0.0, 1.0], 4)
    with pytest.raises(ValueError, match="scale must be one of"):
        group_advantages([1.0, 0.0], 2, scale="max")


def test_outcome_split_counts_groups_all_correct_and_all_wrong():
    correct = [1, 1, 1,  0, 0, 0,  1, 0, 1,  0, 0, 0]  # G = 3: solved, failed, mixed, failed
    assert outcome_split(correct, 3) == {"frac_groups_all_correct": 0.25, "frac_groups_all_wrong": 0.5}
    assert outcome_split([True, False], 1) == {"frac_groups_all_correct": 0.5, "frac_groups_all_wrong": 0.5}
    # eq. 6 alone: the split adds up to the no-signal share; eq. 7 (-0.1 for a long one) can break an all-correct
    # group's tie, so then the split is only at least the no-signal share
    split = outcome_split(correct, 3)
    assert sum(split.values()) == zero_std_fraction(correct, 3)
    with_eq7 = [1, 0.9, 1,  0, 0, 0,  1, 0, 1,  0, -0.1, 0]
    assert zero_std_fraction(with_eq7, 3) == 0.25 < sum(split.values())


def test_zero_std_fraction():
    assert zero_std_fraction([1, 1, 1, 1, 0, 0], 3) == pytest.approx(0.5)
    assert not math.isnan(zero_std_fraction([0, 0], 2))


def test_leave_one_out_by_hand():
    from supersmall.advantages import leave_one_out

    # group 1: others of r_1 = (0 + 0 + 0) / 3 -> 1; of r_2 = (1 + 0 + 0) / 3 -> -1/3
    a = leave_one_out([1.0, 0.0, 0.0, 0.0, 2.0, 4.0, 6.0, 8.0], 4)
    assert a.tolist() == pytest.approx([1.0, -1 / 3, -1 / 3, -1 / 3, 2 - 6, 4 - 16 / 3, 6 - 14 / 3, 8 - 4])
    assert torch.equal(leave_one_out([0.5, 0.5, 0.5], 3), torch.zeros(3))  # equal rewards: no signal


def test_group_mean_is_leave_one_out_shrunk_by_g_minus_1_over_g():
    """r_i - mean_G r = (G - 1) / G * (r_i - mean_{-i} r), on random rewards and group sizes."""
    from supersmall.advantages import leave_one_out

    g = torch.Generator().manual_seed(0)
    for G in (2, 3, 4, 8, 16):
        r = torch.randn(5 * G, generator=g, dtype=torch.float64).float()
        centred = group_advantages(r, G, scale="none")
        assert torch.allclose(centred, (G - 1) / G * leave_one_out(r, G), atol=1e-5)


def test_leave_one_out_errors():
    from supersmall.advantages import leave_one_out

    with pytest.raises(ValueError, match="group_size >= 2"):
        leave_one_out([1.0, 0.0], 1)
    with pytest.raises(ValueError, match="not a multiple of group_size=4"):
        leave_one_out([1.0, 0.0, 1.0], 4)


# --- the expected gradient of each estimator (notebook 00, section 8) ------------------------------------------
def _brute_force_factor(p: float, G: int, scale: str) -> float:
    """c = E[A_1 | r_1 = 1] - E[A_1 | r_1 = 0], by enumerating every 0/1 reward vector of the group."""
    import itertools

    cond = {0: 0.0, 1: 0.0}
    for rewards in itertools.product((0.0, 1.0), repeat=G):
        prob = math.prod(p if r else 1 - p for r in rewards[1:])  # the others' probability, given r_1
        cond[int(rewards[0])] += prob * float(group_advantages(list(rewards), G, scale=scale)[0])
    return cond[1] - cond[0]


@pytest.mark.parametrize("G", [2, 4, 8])
@pytest.mark.parametrize("p", [0.05, 0.5, 0.957])
def test_expected_gradient_factor_equals_brute_force_enumeration(G, p):
    assert expected_gradient_factor(p, G, "none") == pytest.approx((G - 1) / G)
    assert expected_gradient_factor(p, G, "group") == pytest.approx(_brute_force_factor(p, G, "group"), rel=1e-5)
    assert expected_gradient_factor(p, G, "group") == pytest.approx(expected_gradient_factor(1 - p, G, "group"))


def test_std_scaling_factor_depends_on_the_success_rate():
    factors = [expected_gradient_factor(p, 8, "group") for p in (0.5, 0.8, 0.957)]
    assert factors[0] < factors[1] < factors[2]  # rarer disagreement -> smaller std -> larger weight
    with pytest.raises(ValueError):
        expected_gradient_factor(1.5, 8)


@pytest.mark.parametrize("scale", ["none", "group"])
def test_toy_monte_carlo_matches_the_exact_factor_within_3_se(scale):
    """The notebook's Monte Carlo rows (00, section 8): the mean gradient, projected on the exact one, is the
    derived factor within 3 standard errors, for the centred reward and for the std-scaled one."""
    g = torch.Generator().manual_seed(0)
    G, K = 8, 5
    theta = torch.randn(K, generator=g)
    reward_of = torch.tensor([1.0, 0.0, 1.0, 0.0, 1.0])
    pi = torch.softmax(theta, 0)
    p = float(pi @ reward_of)
    mc = toy_gradient_factor(pi, reward_of, G, 40_000, lambda r: group_advantages(r, G, scale=scale), g)
    exact = expected_gradient_factor(p, G, scale)
    assert abs(mc["factor"] - exact) < 3 * mc["se"], (mc["factor"], mc["se"], exact)
    loo = toy_gradient_factor(pi, reward_of, G, 40_000, lambda r: leave_one_out(r, G), g)
    assert abs(loo["factor"] - 1.0) < 3 * loo["se"]


def test_toy_monte_carlo_detects_a_wrong_factor():
    """The 3-SE test can fail: the std-scaled estimator is far from the unscaled factor (G-1)/G."""
    g = torch.Generator().manual_seed(1)
    G = 8
    pi = torch.softmax(torch.tensor([0.0, 1.0, -1.0, 0.5]), 0)
    reward_of = torch.tensor([1.0, 0.0, 1.0, 0.0])
    mc = toy_gradient_factor(pi, reward_of, G, 20_000, lambda r: group_advantages(r, G, scale="group"), g)
    assert abs(mc["factor"] - (G - 1) / G) > 3 * mc["se"]
