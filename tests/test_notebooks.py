"""Every committed notebook: clean (no outputs), parameterised, and it runs.

The series runs in order on the tiny profile into one shared folder, as `make run` does (later
notebooks read the runs earlier ones left). Solutions must pass every check; exercises must run to
the end with their checks reporting "not implemented yet" instead of crashing.
"""

import re
import subprocess
import sys
from pathlib import Path

import nbformat
import pytest

from supersmall.checks import NOT_IMPLEMENTED
from supersmall.runner import REPO_ROOT, discover, run_notebooks

NOTEBOOKS = sorted((REPO_ROOT / "notebooks").glob("*.ipynb"))
SOLUTIONS = sorted((REPO_ROOT / "solutions").glob("*.ipynb"))
EXERCISES = sorted((REPO_ROOT / "exercises").glob("*.ipynb"))
ALL = NOTEBOOKS + SOLUTIONS + EXERCISES


def _rel(p: Path) -> str:
    return str(p.relative_to(REPO_ROOT))


@pytest.mark.parametrize("path", ALL, ids=_rel)
def test_committed_without_outputs(path):
    nb = nbformat.read(str(path), as_version=4)
    dirty = [i for i, c in enumerate(nb.cells) if c.cell_type == "code" and (c.outputs or c.execution_count)]
    assert not dirty, f"{_rel(path)} has outputs in cells {dirty}: run nbstripout"
    assert nb.metadata.get("kernelspec", {}).get("name") == "python3", f"{_rel(path)}: kernelspec is not python3"


def test_nbstripout_verify():
    out = subprocess.run([sys.executable, "-m", "nbstripout", "--verify", *map(str, ALL)],
                         capture_output=True, text=True)
    assert out.returncode == 0, out.stdout + out.stderr


@pytest.mark.parametrize("path", NOTEBOOKS, ids=_rel)
def test_notebook_has_parameters_cell_first(path):
    nb = nbformat.read(str(path), as_version=4)
    code = [c for c in nb.cells if c.cell_type == "code"]
    assert code and "parameters" in code[0].metadata.get("tags", []), f"{path.name}: first code cell not tagged"
    for name in ("profile", "out_dir", "runs_dir"):
        assert f"{name} =" in code[0].source, f"{path.name}: parameters cell lacks {name}"


@pytest.mark.parametrize("path", EXERCISES, ids=_rel)
def test_exercises_have_difficulty_tiers(path):
    text = "\n".join(c.source for c in nbformat.read(str(path), as_version=4).cells if c.cell_type == "markdown")
    assert "### Exercise" in text and "★" in text, f"{path.name}: exercises need '### Exercise N.M: title (★☆☆)'"


@pytest.fixture(scope="session")
def series_dir(tmp_path_factory):
    return tmp_path_factory.mktemp("series")


@pytest.mark.notebooks
@pytest.mark.parametrize("path", discover(), ids=lambda p: p.stem)  # the core series (10: tests/test_real.py)
def test_series_runs_on_tiny(path, series_dir):
    run_notebooks(profile="tiny", only=[path.stem], out=series_dir, progress=False)
    noise = library_noise(series_dir / path.name)
    assert not noise, f"{path.name}: library noise between the results (fix it at its source): {noise[:3]}"


NOISE = re.compile(r"\w+Warning: .*|Loading weights.*|Writing model shards.*|Generating \w+ split.*")


def library_noise(executed: Path) -> list[str]:
    """Lines of an executed notebook's outputs that come from libraries, not from the lesson:
    warnings, and transformers' / datasets' per-load progress bars."""
    nb = nbformat.read(str(executed), as_version=4)
    texts = [o.get("text", "") or "".join(o.get("data", {}).get("text/plain", "")) for c in nb.cells
             for o in c.get("outputs", [])]
    return [m.group(0)[:120] for t in texts for m in NOISE.finditer(t)]


def _execute(path: Path, tmp_path: Path) -> str:
    import papermill as pm

    out = tmp_path / path.name
    pm.execute_notebook(str(path), str(out), kernel_name="python3", cwd=str(path.parent), progress_bar=False)
    nb = nbformat.read(str(out), as_version=4)
    texts = []
    for cell in nb.cells:
        for o in cell.get("outputs", []):
            texts.append(o.get("text", "") or "".join(o.get("data", {}).get("text/plain", "")))
    return "\n".join(texts)


@pytest.mark.notebooks
@pytest.mark.parametrize("path", SOLUTIONS, ids=lambda p: p.stem)
def test_solutions_pass_every_check(path, tmp_path):
    text = _execute(path, tmp_path)  # a failing check raises CheckFailed -> papermill error
    assert NOT_IMPLEMENTED not in text
    assert "passed" in text


@pytest.mark.notebooks
@pytest.mark.parametrize("path", EXERCISES, ids=lambda p: p.stem)
def test_exercises_run_to_the_end(path, tmp_path):
    text = _execute(path, tmp_path)
    assert NOT_IMPLEMENTED in text


def _readme_claims() -> list[tuple[str, str, float, float]]:
    """``<!-- claim KEY PATH LOW HIGH -->`` markers in the README: a figure and the interval it states."""
    text = (REPO_ROOT / "README.md").read_text()
    return [(k, p, float(lo), float(hi)) for k, p, lo, hi in
            re.findall(r"<!-- claim (\S+) (\S+) (\S+) (\S+) -->", text)]


def _dig(value, path: str):
    for part in path.split("."):
        value = value[int(part)] if isinstance(value, list) else value[part]
    return value


def _outside(claims_file: Path) -> list[str]:
    import json

    claims = json.loads(claims_file.read_text())
    stated = _readme_claims()
    assert len(stated) >= 5, "the README states fewer measured figures than expected"
    outside = []
    for key, path, lo, hi in stated:
        value = _dig(claims[key]["value"], path)
        if not lo - 1e-9 <= value <= hi + 1e-9:
            outside.append(f"{key} {path} = {value:.4f}, README says [{lo}, {hi}]")
    return outside


@pytest.mark.notebooks
def test_readme_figures_lie_inside_the_intervals_it_states(series_dir):
    """The README's measured figures come from a series' claims.json (docs/claims.json, test_readme.py); this
    run of the series must land inside the prediction intervals the README gives."""
    outside = _outside(series_dir / "claims.json")
    assert not outside, "; ".join(outside)


# What ../shared/tools/other-cpu sets: PyTorch's own kernels, MKL and oneDNN on AVX2 code paths and one thread,
# so floating-point sums happen in another order, as on a laptop or an older server.
OTHER_CPU = {"ATEN_CPU_CAPABILITY": "avx2", "MKL_ENABLE_INSTRUCTIONS": "AVX2", "ONEDNN_MAX_CPU_ISA": "AVX2",
             "OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1"}


@pytest.fixture(scope="session")
def other_cpu_series(tmp_path_factory):
    """The whole series run as if on another machine (its own processes, the environment above)."""
    import os

    out = tmp_path_factory.mktemp("series-other-cpu")
    run = subprocess.run([sys.executable, "-m", "supersmall.cli", "notebooks", "run", "--profile", "tiny",
                          "--out", str(out)], capture_output=True, text=True, env={**os.environ, **OTHER_CPU},
                         timeout=2400)
    return out, run


@pytest.mark.notebooks
def test_series_completes_on_another_cpu(other_cpu_series):
    out, run = other_cpu_series
    assert run.returncode == 0, (run.stdout + run.stderr)[-3000:]
    assert {p.name for p in out.glob("[0-9][0-9]_*.ipynb")} == {p.name for p in NOTEBOOKS}


@pytest.mark.notebooks
def test_readme_figures_hold_on_another_cpu(other_cpu_series):
    """Another CPU trains other models from the same shipped base: every README figure must still land in
    the range it states, and the base model's accuracy must be identical."""
    import json

    out, _ = other_cpu_series
    outside = _outside(out / "claims.json")
    assert not outside, "; ".join(outside)
    here = json.loads((REPO_ROOT / "docs" / "claims.json").read_text())["00.base_eval"]["value"]
    there = json.loads((out / "claims.json").read_text())["00.base_eval"]["value"]
    assert there["accuracy"] == here["accuracy"] and there["per_level"] == here["per_level"]
