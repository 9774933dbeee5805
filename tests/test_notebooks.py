"""Every committed notebook: clean (no outputs), parameterised, and it runs.

The series runs once, in order, on the tiny profile into one folder, as `make run` does (later notebooks
read the runs earlier ones left): the session fixtures in conftest.py run it (or reuse the series of the
same code version) and every `series` check reads it, so each can run alone. Solutions must pass every check; exercises must run to
the end with their checks reporting "not implemented yet" instead of crashing.
"""

import re
import subprocess
import sys
from pathlib import Path

import nbformat
import pytest

from supersmall.checks import NOT_IMPLEMENTED
from supersmall.runner import REPO_ROOT, discover

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


def test_every_test_is_in_exactly_one_tier():
    from conftest import tier_of

    assert tier_of(set()) == "fast" and tier_of({"parametrize", "slow"}) == "slow"
    with pytest.raises(ValueError, match="exactly one tier"):
        tier_of({"slow", "notebooks"})


def test_a_complete_series_of_the_same_code_is_reused_without_running(tmp_path, monkeypatch):
    import json

    from conftest import finish_series, series_key, series_root

    monkeypatch.setenv("SUPERSMALL_CACHE_DIR", str(tmp_path))
    folder = series_root() / series_key("tiny")
    assert folder.parent == tmp_path / "series" and series_key("tiny") != series_key("other-cpu")
    folder.mkdir(parents=True)
    (folder / "run_card.json").write_text(json.dumps({"status": "complete"}))
    monkeypatch.setattr(subprocess, "Popen", lambda *a, **k: pytest.fail("a complete series was run again"))
    out, run = finish_series("tiny", {})
    assert out == folder and run.returncode == 0 and "reused" in run.stdout


def test_a_stopped_series_reports_the_running_cell_the_slowest_cells_and_its_runs_times(tmp_path):
    import json

    from conftest import series_report

    (tmp_path / "summary.json").write_text(json.dumps({"results": [{"notebook": "00_setup.ipynb", "seconds": 30.0}]}))
    cell = lambda src, **pm: {"cell_type": "code", "source": src, "metadata": {"papermill": pm}}  # noqa: E731
    (tmp_path / "01_reward_design.ipynb").write_text(json.dumps({"cells": [
        cell("x = 1", status="completed", duration=0.5),
        cell("PLAN = experiments.run_pilot_and_plan(P, runs_dir)\nmore", status="completed", duration=41.0),
        cell("runs = experiments.run(P, ...)", status="running", start_time="2026-12-07T10:00:05+00:00"),
        cell("print(runs)", status="pending")]}))
    for i, seconds in enumerate((12.0, 900.0)):
        run = tmp_path / "shared" / "zerogrpo" / f"seed{i}"
        (run / "eval" / "final").mkdir(parents=True)
        (run / "run_card.json").write_text(json.dumps({"kind": "train", "timings": {"train_seconds": seconds},
                                                       "metrics": {"seconds_per_step": seconds / 12}}))
        (run / "eval" / "final" / "run_card.json").write_text(json.dumps({"kind": "eval",
                                                                          "timings": {"eval_seconds": 2.0}}))
    (tmp_path / "run_card.json").write_text(json.dumps({"kind": "series", "timings": {"train_seconds": 1e9}}))
    lines = series_report(tmp_path)
    assert lines[0].endswith("30 s in 1 notebooks; seconds per notebook: 00 30")
    assert "  still running when stopped: 01 cell 2 (runs = experiments.run(P, ...)), started 10:00:05 UTC" in lines
    assert lines.index("  slow cell: 41 s 01 cell 1 (PLAN = experiments.run_pilot_and_plan(P, runs_dir))") \
        < lines.index("  slow cell: 0 s 01 cell 0 (x = 1)")
    assert lines[-1] == "  training runs: 2, 912 s in all, slowest 900 s (75.0 s/step); evaluations: 2, 4 s in all"


# The series runs once, as the session fixtures ``series`` / ``series_dir`` / ``other_cpu_series`` in
# conftest.py (cached per code version): every check below reads it, any one of them can run alone.
@pytest.mark.series
def test_series_completes_on_tiny(series):
    from conftest import machine_line, series_report

    out, run = series
    assert run.returncode == 0, "\n".join([(run.stdout + run.stderr)[-3000:], machine_line(), *series_report(out)])


@pytest.mark.series
@pytest.mark.parametrize("path", discover(), ids=lambda p: p.stem)  # the core series (10: tests/test_real.py)
def test_series_notebook_ok_without_library_noise(path, series_dir):
    import json

    summary = series_dir / "summary.json"
    assert summary.is_file(), f"the series wrote no summary (see {series_dir / 'series.log'})"
    results = {r["notebook"]: r for r in json.loads(summary.read_text())["results"]}
    assert path.name in results, f"{path.name} did not run (see {series_dir / 'series.log'})"
    assert results[path.name]["status"] == "ok", results[path.name]["error"]
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


def _readme_claims() -> list[tuple[str, int, float]]:
    """The README's pre-registered strong figures, ``<!-- margin KEY DIRECTION MARGIN -->``: a figure, the side it
    must lie on and the margin a one-sided test must clear on any machine."""
    text = (REPO_ROOT / "README.md").read_text()
    return [(k, int(d), float(m)) for k, d, m in re.findall(r"<!-- margin (\S+) ([+-]1) (\S+) -->", text)]


def _dig(value, path: str):
    for part in path.split("."):
        value = value[int(part)] if isinstance(value, list) else value[part]
    return value


def _outside(claims_file: Path) -> list[str]:
    """What a rerun's claims.json fails of the README's checks: each pre-registered figure's one-sided margin test
    (supersmall.tools.readme.margin_test) and each figure the README states as exact on every machine."""
    import json

    from supersmall.tools import readme

    claims = json.loads(claims_file.read_text())
    stated = _readme_claims()
    assert len(stated) >= 3, "the README states fewer pre-registered figures than expected"
    failed = []
    for key, direction, margin in stated:
        figure = next(f for f in readme.PREREGISTERED if f.key == key)
        try:
            res = readme.margin_test(figure.values(claims), direction, margin, figure.ses(claims))
        except KeyError:
            failed.append(f"{key}: missing from {claims_file}")
            continue
        if not res["passed"]:
            failed.append(f"{key}: one-sided bound {res['bound']:.4f} does not clear the margin {margin} "
                          f"(mean {res['mean']:.4f}, {res['n_seeds']} seeds)")
    text = (REPO_ROOT / "README.md").read_text()
    for key, path, value in re.findall(r"<!-- exact (\S+) (\S+) (\S+) -->", text):
        got = _dig(claims[key]["value"], path)
        if f"{got:.4f}" != value:
            failed.append(f"{key} {path} = {got:.4f}, README says exactly {value}")
    return failed


@pytest.mark.series
def test_readme_figures_pass_their_rerun_checks(series_dir):
    """The README's figures come from a series' claims.json (docs/claims.json, test_readme.py); this run of the
    series must pass the pre-registered margin tests, and on the machine and code version that wrote
    docs/claims.json every per-seed figure must be the recorded one, bit for bit."""
    import json

    from supersmall.tools import readme

    outside = _outside(series_dir / "claims.json")
    assert not outside, "; ".join(outside)
    here = json.loads((REPO_ROOT / "docs" / "claims.json").read_text())
    now = json.loads((series_dir / "claims.json").read_text())
    mismatches = readme.exact_mismatches(now, here)
    assert not mismatches, "; ".join(mismatches[:10])


@pytest.mark.series
def test_series_completes_on_another_cpu(other_cpu_series):
    out, run = other_cpu_series
    assert run.returncode == 0, (run.stdout + run.stderr)[-3000:]
    assert {p.name for p in out.glob("[0-9][0-9]_*.ipynb")} == {p.name for p in discover()}


@pytest.mark.series
def test_readme_figures_hold_on_another_cpu(other_cpu_series):
    """Another CPU trains other models from the same shipped base: the pre-registered figures must still pass
    their margin tests, and the base model's accuracy must be identical."""
    import json

    out, _ = other_cpu_series
    outside = _outside(out / "claims.json")
    assert not outside, "; ".join(outside)
    here = json.loads((REPO_ROOT / "docs" / "claims.json").read_text())["00.base_eval"]["value"]
    there = json.loads((out / "claims.json").read_text())["00.base_eval"]["value"]
    assert there["accuracy"] == here["accuracy"] and there["per_level"] == here["per_level"]
