"""Checks for exercise 00's "GRPO from scratch": per-token log-probs, a few updates on one batch, the EOS mask.

Both run the student's code on a small randomly initialised Qwen2 model (a few seconds on a CPU) and
compare it with the library (:func:`supersmall.grpo.sequence_logps`, :func:`supersmall.advantages.group_advantages`,
:func:`supersmall.losses.policy_loss`). On a mismatch the check also recomputes the reference with each
classic bug injected (logits not shifted, temperature forgotten, a population std, ...): when the student's
answer equals one of those, the failure names the bug and says how to fix it. The injected answers are computed
only after a mismatch, so a correct answer costs two runs per case.

Position ids that ignore left padding (0, 1, 2, ... over the pad tokens) are the one classic bug no check can see
on Qwen2: rotary embeddings depend only on the *difference* of two positions, and a left-padded row shifts all of
its positions by the same amount, so the log-probs agree to float precision. They still matter for models with
absolute positions, which is why :func:`supersmall.grpo.sequence_logps` derives them from the attention mask.
"""

from __future__ import annotations

import copy
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import torch

from supersmall import advantages, grpo, losses
from supersmall.checks.core import Case, CheckFailed, close, run_check

VOCAB = 40  # the check model's vocabulary; ids 0 = padding, 1 = EOS


def small_model(seed: int = 0):
    """A small random-init ``Qwen2ForCausalLM`` (2 layers, width 32, rotary positions) for the checks."""
    from transformers import Qwen2Config, Qwen2ForCausalLM

    torch.manual_seed(seed)
    config = Qwen2Config(vocab_size=VOCAB, hidden_size=32, intermediate_size=64, num_hidden_layers=2,
                         num_attention_heads=4, num_key_value_heads=2, max_position_embeddings=64,
                         pad_token_id=0, eos_token_id=1, bos_token_id=1)
    return Qwen2ForCausalLM(config).eval()


def make_batch(seed: int, prompts: int = 2, group_size: int = 2, left_padding: bool = True,
               completion_padding: bool = True) -> dict[str, torch.Tensor]:
    """A batch as GRPO scores it: left-padded prompts (each repeated ``group_size`` times), right-padded completions."""
    g = torch.Generator().manual_seed(seed)
    B, P, T = prompts * group_size, 6, 7
    plen = torch.randint(2, P + 1, (prompts,), generator=g) if left_padding else torch.full((prompts,), P)
    plen = plen.repeat_interleave(group_size)
    if left_padding:
        plen[0] = 2  # at least one prompt is padded
    prompt_mask = (torch.arange(P)[None] >= (P - plen)[:, None]).long()
    prompt_ids = torch.randint(2, VOCAB, (B, P), generator=g).masked_fill(prompt_mask == 0, 0)
    clen = torch.randint(2, T + 1, (B,), generator=g) if completion_padding else torch.full((B,), T)
    completion_mask = (torch.arange(T)[None] < clen[:, None]).long()
    completion_ids = torch.randint(2, VOCAB, (B, T), generator=g).masked_fill(completion_mask == 0, 0)
    return {"prompt_ids": prompt_ids, "prompt_mask": prompt_mask, "completion_ids": completion_ids,
            "completion_mask": completion_mask}


@dataclass
class _Expected:
    """The reference's answer, and what each classic bug would have produced instead (for the hint)."""

    value: Any
    mask: torch.Tensor | None = None
    bugs: Callable[[], dict[str, Any]] = dict  # computed only when the student's answer differs


    def __repr__(self) -> str:
        return repr(self.value)


# --- exercise 0.2: per-token log-probs ---------------------------------------------------------------------
LOGPS_HINTS = {
    "unshifted": "looks like the logits are not shifted: the logit at position t predicts token t+1, so the "
                 "completion's tokens are predicted by logits[:, P-1:-1] (P = prompt width), not logits[:, P:]",
    "no_attention_mask": "looks like the padding is not masked: pass attention_mask = cat(prompt_mask, "
                         "completion_mask), or the left-padded prompts' tokens attend to the padding (and give "
                         "position_ids = (attention_mask.cumsum(-1) - 1).clamp(min=0), as generate did)",
    "no_temperature": "looks like the temperature is forgotten: divide the logits by it before the log_softmax "
                      "(the completions were sampled at that temperature)",
    "softmax": "looks like softmax instead of log_softmax: these are probabilities, GRPO needs log-probabilities",
    "sums": "looks like one sum per sequence: return the per-token log-probs, shape (B, T), the loss masks and "
            "averages them itself",
    "no_grad": "the log-probs carry no gradient: do not use torch.no_grad() or .detach(), the loss "
               "differentiates through them",
}


def _logps(model, b: dict, temperature: float, bug: str | None = None) -> torch.Tensor:
    """:func:`supersmall.grpo.sequence_logps` with one classic bug injected (``bug=None``: the library's)."""
    if bug is None:
        return grpo.sequence_logps(model, b["prompt_ids"], b["prompt_mask"], b["completion_ids"],
                                   b["completion_mask"], temperature)[0]
    ids = torch.cat([b["prompt_ids"], b["completion_ids"]], 1)
    attention = torch.cat([b["prompt_mask"], b["completion_mask"]], 1)
    kwargs: dict[str, Any] = {"attention_mask": attention, "position_ids": (attention.cumsum(-1) - 1).clamp(min=0)}
    if bug == "no_attention_mask":
        kwargs = {}
    logits = model(input_ids=ids, **kwargs).logits
    P = b["prompt_ids"].size(1)
    logits = logits[:, P:] if bug == "unshifted" else logits[:, P - 1:-1]  # unshifted: logit t scores token t
    logits = logits if bug == "no_temperature" else logits / temperature
    logprobs = torch.softmax(logits, -1) if bug == "softmax" else torch.log_softmax(logits, -1)
    per_token = logprobs.gather(-1, b["completion_ids"].unsqueeze(-1)).squeeze(-1)
    if bug == "sums":
        return (per_token * b["completion_mask"]).sum(-1)
    return per_token


def _masked_close(expected: torch.Tensor, got: Any, mask: torch.Tensor) -> bool:
    """Equal on the completions' real tokens (padding positions are not compared: the loss masks them)."""
    if not isinstance(got, torch.Tensor) or got.shape != expected.shape:
        return False
    m = mask.bool()
    return close(expected[m].detach(), got[m].detach().to(expected.dtype))


def _match_bug(expected: _Expected, got: Any, hints: dict[str, str], same: Callable[[Any, Any], bool]) -> str:
    for bug, value in expected.bugs().items():
        if same(value, got):
            return hints[bug]
    return ""


LOGPS_CASES = {  # batch description -> (batch arguments, temperature)
    "no padding anywhere": (dict(seed=0, left_padding=False, completion_padding=False), 1.0),
    "padded completions": (dict(seed=1, left_padding=False), 0.7),
    "left-padded prompts": (dict(seed=2, completion_padding=False), 1.0),
    "left-padded prompts, padded completions": (dict(seed=3, prompts=3, group_size=2), 1.3),
    "left-padded prompts, padded completions, G=3": (dict(seed=4, prompts=2, group_size=3), 0.6),
}


def check_sequence_logps(fn: Callable[..., torch.Tensor]) -> bool:
    """``fn(model, prompt_ids, prompt_mask, completion_ids, completion_mask, temperature)`` -> (B, T) log-probs.

    Compared with :func:`supersmall.grpo.sequence_logps` on the completions' real tokens, on a small random
    Qwen2 model; a mismatch that equals a classic bug says which one.

    What it cannot see: position ids that ignore the left padding (0, 1, 2, ... over the pad tokens). The check
    model has rotary positions (RoPE), which depend only on the difference of two positions, so shifting a whole
    row changes nothing to float precision; on a model with absolute positions the same code is wrong. Values at
    padded completion positions are not compared either (the loss masks them).
    """
    model = small_model()
    batches = {name: make_batch(**kw) for name, (kw, _) in LOGPS_CASES.items()}
    cases = [Case(kwargs={"batch": name, "temperature": temp}) for name, (_, temp) in LOGPS_CASES.items()]

    def student(batch: str, temperature: float):
        b = batches[batch]
        got = fn(model, b["prompt_ids"].clone(), b["prompt_mask"].clone(), b["completion_ids"].clone(),
                 b["completion_mask"].clone(), temperature)
        return got[0] if isinstance(got, tuple) else got  # the library also returns the entropy: accept that too

    def reference(batch: str, temperature: float) -> _Expected:
        b = batches[batch]
        def bugs() -> dict[str, torch.Tensor]:
            with torch.no_grad():
                return {bug: _logps(model, b, temperature, bug) for bug in LOGPS_HINTS if bug != "no_grad"}
        return _Expected(_logps(model, b, temperature), b["completion_mask"], bugs)

    def compare(expected: _Expected, got: Any) -> bool:
        return _masked_close(expected.value, got, expected.mask)

    def explain(expected: _Expected, got: Any) -> str:
        if isinstance(got, torch.Tensor) and got.shape != expected.value.shape:
            if got.shape == expected.value.shape[:1]:
                return LOGPS_HINTS["sums"]
            return f"shape {tuple(got.shape)}, expected {tuple(expected.value.shape)} (B completions x T tokens)"

        def same(bugged, g):
            if bugged.dim() == 1:
                return False
            return _masked_close(bugged, g, expected.mask)
        return _match_bug(expected, got, LOGPS_HINTS, same)

    if not run_check("sequence_logps", student, reference, cases, compare, quiet=True, explain=explain):
        return False
    if not student(**cases[-1].kwargs).requires_grad:
        raise CheckFailed(f"[sequence_logps] {LOGPS_HINTS['no_grad']}")
    print(f"[sequence_logps] passed: {len(cases)} cases (left-padded prompts, padded completions, temperatures) "
          "agree with the library.")
    return True


# --- exercise 0.3: a few GRPO updates on one sampled batch --------------------------------------------------
LOOP_HINTS = {
    "old_logp_attached": "the parameters did not move as expected: looks like old_logp is not detached (it is "
                         "logp itself, so ratio = exp(logp - old_logp) is 1 with zero gradient); compute old_logp "
                         "once, before the updates, under torch.no_grad()",
    "old_logp_each_iteration": "looks like old_logp is recomputed at every update: it is the policy that sampled "
                               "the batch, computed once before the first update, so the ratio moves away from 1 "
                               "(and the clip acts) from the second update on",
    "population_std": "looks like the population std (divide by G): group advantages use the unbiased std "
                      "(divide by G - 1), as torch.std and TRL do",
    "no_mask": "looks like the completion mask is missing: padding tokens enter the loss; multiply the per-token "
               "terms by completion_mask and divide each sequence by its real length, not T",
    "no_zero_grad": "looks like optimizer.zero_grad() is missing: gradients accumulate across updates; call it "
                    "before every backward()",
    "no_temperature": "looks like the temperature is forgotten in the log-probs: use the sampling temperature",
}


def reference_grpo_updates(model, optimizer, prompt_ids, prompt_mask, completion_ids, completion_mask, rewards,
                           group_size: int, num_iterations: int = 2, temperature: float = 1.0,
                           clip_eps: float = 0.2, bug: str | None = None) -> list[float]:
    """The library's answer: group advantages (mean and unbiased std), old log-probs once, then ``num_iterations`` clipped updates.

    ``bug`` injects one classic mistake (the keys of ``LOOP_HINTS``), for the check's hints.
    """
    r = rewards.detach()
    if bug == "population_std":
        groups = r.view(-1, group_size)
        centred = groups - groups.mean(1, keepdim=True)
        adv = (centred / (groups.std(1, unbiased=False, keepdim=True) + 1e-6)).flatten()
        adv = torch.where(centred.flatten() == 0, torch.zeros_like(adv), adv)
    else:
        adv = advantages.group_advantages(r, group_size, scale="group")
    temp = 1.0 if bug == "no_temperature" else temperature
    mask = torch.ones_like(completion_mask) if bug == "no_mask" else completion_mask

    def logps():
        return grpo.sequence_logps(model, prompt_ids, prompt_mask, completion_ids, completion_mask, temp)[0]

    with torch.no_grad():
        old_logp = logps()
    out = []
    for _ in range(num_iterations):
        logp = logps()
        old = logp if bug == "old_logp_attached" else logp.detach() if bug == "old_logp_each_iteration" else old_logp
        loss, _ = losses.policy_loss(logp, old, adv, mask, clip_eps=clip_eps, loss_type="grpo")
        if bug != "no_zero_grad":
            optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        out.append(float(loss.detach()))
    return out


GRAPH_HINT = ("the second update backpropagates through a graph the first one freed: something computed once "
              "before the loop carries a gradient; compute old_logp under torch.no_grad() and the advantages from "
              "rewards.detach() (both are constants of the update)")
ATTACHED_ADVANTAGES_HINT = ("the advantages are not detached: gradient flows back into the rewards; use "
                            "rewards.detach() (the advantages are constants in the policy gradient)")
LOOP_CASES = {  # batch description -> (batch arguments, num_iterations, temperature)
    "2 prompts x G=2, one update": (dict(seed=10, left_padding=False), 1, 1.0),
    "2 prompts x G=3, padded, 3 updates": (dict(seed=11, group_size=3), 3, 1.0),
    "3 prompts x G=2, padded, 3 updates": (dict(seed=12, prompts=3), 3, 0.7),
    "2 prompts x G=4, padded, 4 updates": (dict(seed=13, group_size=4), 4, 1.2),
}
LR = 1.0  # plain SGD with a large step: the ratio leaves 1 after one update, so the clip acts


def _run_loop(fn: Callable[..., Any], batch: dict, group_size: int, num_iterations: int, temperature: float,
              model0, seed: int, **extra) -> tuple[list[float], torch.Tensor, torch.Tensor | None]:
    """Run ``fn`` on a fresh copy of the model with a fresh SGD optimizer; (losses, final params, rewards' grad)."""
    model = copy.deepcopy(model0).train()
    optimizer = torch.optim.SGD(model.parameters(), lr=LR)
    g = torch.Generator().manual_seed(seed)
    B = batch["prompt_ids"].size(0)
    rewards = torch.randint(0, 2, (B,), generator=g).float() + 0.1 * torch.randn(B, generator=g)
    rewards.requires_grad_(True)  # as if a KL-in-reward term carried a gradient: advantages must be constants
    out = fn(model, optimizer, batch["prompt_ids"].clone(), batch["prompt_mask"].clone(),
             batch["completion_ids"].clone(), batch["completion_mask"].clone(), rewards, group_size,
             num_iterations=num_iterations, temperature=temperature, **extra)
    out = out.tolist() if isinstance(out, torch.Tensor) else out
    params = torch.cat([p.detach().flatten() for p in model.parameters()])
    return [float(x) for x in out], params, rewards.grad


def check_grpo_loop(fn: Callable[..., list[float]]) -> bool:
    """``fn(model, optimizer, prompt_ids, prompt_mask, completion_ids, completion_mask, rewards, group_size,
    num_iterations, temperature)`` -> the loss of each update.

    Run on copies of a small random Qwen2 model with SGD; the losses *and* the final parameters must equal
    :func:`reference_grpo_updates` (group advantages with the unbiased std, old log-probs once without gradient,
    ``losses.policy_loss`` with aggregation "grpo" and clip 0.2, zero_grad / backward / step per update).
    """
    model0 = small_model(seed=1)
    batches = {name: make_batch(**kw) for name, (kw, _, _) in LOOP_CASES.items()}
    cases = [Case(kwargs={"batch": name, "num_iterations": n, "temperature": t})
             for name, (_, n, t) in LOOP_CASES.items()]

    def run(f, batch: str, num_iterations: int, temperature: float, **extra):
        kw = LOOP_CASES[batch][0]
        return _run_loop(f, batches[batch], kw.get("group_size", 2), num_iterations, temperature, model0,
                         seed=kw["seed"], **extra)

    def student(batch: str, num_iterations: int, temperature: float):
        try:
            out = run(fn, batch, num_iterations, temperature)
        except RuntimeError as e:
            if "backward through the graph a second time" in str(e):
                raise CheckFailed(f"[grpo_loop] {batch}: {GRAPH_HINT}") from e
            raise
        if out[2] is not None and bool(out[2].abs().sum() > 0):
            raise CheckFailed(f"[grpo_loop] {batch}: {ATTACHED_ADVANTAGES_HINT}")
        return out

    def reference(batch: str, num_iterations: int, temperature: float) -> _Expected:
        def bugs() -> dict[str, tuple]:
            return {bug: run(reference_grpo_updates, batch, num_iterations, temperature, bug=bug) for bug in LOOP_HINTS
                    if not (bug == "no_temperature" and temperature == 1.0)}
        return _Expected(run(reference_grpo_updates, batch, num_iterations, temperature), bugs=bugs)

    def same(a, b) -> bool:
        return close(a[0], b[0]) and close(a[1], b[1])

    def compare(expected: _Expected, got) -> bool:
        return same(expected.value, got)

    def explain(expected: _Expected, got) -> str:
        if len(got[0]) != len(expected.value[0]):
            return f"return one loss per update: {len(expected.value[0])} values, got {len(got[0])}"
        hint = _match_bug(expected, got, LOOP_HINTS, same)
        if hint:
            return hint
        if close(expected.value[0], got[0]):
            return "the losses agree but the final parameters differ: one optimizer.step() per update"
        return "the losses differ (expected first, got second)"

    if not run_check("grpo_loop", student, reference, cases, compare, quiet=True, explain=explain):
        return False
    print(f"[grpo_loop] passed: {len(cases)} cases (losses and final parameters after 1-4 updates) agree with "
          "the library.")
    return True


# --- exercise 0.4: the completion mask after EOS ------------------------------------------------------------
EOS_HINTS = {
    "eos_dropped": "looks like the EOS token itself is masked out: the mask keeps every token up to *and including* "
                   "the first EOS (the model must learn to emit it; TRL keeps it too), so use <= first, not < first",
    "tail_unmasked": "looks like tokens after the first EOS are still in the mask: everything after the first EOS is "
                     "padding, whatever was generated there (a mask from ids != pad_id misses it when the tail is "
                     "not pad tokens, and drops the EOS itself when pad_id == eos_id)",
    "tail_not_padded": "the mask is right, but the ids after the first EOS are not replaced by pad_id",
    "no_eos": "looks like a row without any EOS is masked after its first token: argmax of an all-False row is 0; "
              "such a row ran to the length limit, so its mask is all ones and it is truncated",
    "last_eos": "looks like the last EOS is used: the completion ends at the *first* EOS",
}


def _buggy_masks(completion_ids: torch.Tensor, eos_id: int, pad_id: int) -> dict[str, list[torch.Tensor]]:
    """The masks each classic bug gives (several ways to write the same bug), for the check's hints."""
    is_eos = completion_ids == eos_id
    width = completion_ids.size(1)
    positions = torch.arange(width).expand_as(completion_ids)
    has = is_eos.any(1)
    first = torch.where(has, is_eos.long().argmax(1), torch.full_like(has, width, dtype=torch.long))
    last = torch.where(has, width - 1 - is_eos.flip(1).long().argmax(1), torch.full_like(first, width))
    argmax_only = is_eos.long().argmax(1)  # 0 for a row without EOS
    return {
        "eos_dropped": [(positions < first[:, None]).long()],
        "tail_unmasked": [(completion_ids != pad_id).long(), torch.ones_like(completion_ids)],
        "no_eos": [(positions <= argmax_only[:, None]).long(), (positions < argmax_only[:, None]).long()],
        "last_eos": [(positions <= last[:, None]).long()],
    }


def _eos_batch(seed: int, rows: int = 4, width: int = 8, eos_id: int = 1, pad_id: int = 0,
               eos_at: list[int | None] | None = None) -> torch.Tensor:
    """Random completions with an EOS at ``eos_at[i]`` (None: no EOS) and random tokens after it, as a sampler that
    keeps generating past EOS leaves them; every other row gets a second EOS two tokens later."""
    g = torch.Generator().manual_seed(seed)
    ids = torch.randint(0, VOCAB, (rows, width), generator=g)
    ids = ids.masked_fill((ids == eos_id) | (ids == pad_id), VOCAB - 1)  # special ids only where placed
    if eos_at is None:
        eos_at = [int(x) if x < width else None for x in torch.randint(0, width + 2, (rows,), generator=g)]
    for i, at in enumerate(eos_at):
        if at is not None:
            ids[i, at] = eos_id
            if at + 2 < width and i % 2 == 0:
                ids[i, at + 2] = eos_id  # a later EOS: only the first one ends the completion
    return ids


EOS_CASES = {  # description -> (batch, eos_id, pad_id)
    "EOS in the middle of every row": (dict(seed=20, eos_at=[3, 1, 5, 2]), 1, 0),
    "EOS first and last": (dict(seed=21, eos_at=[0, 7, 4, 6]), 1, 0),
    "a row without EOS (hit the length limit)": (dict(seed=22, eos_at=[2, None, 5, None]), 1, 0),
    "no EOS anywhere": (dict(seed=23, eos_at=[None, None, None, None]), 1, 0),
    "pad_id == eos_id": (dict(seed=24, eos_at=[3, None, 0, 6]), 1, 1),
    "random, 6 rows": (dict(seed=25, rows=6, width=10), 1, 0),
    "random, other ids": (dict(seed=26, rows=5, width=9), 7, 3),
}


def check_mask_after_eos(fn: Callable[..., Any]) -> bool:
    """``fn(completion_ids, eos_id, pad_id)`` -> ``(ids, mask, truncated)``, compared with
    :func:`supersmall.grpo.mask_after_eos`: ids with ``pad_id`` after the first EOS, a 0/1 mask that keeps every
    token up to and including the first EOS, and a bool per row that has no EOS (it hit the length limit).

    Edge cases: EOS at the first and last position, a second EOS later in a row, rows without EOS, ``pad_id ==
    eos_id``; then random rows. A mismatch that equals a classic bug (EOS dropped, tail unmasked, a row without EOS
    masked after its first token, the last EOS used) says which one.

    What it cannot see: whether ``eos_id`` is the token generation really stopped on (a chat model stops on its
    end-of-turn token, e.g. ``<|im_end|>``, which need not be the tokenizer's ``eos_token``), and whether the mask
    then reaches the loss, the length penalty and the log-probs; those are notebook 00's section 5 and exercise 0.3.
    """
    batches = {name: _eos_batch(eos_id=eos, pad_id=pad, **kw) for name, (kw, eos, pad) in EOS_CASES.items()}
    cases = [Case(kwargs={"batch": name}, label=name) for name in EOS_CASES]

    def args(batch: str):
        _, eos, pad = EOS_CASES[batch]
        return batches[batch].clone(), eos, pad

    def student(batch: str):
        out = fn(*args(batch))
        if not isinstance(out, (tuple, list)) or len(out) != 3:
            raise CheckFailed(f"[mask_after_eos] {batch}: return a tuple (ids, mask, truncated), got {_kind(out)}")
        return tuple(torch.as_tensor(x) for x in out)

    def reference(batch: str) -> _Expected:
        return _Expected(grpo.mask_after_eos(*args(batch)), bugs=lambda: _buggy_masks(*args(batch)))

    def compare(expected: _Expected, got) -> bool:
        return all(close(e.long(), g.long()) for e, g in zip(expected.value, got))

    def explain(expected: _Expected, got) -> str:
        e_ids, e_mask, _ = (x.long() for x in expected.value)
        g_ids, g_mask, _ = (x.long() for x in got)
        if g_mask.shape != e_mask.shape:
            return f"the mask has shape {tuple(g_mask.shape)}, expected {tuple(e_mask.shape)} (one 0/1 per token)"
        if not close(e_mask, g_mask):
            for bug, masks in expected.bugs().items():
                if any(close(m, g_mask) for m in masks):
                    return EOS_HINTS[bug]
            return "the mask differs"
        if not close(e_ids, g_ids):
            return EOS_HINTS["tail_not_padded"]
        return "truncated is True exactly for the rows without any EOS (they hit the length limit)"

    if not run_check("mask_after_eos", student, reference, cases, compare, quiet=True, explain=explain):
        return False
    print(f"[mask_after_eos] passed: {len(cases)} cases (EOS first/last/twice/never, pad == EOS, random) agree with "
          "the library.")
    return True


def _kind(x: Any) -> str:
    return f"a {type(x).__name__}" + (f" of {len(x)}" if isinstance(x, (tuple, list)) else "")
