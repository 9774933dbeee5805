"""``supersmall exercises build [--check]``: regenerate exercises/ from solutions/."""

from __future__ import annotations


def register(sub) -> None:
    p = sub.add_parser("exercises", help="build the student notebooks from solutions/")
    esub = p.add_subparsers(dest="action", metavar="ACTION", required=True)
    b = esub.add_parser("build", help="replace '# BEGIN SOLUTION ... # END SOLUTION' blocks with stubs")
    b.add_argument("--check", action="store_true", help="only report stale notebooks; exit 1 if any")
    b.set_defaults(handler=run)


def run(args) -> int:
    from supersmall.errors import UserError
    from supersmall.exercises import ExerciseError, build_exercises

    try:
        changed = build_exercises(check=args.check)
    except ExerciseError as e:
        raise UserError(str(e)) from None
    if args.check:
        if changed:
            print("out of sync (run `supersmall exercises build`): " + ", ".join(p.name for p in changed))
            return 1
        print("exercises/ is in sync with solutions/")
        return 0
    print(f"wrote {len(changed)} notebook(s)" + (": " + ", ".join(p.name for p in changed) if changed else ""))
    return 0
