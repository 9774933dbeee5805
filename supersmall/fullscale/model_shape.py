"""A model's shape: its dimensions and parameter count, from a known id, a local folder or a transformers config.

    from supersmall.fullscale.model_shape import model_dims, lora_params
    model_dims("deepseek-ai/DeepSeek-R1-Distill-Qwen-1.5B").params   # ~1.78e9, both embeddings counted
    lora_params(model_dims("tiny"), rank=8)                            # trainable LoRA parameters

The memory and time models (:mod:`supersmall.fullscale.estimate`, :mod:`supersmall.fullscale.cost`) and ``supersmall doctor``
read every size from here; no model is loaded.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from supersmall import tiny


@dataclass(frozen=True)
class ModelDims:
    hidden: int
    layers: int
    heads: int
    kv_heads: int
    intermediate: int
    vocab: int
    params: float
    tied: bool = False

    @property
    def kv_dim(self) -> int:
        return self.kv_heads * (self.hidden // self.heads)


# DeepSeek-R1-Distill-Qwen-1.5B's config.json (Qwen2, ~1.78e9 parameters incl. both embeddings).
MODELS = {"deepseek-ai/DeepSeek-R1-Distill-Qwen-1.5B": dict(
    hidden_size=1536, num_hidden_layers=28, num_attention_heads=12, num_key_value_heads=2,
    intermediate_size=8960, vocab_size=151936, tie_word_embeddings=False)}


def _count_params(h: int, layers: int, heads: int, kv: int, inter: int, vocab: int, tied: bool) -> int:
    """Qwen2: q/k/v with bias, o without, SwiGLU MLP, two RMSNorms per layer, final norm, embeddings."""
    kvd = kv * (h // heads)
    per_layer = (h * h + h) + 2 * (h * kvd + kvd) + h * h + 3 * h * inter + 2 * h
    return layers * per_layer + vocab * h * (1 if tied else 2) + h


def model_dims(name_or_config: Any) -> ModelDims:
    """Dimensions of a known model id ("tiny", DeepSeek-R1-Distill-Qwen-1.5B), a local folder with config.json,
    or a transformers config (dict or ``PretrainedConfig``; vocab_size defaults to Qwen2's 151936). Unknown ids
    raise ValueError: a wrong guess would make every number wrong."""
    cfg = name_or_config
    if hasattr(cfg, "to_dict"):
        cfg = cfg.to_dict()
    if isinstance(cfg, str):
        key = next((k for k in MODELS if k == cfg or k.split("/")[-1] == Path(cfg).name), None)
        if key:
            cfg = MODELS[key]
        elif cfg in ("tiny", "tiny-r1"):  # the kit's own models (tiny-r1 adds the R1 template's 3 tokens)
            extra = len(tiny.R1_SPECIAL) if cfg == "tiny-r1" else 0
            cfg = {**tiny.MODEL_CONFIG, "vocab_size": len(tiny.SPECIAL + tiny.MULTI + tiny.CHARS) + extra}
        elif (Path(cfg) / "config.json").is_file():
            cfg = json.loads((Path(cfg) / "config.json").read_text())
        else:
            raise ValueError(f"no dimensions known for model {name_or_config!r}: known are {', '.join(MODELS)}, "
                             "tiny, or a folder with config.json; pass a transformers config dict instead")
    if not isinstance(cfg, dict) or "hidden_size" not in cfg:
        raise ValueError(f"not a transformers config: {name_or_config!r}")
    heads = cfg["num_attention_heads"]
    d = dict(hidden=cfg["hidden_size"], layers=cfg["num_hidden_layers"], heads=heads,
             kv_heads=cfg.get("num_key_value_heads") or heads, intermediate=cfg["intermediate_size"],
             vocab=cfg.get("vocab_size", 151936), tied=bool(cfg.get("tie_word_embeddings", False)))
    return ModelDims(params=float(_count_params(d["hidden"], d["layers"], heads, d["kv_heads"], d["intermediate"],
                                                d["vocab"], d["tied"])), **d)


def lora_params(dims: ModelDims, rank: int) -> int:
    """Trainable LoRA parameters on every linear layer of a Qwen2 block: rank x (in + out) per matrix,
    q and o (h -> h), k and v (h -> kv_dim), gate and up (h -> intermediate), down (intermediate -> h)."""
    per_layer = 2 * (2 * dims.hidden) + 2 * (dims.hidden + dims.kv_dim) + 3 * (dims.hidden + dims.intermediate)
    return rank * dims.layers * per_layer


LORA_MODULES = 7  # q, k, v, o, gate, up, down: every linear layer of a Qwen2 block (trl_args.lora_config_kwargs)


def lora_input_features(dims: ModelDims) -> int:
    """Sum of the adapted matrices' input widths in one block: q, k, v, gate, up and o read ``hidden`` features
    (o reads heads x head_dim = hidden), down reads ``intermediate``."""
    return 6 * dims.hidden + dims.intermediate


def lora_saved_bytes(dims: ModelDims, rank: int, weight_bytes: int = 2, dropout: bool = False) -> int:
    """Bytes per token per block that LoRA adds to what autograd saves for the backward.

    peft (0.21) keeps the adapters in fp32 beside a bf16 base and casts each adapted matrix's input to fp32; lora_A
    saves that fp32 input (4 bytes per input feature), or, with dropout, dropout's fp32 output plus its mask (1 byte
    on CUDA, a bool); lora_B saves lora_A's fp32 output (4 x rank). The frozen base matrices no longer save their
    input (no weight gradient): ``weight_bytes`` per input feature fewer. So
    ``(4 + [dropout] - weight_bytes) x (6 hidden + intermediate) + 4 x 7 x rank``: 36,800 bytes for the 1.5B at rank
    16 without dropout; counted with torch.autograd.graph.saved_tensors_hooks on one bf16 Qwen2 block on CPU (peft
    0.21.2): +39,872 bytes per token (the formula is 8% under; on CPU dropout's mask is fp32, 4 bytes)."""
    inputs = lora_input_features(dims)
    return (4 + (1 if dropout else 0) - weight_bytes) * inputs + 4 * LORA_MODULES * rank

