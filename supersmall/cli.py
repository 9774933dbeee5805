"""The ``supersmall`` command line. Each subcommand lives in ``supersmall/commands/<name>.py`` with

    def register(subparsers) -> None   # adds its parser and sets ``handler=run``
    def run(args) -> int               # imports heavy modules lazily; returns the exit status

so ``supersmall --help`` stays fast, and is listed once in :data:`COMMANDS` (in ``--help`` order).
Errors a user can fix (:class:`UserError`, ``ProfileError``) are printed as one line without a
traceback, with exit status 2.
"""

from __future__ import annotations

import argparse
import importlib
import sys

from supersmall import __version__
from supersmall.errors import UserError

__all__ = ["COMMANDS", "UserError", "build_parser", "main"]

COMMANDS = ("train", "eval", "replicate", "report", "canary", "estimate", "export", "notebooks", "exercises", "tiny",
            "doctor")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="supersmall",
        description="Teach and replicate RL-only math reasoning (ZeroGRPO) in small language models.",
    )
    parser.add_argument("--version", action="version", version=f"supersmall {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    for name in COMMANDS:
        importlib.import_module(f"supersmall.commands.{name}").register(sub)
    return parser


def main(argv: list[str] | None = None) -> int:
    from supersmall.config import ProfileError

    parser = build_parser()
    args = parser.parse_args(argv)
    if not getattr(args, "handler", None):
        parser.print_help()
        return 2
    try:
        return int(args.handler(args) or 0)
    except (UserError, ProfileError) as e:
        print(f"supersmall {args.command}: error: {e}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print(f"supersmall {args.command}: interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
