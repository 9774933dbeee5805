"""``supersmall doctor``: check this machine (see :mod:`supersmall.doctor`)."""

from __future__ import annotations


def register(sub) -> None:
    p = sub.add_parser("doctor", help="check versions, hardware, offline mode and the grader; exit 1 on a blocker")
    p.add_argument("--out", default=".", help="where the runs will be written (its free disk space is checked)")
    p.set_defaults(handler=run)


def run(args) -> int:
    from supersmall import doctor

    return 0 if doctor.run(path=args.out).ok else 1
