"""Build the student notebooks (``exercises/``) from the solved ones (``solutions/``).

In every code cell, the lines between ``# BEGIN SOLUTION`` and ``# END SOLUTION`` (markers
included) are replaced by ``raise NotImplementedError(...)`` at the marker's indentation. Outputs
are stripped. ``supersmall exercises build --check`` reports notebooks that are out of sync
without writing anything (a test runs it, so a stale ``exercises/`` fails CI).
"""

from __future__ import annotations

import re
from pathlib import Path

from supersmall.runner import REPO_ROOT

SOLUTIONS_DIR = REPO_ROOT / "solutions"
EXERCISES_DIR = REPO_ROOT / "exercises"
BEGIN = re.compile(r"^(?P<indent>\s*)# BEGIN SOLUTION\s*$")
END = re.compile(r"^\s*# END SOLUTION\s*$")
STUB = 'raise NotImplementedError("your code here: replace this line")'
BANNER = ("> **Student version**: generated from `solutions/{name}` by `supersmall exercises build`; "
          "edit your copy, not this file's source.")


class ExerciseError(ValueError):
    """Unbalanced or nested solution markers; the message names the notebook and cell."""


def strip_solutions(source: str, where: str = "") -> str:
    """Replace each marked block of ``source`` with an indented stub."""
    out: list[str] = []
    inside = False
    for lineno, line in enumerate(source.splitlines(), 1):
        begin, end = BEGIN.match(line), END.match(line)
        if begin:
            if inside:
                raise ExerciseError(f"{where}: nested '# BEGIN SOLUTION' at line {lineno}")
            inside = True
            out.append(f"{begin.group('indent')}{STUB}")
        elif end:
            if not inside:
                raise ExerciseError(f"{where}: '# END SOLUTION' without BEGIN at line {lineno}")
            inside = False
        elif not inside:
            out.append(line)
    if inside:
        raise ExerciseError(f"{where}: '# BEGIN SOLUTION' is never closed")
    return "\n".join(out)


def exercise_text(solution_path: str | Path) -> str:
    """The student notebook's JSON text for one solution notebook (deterministic)."""
    import nbformat

    path = Path(solution_path)
    nb = nbformat.read(str(path), as_version=4)
    n_blocks = 0
    for i, cell in enumerate(nb.cells):
        if cell.cell_type == "code":
            n_blocks += sum(1 for line in cell.source.splitlines() if BEGIN.match(line))
            cell.source = strip_solutions(cell.source, where=f"{path.name} cell {i}")
            cell.outputs = []
            cell.execution_count = None
        cell.get("metadata", {}).pop("execution", None)
    if n_blocks == 0:
        raise ExerciseError(f"{path.name} has no '# BEGIN SOLUTION' block: nothing for a student to do")
    nb.cells.insert(0, nbformat.v4.new_markdown_cell(BANNER.format(name=path.name)))
    for i, cell in enumerate(nb.cells):  # sequential ids, as nbstripout writes them
        cell.id = str(i)
    return nbformat.writes(nb) + "\n"


def build_exercises(
    solutions_dir: str | Path = SOLUTIONS_DIR,
    exercises_dir: str | Path = EXERCISES_DIR,
    check: bool = False,
) -> list[Path]:
    """Write (or with ``check=True`` only list) the exercise notebooks that differ from their source.

    Returns the paths that were written, or that are stale/missing in check mode. Exercise files
    with no solution behind them are reported as stale too.
    """
    src, dst = Path(solutions_dir), Path(exercises_dir)
    changed: list[Path] = []
    expected_names = set()
    for sol in sorted(src.glob("*.ipynb")):
        target = dst / sol.name
        expected_names.add(sol.name)
        text = exercise_text(sol)
        if not target.exists() or target.read_text() != text:
            changed.append(target)
            if not check:
                dst.mkdir(parents=True, exist_ok=True)
                target.write_text(text)
    for extra in sorted(dst.glob("*.ipynb")):
        if extra.name not in expected_names:
            changed.append(extra)
            if not check:
                extra.unlink()
    return changed
