"""``supersmall notebooks run|list``: the notebook series, headless (see :mod:`supersmall.runner`)."""

from __future__ import annotations


def register(sub) -> None:
    p = sub.add_parser("notebooks", help="run the notebook series headless with papermill")
    nsub = p.add_subparsers(dest="action", metavar="ACTION", required=True)
    r = nsub.add_parser("run", help="execute notebooks/*.ipynb in order; write executed copies and a summary")
    r.add_argument("--profile", default="tiny", help="profile name or YAML path (default: tiny)")
    r.add_argument("--only", default=None, help="comma-separated name prefixes, e.g. 01,05")
    r.add_argument("--out", default="runs/nb", help="output folder (default: runs/nb)")
    r.add_argument("--cell-timeout", type=int, default=None, help="seconds per cell (default: the profile's)")
    r.add_argument("--fail-fast", action="store_true", help="stop at the first failing notebook")
    r.add_argument("-p", "--parameter", nargs=2, action="append", metavar=("NAME", "VALUE"), default=[],
                   help="extra papermill parameter (string value), repeatable")
    r.set_defaults(handler=run)
    c = nsub.add_parser("clean", help="strip outputs and set the python3 kernel in notebooks/, solutions/, exercises/")
    c.set_defaults(handler=clean)
    ls = nsub.add_parser("list", help="list the notebooks in order")
    ls.set_defaults(handler=list_notebooks)


def run(args) -> int:
    from supersmall.errors import UserError
    from supersmall.runner import NotebookError, run_notebooks

    only = args.only.split(",") if args.only else None
    try:
        results = run_notebooks(profile=args.profile, only=only, out=args.out, cell_timeout=args.cell_timeout,
                                fail_fast=args.fail_fast, parameters=dict(args.parameter))
    except NotebookError as e:
        raise UserError(str(e)) from None
    total = sum(r.seconds for r in results)
    print(f"{len(results)} notebooks ok in {total:.0f} s; summary: {args.out}/summary.md")
    return 0


def list_notebooks(args) -> int:
    from supersmall.runner import discover, has_parameters_cell

    for path in discover():
        mark = "" if has_parameters_cell(path) else "   (no 'parameters' cell!)"
        print(f"{path.stem}{mark}")
    return 0


def clean(args) -> int:
    from supersmall.runner import REPO_ROOT, clean_notebook

    changed = [p for d in ("notebooks", "solutions", "exercises") for p in sorted((REPO_ROOT / d).glob("*.ipynb"))
               if clean_notebook(p)]
    print(f"cleaned {len(changed)} notebook(s)" + (": " + ", ".join(p.name for p in changed) if changed else ""))
    return 0
