"""The import-linter contract in pyproject.toml: layers face -> run -> data -> math, and no cycles."""

import shutil
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
LINT = [sys.executable, "-c", "import sys; from importlinter.cli import lint_imports_command; "
        "sys.exit(lint_imports_command())"]


def _lint(cwd: Path) -> subprocess.CompletedProcess:
    return subprocess.run(LINT, cwd=cwd, capture_output=True, text=True, env={"PYTHONPATH": str(cwd), "PATH": ""})


def test_the_library_keeps_its_layers_and_has_no_cycles():
    out = _lint(ROOT)
    assert out.returncode == 0, out.stdout + out.stderr
    assert "2 kept, 0 broken" in out.stdout


def test_a_back_edge_breaks_the_contract(tmp_path):
    shutil.copytree(ROOT / "supersmall", tmp_path / "supersmall", ignore=shutil.ignore_patterns("fixtures"))
    shutil.copy(ROOT / "pyproject.toml", tmp_path / "pyproject.toml")
    grading = tmp_path / "supersmall" / "grading.py"
    grading.write_text(grading.read_text() + "\nfrom supersmall import train  # a math module importing the run layer\n")
    out = _lint(tmp_path)
    assert out.returncode != 0
    assert "supersmall.grading -> supersmall.train" in out.stdout and "BROKEN" in out.stdout
