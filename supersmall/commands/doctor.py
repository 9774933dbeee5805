"""``supersmall doctor``: check this machine (see :mod:`supersmall.doctor`)."""

from __future__ import annotations


def register(sub) -> None:
    p = sub.add_parser("doctor", help="check versions, hardware, offline mode and the grader; exit 1 on a blocker")
    p.set_defaults(handler=run)


def run(args) -> int:
    from supersmall.doctor import doctor

    return 0 if doctor().ok else 1
