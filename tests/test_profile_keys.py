"""Every profile key is read somewhere in the library (a key shown to students but never read is a lie),
and every key has a validation rule.

A key counts as read only by its full path, found in the library's syntax trees (``config.py`` aside).
An expression *holds a section* (say ``eval``) when it is ``<anything>.eval``, ``EvalConfig(...)``,
``dataclasses.replace(<section-holder>, ...)``, ``<holder> or <holder>``, or a name that, inside the
function at hand, is assigned a holder (also in a tuple assignment) or is a parameter annotated
``EvalConfig`` or named ``eval_cfg``. Then ``<holder>.top_p`` and ``getattr(<holder>, "top_p")`` read
``eval.top_p``. So ``t.top_p`` counts for ``train`` only where ``t = profile.train``, and a read of
``train.top_p`` no longer makes ``eval.top_p`` pass. (A chain such as ``x.data.levels`` counts whatever
``x`` is: the one place this can be fooled, by an attribute named like a section.)
"""

import ast
import re
from dataclasses import fields
from pathlib import Path

import pytest

from supersmall.config import Profile, load_profile
from supersmall.profile_rules import RULES

LIB = Path(__file__).resolve().parent.parent / "supersmall"
SECTIONS = {s.name: s.type if isinstance(s.type, type) else type(getattr(Profile(), s.name))
            for s in fields(Profile) if s.name not in ("name", "description")}
KEYS = [(section, f.name) for section, cls in SECTIONS.items() for f in fields(cls)]
CLASS_TO_SECTION = {cls.__name__: section for section, cls in SECTIONS.items()}
# keys whose range is any value of their type (free text, a path, a flag)
UNRULED = {"model.name_or_path", "model.think_prefill", "model.attn_implementation", "train.optimizer",
           "train.lr_scheduler_type", "train.clip_eps_high", "train.gradient_checkpointing", "train.bf16",
           "train.seed", "train.report_to", "train.kl_ratio_weighting", "train.mask_truncated_completions",
           "train.kl_penalty_loss", "train.force_max_length",
           "reward.answer_column", "reward.length_penalty", "reward.strict", "eval.dataset", "data.source",
           "data.instruction"}


def _section_of(node: ast.AST, aliases: dict[str, str]) -> str | None:
    """The section ``node`` holds (see the module docstring), or None."""
    if isinstance(node, ast.Attribute) and node.attr in SECTIONS:
        return node.attr
    if isinstance(node, ast.Name):
        return aliases.get(node.id)
    if isinstance(node, ast.BoolOp):
        found = {_section_of(v, aliases) for v in node.values} - {None}
        return found.pop() if len(found) == 1 else None
    if isinstance(node, ast.Call):
        func = getattr(node.func, "attr", getattr(node.func, "id", None))
        if func in CLASS_TO_SECTION:
            return CLASS_TO_SECTION[func]
        if func == "replace" and node.args:
            return _section_of(node.args[0], aliases)
    return None


def _parameter_section(arg: ast.arg) -> str | None:
    if arg.arg.removesuffix("_cfg") in SECTIONS and arg.arg.endswith("_cfg"):
        return arg.arg.removesuffix("_cfg")
    names = {n.id for n in ast.walk(arg.annotation) if isinstance(n, ast.Name)} if arg.annotation else set()
    names |= {n.value for n in ast.walk(arg.annotation) if isinstance(n, ast.Constant) and isinstance(n.value, str)} \
        if arg.annotation else set()
    found = {CLASS_TO_SECTION[n] for n in names if n in CLASS_TO_SECTION}
    return found.pop() if len(found) == 1 else None


def _aliases(scope: ast.AST) -> dict[str, str]:
    """Names that hold a section in ``scope`` (a function, with the functions nested in it)."""
    out: dict[str, str] = {}
    for node in ast.walk(scope):
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
            for arg in [*node.args.posonlyargs, *node.args.args, *node.args.kwonlyargs]:
                if _parameter_section(arg):
                    out[arg.arg] = _parameter_section(arg)
    for _ in range(3):  # assignments may build on each other (cfg = replace(settings or EvalConfig(), ...))
        for node in ast.walk(scope):
            if isinstance(node, ast.Assign):
                for target in node.targets:
                    pairs = [(target, node.value)]
                    if isinstance(target, ast.Tuple) and isinstance(node.value, ast.Tuple):
                        pairs = list(zip(target.elts, node.value.elts))
                    for name, value in pairs:
                        if isinstance(name, ast.Name) and _section_of(value, out):
                            out[name.id] = _section_of(value, out)
    return out


def _reads(tree: ast.Module) -> set[str]:
    """Every ``section.key`` read in one module, by the rules of the module docstring."""
    found: set[str] = set()
    scopes = [tree, *(n for n in ast.walk(tree) if isinstance(n, (ast.FunctionDef, ast.AsyncFunctionDef)))]
    for scope in scopes:
        aliases = _aliases(scope) if scope is not tree else {}
        for node in ast.walk(scope):
            if isinstance(node, ast.Attribute):
                section = _section_of(node.value, aliases)
                if section:
                    found.add(f"{section}.{node.attr}")
            elif isinstance(node, ast.Call) and getattr(node.func, "id", None) == "getattr" and len(node.args) >= 2 \
                    and isinstance(node.args[1], ast.Constant):
                section = _section_of(node.args[0], aliases)
                if section:
                    found.add(f"{section}.{node.args[1].value}")
    return found


READ = set().union(*(_reads(ast.parse(p.read_text())) for p in LIB.rglob("*.py") if p.name != "config.py"))


@pytest.mark.parametrize("section, key", KEYS, ids=[f"{s}.{k}" for s, k in KEYS])
def test_every_profile_key_is_read_by_the_library(section, key):
    assert f"{section}.{key}" in READ, f"{section}.{key} is never read: read it or remove it"


def test_a_key_read_in_one_section_does_not_count_for_another():
    code = ("def f(profile, cfg: 'EvalConfig', reward_cfg, settings: EvalConfig | None = None):\n"
            "    t = profile.train\n"
            "    launch, r = profile.launch, profile.reward\n"
            "    e = dataclasses.replace(profile.eval, top_p=1.0)\n"
            "    s = dataclasses.replace(settings or EvalConfig(), seed=1)\n"
            "    return t.top_p, r.name, launch.num_gpus, e.temperature, cfg.n_samples, profile.data.levels, "
            "getattr(t, 'steps'), other.top_k, reward_cfg.strict, s.batch_size\n")
    assert _reads(ast.parse(code)) == {"train.top_p", "reward.name", "launch.num_gpus", "eval.temperature",
                                       "eval.n_samples", "data.levels", "train.steps", "reward.strict",
                                       "eval.batch_size"}
    # a name is a section only inside the function that binds it
    assert _reads(ast.parse("def f(p):\n    t = p.train\ndef g(t):\n    return t.top_p\n")) == set()


@pytest.mark.parametrize("section, key", KEYS, ids=[f"{s}.{k}" for s, k in KEYS])
def test_every_profile_key_has_a_rule_or_is_free(section, key):
    assert f"{section}.{key}" in RULES or f"{section}.{key}" in UNRULED


def test_shipped_profiles_name_every_key():
    for name in ("tiny", "rehearsal", "a6000x4"):
        text = (LIB / "profiles" / f"{name}.yaml").read_text()
        for section, key in KEYS:
            assert re.search(rf"^  {key}:", text, re.M), f"{name}.yaml lacks {section}.{key}"
        load_profile(name)
