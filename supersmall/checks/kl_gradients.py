"""What each KL estimator teaches as a *loss* (notebook 03): its expected gradient, measured on a toy policy, and
on 2-token sequences, where a token-level loss misses part of the sequence KL's gradient (:func:`sequence_kl_gradients`).

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


# --- sequences: what a token-level KL loss misses, and what off-policy samples need ------------------------------
SEQUENCE_ESTIMATORS = ("k1 per token", "k2 per token", "k3 per token", "k3 per token x token ratio",
                       "KL in the reward", "KL in the reward x sequence weight")


class SequenceKLGradients:
    """Exact expected gradients of KL estimators on a 2-token policy, beside the exact gradient of the sequence KL.

    ``expected[sampler][name]``: the expected gradient (all parameters, flattened) of estimator ``name`` when the
    sequences are drawn from ``sampler`` ("pi": on-policy; "pi_old": a nearby policy that sampled the batch);
    ``exact``: the gradient of KL(pi || pi_ref) over whole sequences; ``future``: the part a token-level loss misses,
    E_{y1}[KL(pi(.|y1) || pi_ref(.|y1)) grad log pi(y1)] (the first token's effect on the second token's KL).
    """

    def __init__(self, expected: dict[str, dict[str, torch.Tensor]], exact: torch.Tensor, future: torch.Tensor,
                 sequence_kl: float) -> None:
        self.expected, self.exact, self.future, self.sequence_kl = expected, exact, future, sequence_kl

    def relative_error(self, sampler: str, name: str) -> float:
        """|E[grad estimator] - grad KL_seq| / |grad KL_seq|: 0 when the estimator is right."""
        return float((self.expected[sampler][name] - self.exact).norm() / self.exact.norm())

    def rows(self) -> list[dict[str, object]]:
        """One row per (sampler, estimator): relative error and cosine with the exact sequence-KL gradient."""
        out = []
        for sampler, grads in self.expected.items():
            for name, g in grads.items():
                cos = float(g @ self.exact / (g.norm() * self.exact.norm())) if float(g.norm()) > 1e-12 else float("nan")
                out.append({"samples from": sampler, "estimator": name,
                            "relative error": self.relative_error(sampler, name), "cosine": cos})
        return out


def sequence_kl_gradients(vocab: int = 3, drift: float = 1.0, off_policy: float = 0.5,
                          seed: int = 0) -> SequenceKLGradients:
    """What a per-token KL estimator's gradient follows on sequences of 2 tokens, computed exactly (no sampling).

    The policy: ``pi(y1) = softmax(a)``, ``pi(y2 | y1) = softmax(b[y1])`` (parameters a (V,), b (V, V)); the
    reference and the sampling policy ``pi_old`` are the same family with other parameters (``drift`` and
    ``off_policy`` scale the random offsets). Every one of the V^2 sequences is enumerated, so an expectation
    ``E_{y ~ mu}[grad f(y)]`` is ``grad sum_y mu(y) f(y)`` with ``mu`` held constant: exact, no Monte Carlo.
    With ``lr_t = log pi(y_t|.) - log pi_ref(y_t|.)`` and ``sg`` the stop-gradient:

        k1 / k2 / k3 per token     sum_t k(lr_t), differentiated with the samples fixed (a token-level KL loss)
        k3 per token x token ratio sum_t rho_t k3_t, rho_t = pi(y_t|.) / sg(mu(y_t|.)) (TRL's KL weighted by its ratio)
        KL in the reward           sg(sum_t lr_t) * log pi(y): the summed k1 as a reward term, score-function gradient
        ... x sequence weight      w(y) sum_t lr_t, w = pi(y) / sg(mu(y)): importance-weighted sequence KL

    The exact target is the gradient of the sequence KL, ``sum_y pi(y) log(pi(y) / pi_ref(y))`` (Tang & Munos 2025,
    "On a few pitfalls in KL divergence gradient estimation for RL": a token-level loss gives only part of it,
    and samples from another policy need importance weights).
    """
    g = torch.Generator().manual_seed(seed)
    V = vocab
    ref_a, ref_b = torch.randn(V, generator=g, dtype=torch.float64), torch.randn(V, V, generator=g, dtype=torch.float64)
    a0 = ref_a + drift * torch.randn(V, generator=g, dtype=torch.float64)
    b0 = ref_b + drift * torch.randn(V, V, generator=g, dtype=torch.float64)
    old_a = a0 + off_policy * torch.randn(V, generator=g, dtype=torch.float64)
    old_b = b0 + off_policy * torch.randn(V, V, generator=g, dtype=torch.float64)
    y1, y2 = torch.arange(V).repeat_interleave(V), torch.arange(V).repeat(V)  # all V^2 sequences

    def token_logps(a: torch.Tensor, b: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        return torch.log_softmax(a, -1)[y1], torch.log_softmax(b, -1)[y1, y2]

    ref1, ref2 = token_logps(ref_a, ref_b)
    samplers = {"pi": token_logps(a0, b0), "pi_old": token_logps(old_a, old_b)}

    def grad(fn) -> torch.Tensor:
        a, b = a0.clone().requires_grad_(), b0.clone().requires_grad_()
        lp1, lp2 = token_logps(a, b)
        ga, gb = torch.autograd.grad(fn(lp1, lp2), (a, b), allow_unused=True)
        return torch.cat([(ga if ga is not None else torch.zeros_like(a)).flatten(),
                          (gb if gb is not None else torch.zeros_like(b)).flatten()])

    expected: dict[str, dict[str, torch.Tensor]] = {}
    for sampler, (m1, m2) in samplers.items():
        mu = (m1 + m2).exp()  # the sampling probability of each sequence, a constant

        def estimators(lp1, lp2, m1=m1, m2=m2):
            lr1, lr2 = lp1 - ref1, lp2 - ref2
            w = (lp1 + lp2 - m1 - m2).exp()  # pi(y) / mu(y), with gradient through pi
            return {
                "k1 per token": kl_estimate(lp1, ref1, "k1") + kl_estimate(lp2, ref2, "k1"),
                "k2 per token": kl_estimate(lp1, ref1, "k2") + kl_estimate(lp2, ref2, "k2"),
                "k3 per token": kl_estimate(lp1, ref1, "k3") + kl_estimate(lp2, ref2, "k3"),
                "k3 per token x token ratio": ((lp1 - m1).exp() * kl_estimate(lp1, ref1, "k3")
                                               + (lp2 - m2).exp() * kl_estimate(lp2, ref2, "k3")),
                "KL in the reward": (lr1 + lr2).detach() * (lp1 + lp2),
                "KL in the reward x sequence weight": w * (lr1 + lr2),
            }

        expected[sampler] = {name: grad(lambda lp1, lp2, name=name, mu=mu: (mu * estimators(lp1, lp2)[name]).sum())
                             for name in SEQUENCE_ESTIMATORS}

    def kl_seq(lp1, lp2):
        return ((lp1 + lp2).exp() * (lp1 + lp2 - ref1 - ref2)).sum()

    def future(lp1, lp2):
        p = (lp1 + lp2).exp().detach()  # pi(y1, y2)
        return (p * (lp2 - ref2).detach() * lp1).sum()  # sum_y pi(y) lr_2(y) grad log pi(y1)

    with torch.no_grad():
        value = float(kl_seq(*token_logps(a0, b0)))
    return SequenceKLGradients(expected, grad(kl_seq), grad(future), value)
