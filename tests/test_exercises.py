import re
from pathlib import Path

import nbformat
import pytest

from supersmall.exercises import (
    SOLUTIONS_DIR,
    STUB,
    ExerciseError,
    build_exercises,
    exercise_text,
    strip_solutions,
)


def test_strip_keeps_indentation_and_code_outside():
    src = "def f(x):\n    '''doc'''\n    # BEGIN SOLUTION\n    y = x + 1\n    return y\n    # END SOLUTION\n\ncheck(f)"
    out = strip_solutions(src)
    assert out == f"def f(x):\n    '''doc'''\n    {STUB}\n\ncheck(f)"


def test_unbalanced_markers_are_errors():
    with pytest.raises(ExerciseError, match="never closed"):
        strip_solutions("# BEGIN SOLUTION\nx = 1")
    with pytest.raises(ExerciseError, match="without BEGIN"):
        strip_solutions("x = 1\n# END SOLUTION")
    with pytest.raises(ExerciseError, match="nested"):
        strip_solutions("# BEGIN SOLUTION\n# BEGIN SOLUTION\n# END SOLUTION")


def _solution(tmp_path, body):
    nb = nbformat.v4.new_notebook()
    nb.cells = [nbformat.v4.new_markdown_cell("### Exercise 9.1: x (★☆☆)"), nbformat.v4.new_code_cell(body)]
    nb.cells[1].outputs = [nbformat.v4.new_output("stream", text="old output")]
    nb.cells[1].execution_count = 4
    (tmp_path / "sol").mkdir(exist_ok=True)
    path = tmp_path / "sol" / "09_x.ipynb"
    nbformat.write(nb, str(path))
    return path


def test_build_and_check_sync(tmp_path):
    _solution(tmp_path, "def f():\n    # BEGIN SOLUTION\n    return 42\n    # END SOLUTION")
    sol, ex = tmp_path / "sol", tmp_path / "ex"
    assert [p.name for p in build_exercises(sol, ex, check=True)] == ["09_x.ipynb"]  # missing
    assert not (ex / "09_x.ipynb").exists()  # check mode writes nothing
    build_exercises(sol, ex)
    built = nbformat.read(str(ex / "09_x.ipynb"), as_version=4)
    code = [c for c in built.cells if c.cell_type == "code"][0]
    assert "return 42" not in code.source and STUB in code.source
    assert code.outputs == [] and code.execution_count is None
    assert build_exercises(sol, ex, check=True) == []  # in sync
    _solution(tmp_path, "def f():\n    # BEGIN SOLUTION\n    return 43\n    # END SOLUTION\n    # changed")
    assert build_exercises(sol, ex, check=True) != []  # stale after the solution changed
    (ex / "orphan.ipynb").write_text((ex / "09_x.ipynb").read_text())
    assert "orphan.ipynb" in [p.name for p in build_exercises(sol, ex, check=True)]


def test_solution_without_blocks_is_an_error(tmp_path):
    path = _solution(tmp_path, "print('no exercise here')")
    with pytest.raises(ExerciseError, match="no '# BEGIN SOLUTION'"):
        exercise_text(path)


def test_committed_exercises_are_in_sync():
    stale = build_exercises(check=True)
    assert stale == [], f"run `supersmall exercises build`: stale {[p.name for p in stale]}"


HEADING = re.compile(r"^### Exercise (?P<nb>\d+)\.(?P<n>\d+): .+ \((?P<stars>[★☆]{3})\)$", re.MULTILINE)


@pytest.mark.parametrize("path", sorted(SOLUTIONS_DIR.glob("*.ipynb")), ids=lambda p: p.stem)
def test_solutions_follow_the_exercise_conventions(path):
    """One '### Exercise N.M: title (★☆☆)' per solved block, N = the notebook's number, checked in its cell."""
    nb = nbformat.read(str(path), as_version=4)
    headings = [m for c in nb.cells if c.cell_type == "markdown" for m in HEADING.finditer(c.source)]
    solved = [c for c in nb.cells if c.cell_type == "code" and "# BEGIN SOLUTION" in c.source]
    assert headings and len(headings) == len(solved), f"{path.name}: {len(headings)} headings, {len(solved)} blocks"
    assert {int(m["nb"]) for m in headings} == {int(path.name[:2])}, f"{path.name}: exercise numbers"
    assert [int(m["n"]) for m in headings] == list(range(1, len(headings) + 1)), f"{path.name}: not 1, 2, ..."
    assert all(m["stars"].startswith("★") and "☆★" not in m["stars"] for m in headings)
    for cell in solved:
        assert '"""' in cell.source, f"{path.name}: the exercise's function needs a docstring stating the task"
        assert re.search(r"^check_\w+\(\w+\)$", cell.source, re.MULTILINE), f"{path.name}: no check_<name>(fn) call"


# The library call that would solve each exercise outright: its prompt (the markdown from its heading to its
# solved cell, and that cell's docstrings) must give the contract and the math, never the call.
SOLVING_CALLS = {
    "00_warmup": ["grpo.sequence_logps", "group_advantages", "policy_loss", "clipped_surrogate", "grpo.mask_after_eos",
                  "losses.aggregate"],
    "01_rewards": ["grading.extract", "grading.last_boxed", "rewards.length_penalty", "rewards.supersmall_reward"],
    "02_advantages": ["group_advantages"],
    "03_kl": ["kl_estimate", "clipped_surrogate", "policy_loss", "losses.aggregate"],
    "04_curriculum": ["cumulative_shares", "balanced_levels("],
    "05_training": ["token_weights", "torch.autograd"],
    "06_evaluation": ["stats.wilson_interval", "stats.mcnemar_exact"],
    "08_report": ["stats.decide", "stats.across_seeds"],
    "09_capstone": ["report.seeds_needed", "report.verdict"],
}


def _prompts(path: Path) -> list[str]:
    """Each exercise's prompt: markdown cells from its heading up to its solved cell, plus that cell's docstrings,
    with the solved function's own definition line removed (its name is the student's)."""
    cells = nbformat.read(str(path), as_version=4).cells
    prompts, current = [], None
    for cell in cells:
        if cell.cell_type == "markdown" and HEADING.search(cell.source):
            current = [cell.source]
        elif current is not None and cell.cell_type == "markdown":
            current.append(cell.source)
        elif current is not None and "# BEGIN SOLUTION" in cell.source:
            current += re.findall(r'"""(.*?)"""', cell.source, re.S)
            prompts.append("\n".join(current))
            current = None
    return prompts


@pytest.mark.parametrize("path", sorted(SOLUTIONS_DIR.glob("*.ipynb")), ids=lambda p: p.stem)
def test_no_exercise_prompt_names_the_call_that_solves_it(path):
    prompts = _prompts(path)
    assert prompts, path.name
    for prompt in prompts:
        named = [call for call in SOLVING_CALLS[path.stem] if call in prompt]
        assert not named, f"{path.name}: the prompt names {named}:\n{prompt[:200]}"


def test_warmup_solutions_import_only_the_checks_from_the_kit():
    """Exercise 00 is written from PyTorch alone: the kit gives only its checks."""
    cells = nbformat.read(str(SOLUTIONS_DIR / "00_warmup.ipynb"), as_version=4).cells
    code = "\n".join(c.source for c in cells if c.cell_type == "code")
    kit_imports = re.findall(r"^\s*(?:from|import) (supersmall\S*)", code, re.MULTILINE)
    assert kit_imports and set(kit_imports) == {"supersmall.checks"}, kit_imports
    assert "supersmall.losses" not in code and "supersmall.advantages" not in code
