"""supersmall.vllm_cpu: the one CPU workaround for TRL's colocated vLLM. The layer tests run vLLM's CPU build
for real (``.venv-vllm``, in a subprocess); the first of them fails once vLLM no longer needs the workaround."""

import json
import os
import subprocess
from pathlib import Path

import pytest

from supersmall import vllm_cpu

ROOT = Path(__file__).resolve().parents[1]

# Builds a vLLM CPU linear layer and LM head the way a model load leaves them (a 2-D weight with its
# weight_loader, then process_weights_after_loading), then changes the weight in place as TRL's sync does.
LAYERS = r"""
import json, sys, torch
from vllm.model_executor.layers.linear import UnquantizedLinearMethod
from vllm.model_executor.layers.vocab_parallel_embedding import UnquantizedEmbeddingMethod
from vllm.model_executor.utils import set_weight_attrs
from supersmall import vllm_cpu

if sys.argv[1] == "patch":
    patched = vllm_cpu.keep_unpacked_weights()
elif sys.argv[1] == "cuda":  # a CUDA host: the patch must stay off
    torch.cuda.is_available = lambda: True
    patched = vllm_cpu.keep_unpacked_weights()
else:
    patched = False
out = {"patched": patched}
torch.manual_seed(0)
for name, method in (("linear", UnquantizedLinearMethod()), ("head", UnquantizedEmbeddingMethod())):
    for dtype in (torch.bfloat16, torch.float32):  # vLLM runs the kit's float32 models in bfloat16
        layer = torch.nn.Module()
        w = torch.nn.Parameter(torch.randn(256, 128, dtype=dtype), requires_grad=False)
        set_weight_attrs(w, {"weight_loader": lambda p, x: p.data.copy_(x)})
        layer.register_parameter("weight", w)
        layer.bias = None
        method.process_weights_after_loading(layer)
        key = f"{name}/{str(dtype).removeprefix('torch.')}"
        out[key] = {"kept": tuple(layer.weight.shape) == (256, 128), "loader": hasattr(layer.weight, "weight_loader")}
        if out[key]["kept"]:
            x = torch.randn(3, 128, dtype=dtype)
            new = torch.randn(256, 128, dtype=dtype)
            layer.weight.weight_loader(layer.weight, new)  # what TRL's load_weights does, per parameter
            y = method.apply(layer, x)
            out[key]["follows"] = bool(torch.allclose(y.float(), (x @ new.t()).float(), rtol=2e-2, atol=2e-2))
print("RESULT " + json.dumps(out))
"""


def _layers(python: Path, mode: str) -> dict:
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    proc = subprocess.run([str(python), "-c", LAYERS, mode], capture_output=True, text=True, timeout=600, env=env,
                          cwd=ROOT)
    assert proc.returncode == 0, proc.stderr[-3000:]
    line = [ln for ln in proc.stdout.splitlines() if ln.startswith("RESULT ")][-1]
    return json.loads(line.removeprefix("RESULT "))


@pytest.mark.slow
@pytest.mark.vllm
def test_vllm_on_cpu_still_drops_or_freezes_the_weights_trl_syncs(vllm_python):
    """Fails once vLLM keeps its CPU weights live: then delete supersmall/vllm_cpu.py and its call in
    supersmall.train.make_trainer (TRL's weight sync works without it)."""
    r = _layers(vllm_python, "off")
    dropped = not r["linear/bfloat16"]["kept"] or not r["linear/bfloat16"]["loader"]
    frozen = not r["head/bfloat16"].get("follows", False)
    assert dropped or frozen, ("vLLM no longer drops its CPU linear weights nor computes with a stale packed copy: "
                               f"delete supersmall/vllm_cpu.py and its call in supersmall.train.make_trainer ({r})")


@pytest.mark.slow
@pytest.mark.vllm
def test_patched_layers_keep_their_weights_and_compute_with_the_synced_ones(vllm_python):
    r = _layers(vllm_python, "patch")
    assert r.pop("patched") is True
    for key, layer in r.items():
        assert layer == {"kept": True, "loader": True, "follows": True}, key


@pytest.mark.slow
@pytest.mark.vllm
def test_patch_stays_off_on_a_cuda_host(vllm_python):
    r = _layers(vllm_python, "cuda")
    assert r["patched"] is False
    assert not r["linear/bfloat16"]["kept"]  # vLLM's own CPU dispatch ran: it is untouched


def test_without_vllm_nothing_is_patched(monkeypatch):
    monkeypatch.setattr(vllm_cpu, "needed", lambda: False)
    assert vllm_cpu.keep_unpacked_weights() is False and vllm_cpu._ORIGINAL is None


def test_cpu_defaults_fill_only_what_the_user_left_unset(monkeypatch):
    monkeypatch.setenv("VLLM_CPU_KVCACHE_SPACE", "7")
    monkeypatch.delenv("VLLM_CPU_CI_ENV", raising=False)
    monkeypatch.setattr(vllm_cpu.torch.cuda, "is_available", lambda: False)
    assert vllm_cpu.set_cpu_defaults() == {"VLLM_CPU_CI_ENV": "1"}
    assert os.environ["VLLM_CPU_KVCACHE_SPACE"] == "7" and os.environ["VLLM_CPU_CI_ENV"] == "1"
    monkeypatch.delenv("VLLM_CPU_CI_ENV")
    monkeypatch.setattr(vllm_cpu.torch.cuda, "is_available", lambda: True)
    assert vllm_cpu.set_cpu_defaults() == {} and "VLLM_CPU_CI_ENV" not in os.environ
