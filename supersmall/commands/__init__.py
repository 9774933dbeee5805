"""The CLI's subcommands, one module each (``register(subparsers)`` and a lazy ``run(args) -> int``), and
the two argument helpers they share."""

from __future__ import annotations

import argparse

from supersmall.errors import UserError


def add_set_argument(parser: argparse.ArgumentParser) -> None:
    """``--set KEY=VALUE`` (repeatable): a profile override, parsed as YAML (``--set train.steps=10``)."""
    parser.add_argument("--set", action="append", default=[], metavar="KEY=VALUE",
                        help="override a profile setting, e.g. --set train.learning_rate=1e-5 (repeatable)")


def parse_sets(items: list[str]) -> dict[str, object]:
    """``["train.steps=10"]`` -> ``{"train.steps": 10}``, each value read for its key's type
    (:func:`read_value`); a malformed item is a :class:`UserError`, a value of the wrong type a
    ``ProfileError`` (both one sentence)."""
    out: dict[str, object] = {}
    for item in items:
        key, sep, value = item.partition("=")
        if not sep or not key.strip():
            raise UserError(f"--set {item!r} must be KEY=VALUE, e.g. --set train.steps=10")
        out[key.strip()] = read_value(key.strip(), value)
    return out


def read_value(key: str, text: str) -> object:
    """The value of ``--set key=text`` as the key's type reads it, so what is written is what is set:

    - a string is the text as written (``017`` stays ``"017"``, ``4:20`` stays ``"4:20"``, where plain YAML
      would read an octal 15 and a sexagesimal 260); quote it to keep blanks (``'a b '``);
    - an integer is decimal digits, a number is anything Python's ``float`` reads without ``_``; a flag is
      ``true`` or ``false``; a list is YAML (``[0, 1, 2]``); ``null`` or ``~`` is None where a key allows it.

    An unknown key is read as YAML, and the profile names the valid keys.
    """
    import re
    import types
    import typing

    import yaml  # the CLI's start-up path stays light

    from supersmall.config import Profile, ProfileError

    *parents, leaf = key.split(".")
    cls: type = Profile
    for name in parents:
        hints = typing.get_type_hints(cls) if isinstance(cls, type) else {}
        cls = hints.get(name)  # type: ignore[assignment]
    hints = typing.get_type_hints(cls) if isinstance(cls, type) and hasattr(cls, "__dataclass_fields__") else {}
    text = text.strip()
    if leaf not in hints:
        try:
            return yaml.safe_load(text)
        except yaml.YAMLError:
            raise UserError(f"--set {key + '=' + text!r}: cannot read the value {text!r}") from None
    tp = hints[leaf]
    if hasattr(tp, "__dataclass_fields__"):
        raise ProfileError(f"{key} is a section of the profile: set one key at a time, e.g. --set {key}.KEY=VALUE")
    union = typing.get_origin(tp) in (typing.Union, types.UnionType)
    options = [a for a in typing.get_args(tp) if a is not type(None)] if union else [tp]
    if union and type(None) in typing.get_args(tp) and text in ("null", "~"):
        return None
    for option in options:
        origin = typing.get_origin(option) or option
        if origin is str:
            quoted = len(text) >= 2 and text[0] == text[-1] and text[0] in "'\""
            if not quoted:
                return text
            try:
                return str(yaml.safe_load(text))
            except yaml.YAMLError:
                return text
        if origin is bool and text.lower() in ("true", "false"):
            return text.lower() == "true"
        if origin is int and re.fullmatch(r"[-+]?[0-9]+", text):
            return int(text)
        if origin is float and "_" not in text:
            try:
                return float(text)
            except ValueError:
                pass
        if origin is list:
            try:
                value = yaml.safe_load(text)
            except yaml.YAMLError:
                value = None
            if isinstance(value, list):
                return value
    kind = {str: "a string", bool: "true or false", int: "an integer", float: "a number", list: "a list"}
    expected = " or ".join(kind.get(typing.get_origin(o) or o, str(o)) for o in options)
    raise ProfileError(f"{key} must be {expected}, got {text!r}")
