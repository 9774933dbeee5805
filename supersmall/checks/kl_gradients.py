"""What each KL estimator teaches as a *loss* (notebook 03): its expected gradient, measured on a toy policy.

Course material beside the checks: :mod:`supersmall.losses` keeps the objective (:func:`~supersmall.losses.kl_estimate`);
this module measures what autograd does with it.
"""

from __future__ import annotations

import torch

from supersmall.losses import KL_KINDS, kl_estimate

KL_GRADIENT_TARGETS = ("zero", "reverse", "forward")


def kl_sample_gradients(logits: torch.Tensor, ref_logits: torch.Tensor, tokens: torch.Tensor,
                        kind: str) -> torch.Tensor:
    """Per-sample gradients d k(y) / d logits of one KL estimator (:func:`kl_estimate`), shape (N, V).

    ``pi = softmax(logits)``, ``pi_ref = softmax(ref_logits)``; ``tokens`` (N,) are samples y held fixed,
    as in training: the sampling itself carries no gradient. Autograd through ``kl_estimate`` itself,
    so this measures the kit's implementation, not a formula typed next to it.
    """
    theta = logits.detach().to(torch.float64).expand(tokens.numel(), -1).clone().requires_grad_()
    logp = torch.log_softmax(theta, -1).gather(1, tokens.view(-1, 1)).squeeze(1)
    ref_logp = torch.log_softmax(ref_logits.detach().to(torch.float64), -1)[tokens]
    kl_estimate(logp, ref_logp, kind).sum().backward()  # row n only depends on theta[n]
    return theta.grad


class KLGradients:
    """Expected gradients of k1 / k2 / k3 (Monte Carlo mean and standard error, and the exact expectation)
    beside the exact gradients of KL(pi || pi_ref) ("reverse", eq. 2's term) and KL(pi_ref || pi) ("forward")."""

    def __init__(self, mean: dict[str, torch.Tensor], se: dict[str, torch.Tensor], expected: dict[str, torch.Tensor],
                 reverse: torch.Tensor, forward: torch.Tensor, n_samples: int) -> None:
        self.mean, self.se, self.expected, self.n_samples = mean, se, expected, n_samples
        self.targets = {"zero": torch.zeros_like(reverse), "reverse": reverse, "forward": forward}

    def max_z(self, kind: str, target: str) -> float:
        """The largest |mean - target| / SE over the logits: how many standard errors the Monte Carlo
        gradient of ``kind`` sits from ``target`` (one of ``KL_GRADIENT_TARGETS``) at its worst component."""
        return float(((self.mean[kind] - self.targets[target]).abs() / self.se[kind].clamp(min=1e-12)).max())

    def follows(self, kind: str, n_se: float = 4.0) -> list[str]:
        """The targets the measured mean gradient of ``kind`` matches within ``n_se`` SE at every component."""
        return [t for t in KL_GRADIENT_TARGETS if self.max_z(kind, t) < n_se]


def kl_gradients(logits: torch.Tensor, ref_logits: torch.Tensor, n_samples: int = 20_000,
                 seed: int = 0) -> KLGradients:
    """What each KL estimator teaches as a *loss*: its expected gradient under samples of pi, measured.

    Eq. 2 subtracts beta * KL(pi || pi_ref); in training the KL is an estimator on sampled tokens
    (Schulman, "Approximating KL divergence": k1, k2, k3, :func:`kl_estimate`) and autograd differentiates
    the estimator with the samples held fixed. With grad log pi(y) the score:

        E[grad k1] = E[grad log pi] = 0                                       (an unbiased value, no gradient)
        E[grad k2] = E[(log pi - log pi_ref) grad log pi] = grad KL(pi || pi_ref)       ("reverse", eq. 2)
        E[grad k3] = E[(1 - pi_ref/pi) grad log pi]       = grad KL(pi_ref || pi)       ("forward")

    ``logits`` / ``ref_logits`` (V,) define a toy categorical policy and reference. ``n_samples`` tokens
    are drawn from pi (seeded; the same samples for all three estimators); the mean per-sample gradient and
    its standard error (sd / sqrt(N)) per logit are returned beside the exact expectation (a sum over the
    vocabulary) and the exact gradients of both divergences (autograd on their closed forms).
    """
    logits, ref_logits = logits.detach().to(torch.float64), ref_logits.detach().to(torch.float64)
    probs = torch.softmax(logits, -1)
    gen = torch.Generator().manual_seed(seed)
    tokens = torch.multinomial(probs, n_samples, replacement=True, generator=gen)
    vocab = torch.arange(logits.numel())
    mean, se, expected = {}, {}, {}
    for kind in KL_KINDS:
        g = kl_sample_gradients(logits, ref_logits, tokens, kind)
        mean[kind], se[kind] = g.mean(0), g.std(0) / n_samples ** 0.5
        expected[kind] = (probs.unsqueeze(1) * kl_sample_gradients(logits, ref_logits, vocab, kind)).sum(0)

    def exact(direction: str) -> torch.Tensor:
        theta = logits.clone().requires_grad_()
        logp, ref = torch.log_softmax(theta, -1), torch.log_softmax(ref_logits, -1)
        kl = (logp.exp() * (logp - ref)).sum() if direction == "reverse" else (ref.exp() * (ref - logp)).sum()
        (grad,) = torch.autograd.grad(kl, theta)
        return grad

    return KLGradients(mean, se, expected, exact("reverse"), exact("forward"), n_samples)
