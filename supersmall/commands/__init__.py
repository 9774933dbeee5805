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
    """``["train.steps=10"]`` -> ``{"train.steps": 10}``; a malformed item is a :class:`UserError`."""
    import yaml  # the CLI's start-up path stays light

    out: dict[str, object] = {}
    for item in items:
        key, sep, value = item.partition("=")
        if not sep or not key.strip():
            raise UserError(f"--set {item!r} must be KEY=VALUE, e.g. --set train.steps=10")
        try:
            out[key.strip()] = yaml.safe_load(value)
        except yaml.YAMLError:
            raise UserError(f"--set {item!r}: cannot read the value {value!r}") from None
    return out
