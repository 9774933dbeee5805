"""Every profile key is read somewhere in the library (a key shown to students but never read is a lie),
and every key has a validation rule."""

import re
from dataclasses import fields
from pathlib import Path

import pytest

from supersmall.config import RULES, Profile, load_profile

LIB = Path(__file__).resolve().parent.parent / "supersmall"
SOURCE = "\n".join(p.read_text() for p in LIB.rglob("*.py") if p.name != "config.py")
KEYS = [(s.name, f.name) for s in fields(Profile) if s.name not in ("name", "description")
        for f in fields(s.type if isinstance(s.type, type) else type(getattr(Profile(), s.name)))]
# keys whose range is any value of their type (free text, a path, a flag)
UNRULED = {"model.name_or_path", "model.think_prefill", "model.attn_implementation", "train.optimizer",
           "train.lr_scheduler_type", "train.clip_eps_high", "train.gradient_checkpointing", "train.bf16",
           "train.seed", "train.report_to", "train.kl_ratio_weighting", "train.mask_truncated_completions",
           "reward.answer_column", "reward.length_penalty", "reward.strict", "eval.dataset", "data.source",
           "data.instruction"}


@pytest.mark.parametrize("section, key", KEYS, ids=[f"{s}.{k}" for s, k in KEYS])
def test_every_profile_key_is_read_by_the_library(section, key):
    assert re.search(rf"\.{key}\b|\"{section}\.{key}\"", SOURCE), f"{section}.{key} is never read: read it or remove it"


@pytest.mark.parametrize("section, key", KEYS, ids=[f"{s}.{k}" for s, k in KEYS])
def test_every_profile_key_has_a_rule_or_is_free(section, key):
    assert f"{section}.{key}" in RULES or f"{section}.{key}" in UNRULED


def test_shipped_profiles_name_every_key():
    for name in ("tiny", "rehearsal", "a6000x4"):
        text = (LIB / "profiles" / f"{name}.yaml").read_text()
        for section, key in KEYS:
            assert re.search(rf"^  {key}:", text, re.M), f"{name}.yaml lacks {section}.{key}"
        load_profile(name)
