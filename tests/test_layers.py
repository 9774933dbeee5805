"""The import-linter contract in pyproject.toml: layers face -> orchestration -> run -> data -> math (supersmall.LAYERS), and no cycles."""

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


# --- the layers written once (supersmall.LAYERS) and everywhere they are described ---------------------------------
def test_every_module_has_one_row_in_LAYERS():
    import supersmall

    package = ROOT / "supersmall"
    found = {p.stem for p in package.glob("*.py") if p.name != "__init__.py"}
    found |= {p.name for p in package.iterdir() if (p / "__init__.py").is_file()}
    assert found == set(supersmall.LAYERS), "add the module to supersmall.LAYERS (or remove its row)"
    assert {layer for layer, _, _ in supersmall.LAYERS.values()} == set(supersmall.LAYER_ORDER)
    assert all(desc and notebooks for _, desc, notebooks in supersmall.LAYERS.values())
    # the lazy attributes follow the table: every public module, nothing else
    assert supersmall._SUBMODULES == {m for m in supersmall.LAYERS if not m.startswith("_")}
    assert set(supersmall.__all__) == supersmall._SUBMODULES | {"load_profile", "__version__"}


def test_the_contract_readme_and_contributing_agree_with_LAYERS():
    from supersmall.tools import layout

    assert layout.same_layers(layout.pyproject_layers(ROOT / "pyproject.toml"), layout.contract_layers()), \
        "pyproject's import contract differs from supersmall.LAYERS: python -m supersmall.tools.layout --check"
    for path, text in layout.generated(ROOT).items():
        assert path.read_text() == text, f"{path.name} differs from supersmall.LAYERS: run python -m supersmall.tools.layout"
    assert layout.main(["--check"]) == 0


def test_the_layout_check_fails_on_each_disagreement(tmp_path, capsys):
    """A README row, a CONTRIBUTING line and a pyproject layer that disagree with LAYERS are each caught."""
    from supersmall.tools import layout

    for name in ("README.md", "CONTRIBUTING.md", "pyproject.toml"):
        shutil.copy(ROOT / name, tmp_path / name)
    assert layout.main(["--check", "--root", str(tmp_path)]) == 0
    for name, old, new in [("README.md", "| run | `grpo.py` |", "| data | `grpo.py` |"),
                           ("CONTRIBUTING.md", "`report.py`\n", "`report.py`, `pool.py`\n"),
                           ("pyproject.toml", '"experiments : pool : runner : fullscale"',
                            '"experiments : runner : fullscale"')]:
        path = tmp_path / name
        original = path.read_text()
        assert old in original, (name, old)
        path.write_text(original.replace(old, new, 1))
        assert layout.main(["--check", "--root", str(tmp_path)]) == 1, name
        assert name in capsys.readouterr().out
        path.write_text(original)
    assert not layout.same_layers(["a : b", "c"], ["c", "a : b"]) and layout.same_layers(["a : b"], ["b : a"])
