"""One report from the folders of several hosts: ``supersmall replicate --shard i/n`` on each host trains and
evaluates a disjoint share of the seeds (the base on shard 0); :func:`merge` gathers every shard's evaluations
into one folder and writes the report with :func:`supersmall.report.write_report`, exactly as one host would.

    merge(["runs/host0", "runs/host1"], "runs/all")    # runs/all/eval/<name>/ + runs/all/report/

Shards are merged only when they are one series (the same config and code version, :func:`supersmall.runcard.
series_key`) and their training runs were made by the same code: anything else is one sentence, never a
silent merge.
"""

from __future__ import annotations

import shutil
from pathlib import Path

from supersmall import report
from supersmall.errors import UserError
from supersmall.runcard import find_run_cards, read_run_card


def _finished(root: Path, kind: str) -> list[tuple[Path, dict]]:
    cards = [(path.parent, read_run_card(path)) for path in find_run_cards(root, kind=kind)]
    return [(folder, card) for folder, card in cards if card.get("status") == "complete"]


def _series(root: Path) -> str | None:
    """The series a report of ``root`` alone takes: that of its newest finished evaluation."""
    evals = _finished(root, "eval")
    if not evals:
        return None
    newest = max(evals, key=lambda fc: (fc[1].get("created") or "", (fc[0] / "run_card.json").stat().st_mtime))
    return newest[1].get("series")


def check(run_dirs: list[str | Path]) -> str:
    """The one series of the shards' folders; a UserError sentence when a folder holds no finished evaluation,
    or when the folders differ in series (config or code version) or in the code that trained them."""
    roots = [Path(d) for d in run_dirs]
    if len(set(map(Path.resolve, roots))) < len(roots):
        raise UserError("a folder is named twice in --runs: name each shard's folder once")
    series: dict[Path, str | None] = {}
    for root in roots:
        if not root.is_dir():
            raise UserError(f"{root} is not a folder: pass the --out folder of each replicate --shard run")
        series[root] = _series(root)
        if series[root] is None:
            raise UserError(f"{root} holds no finished evaluation: finish replicate --shard there first, or leave "
                            "it out of --runs")
    if len(set(series.values())) > 1:
        seen = ", ".join(f"{root} has series {s}" for root, s in series.items())
        raise UserError(f"the shards differ in config or code version ({seen}): rerun the odd shard with the same "
                        "code, profile and --set options, then merge")
    code = {root: {c.get("code_version") for _, c in _finished(root, "train")} - {None} for root in roots}
    versions = set().union(*code.values())
    if len(versions) > 1:
        seen = ", ".join(f"{root} by {', '.join(sorted(v))}" for root, v in code.items() if v)
        raise UserError(f"the shards' training runs were made by different code ({seen}): retrain the odd shard with "
                        "the same code version, then merge")
    return next(iter(series.values()))  # type: ignore[return-value]


def merge(run_dirs: list[str | Path], out_dir: str | Path) -> dict[str, Path]:
    """Copy every shard's evaluations of the one series (:func:`check`) into ``out_dir/eval/`` and write
    ``out_dir/report/`` (verdicts.json, report.md, report.html) from them. Two shards holding an evaluation of
    the same name overlap: a UserError, as is an ``out_dir`` already holding another evaluation of that name."""
    series = check(run_dirs)
    out = Path(out_dir)
    sources: dict[str, Path] = {}
    for root in map(Path, run_dirs):
        for folder, card in _finished(root, "eval"):
            if card.get("series") != series:
                continue
            name = folder.relative_to(root).as_posix()
            if name in sources:
                raise UserError(f"{name} is in both {sources[name]} and {folder}: the shards overlap; run every "
                                "host with --shard i/n with the same n and a different i")
            sources[name] = folder
    for name, folder in sources.items():
        dest = out / name
        if dest.resolve() == folder.resolve():
            continue  # --out is one of the shards' folders: its own evaluations are already there
        if dest.exists():
            raise UserError(f"{dest} already exists and is not a shard's: choose an empty --out")
        shutil.copytree(folder, dest)
    return report.write_report(out, out / "report", series=series)
