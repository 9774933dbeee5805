"""Shared test setup: offline, quiet, deterministic; the test tiers; the notebook series as one fixture.

Tiers (README "Tests and CI"; ``make test`` runs them in this order, ``make test-fast`` the first only).
Every test is in exactly one: a test with no tier marker is ``fast`` (the marker is added here), and a test
with two tier markers is a collection error.

- ``fast``: unit tests, seconds each;
- ``slow``: over a few seconds (a tiny training run, a tiny-model build, processes started and killed);
- ``notebooks``: solutions and exercises executed one by one with papermill, notebook 07 on a6000x4;
- ``rehearsal``: the full-scale path on CPU under torchrun (notebooks 07-08 on the rehearsal profile, the canary);
- ``series``: checks of the notebook series on the tiny profile, which runs once, as the fixtures below.
"""

from __future__ import annotations

import hashlib
import os
import subprocess
import sys
from pathlib import Path

import pytest

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("HF_DATASETS_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
os.environ.setdefault("MPLBACKEND", "Agg")

REPO_ROOT = Path(__file__).resolve().parent.parent
TIERS = ("fast", "slow", "notebooks", "rehearsal", "series")


def tier_of(marker_names: set[str]) -> str:
    """The one tier of a test with these marker names: ``fast`` when it has none; two is an error."""
    tiers = [t for t in TIERS if t in marker_names]
    if len(tiers) > 1:
        raise ValueError(f"a test is in exactly one tier, this one has {tiers}")
    return tiers[0] if tiers else "fast"


# The slower tiers' longest modules, longest first (--durations of the slow tier on 2 cores: the vLLM rehearsal
# ~240 s, the LoRA rehearsal ~200-230 s, the tiny rebuild ~140 s, the mutants ~35 s each; notebook 10 ~270 s in
# test_real.py, alone in the notebooks tier). `make test` runs the slow tier with --dist loadscope
# --no-loadscope-reorder (each worker takes two modules in this order to start with, then one at a time) and the
# notebooks tier with --dist load: the two vLLM rehearsals start at once on the two workers, so the workers end
# close together (slow tier 560 s here, against 635 s with both rehearsals on one worker, two runs back to back).
LONG_FIRST = ("test_rehearsal_vllm.py", "test_rehearsal_vllm_lora.py", "test_real.py", "tools/test_readme.py",
              "test_tiny.py")


def _long_first(item) -> int:
    path = item.nodeid.split("::")[0]
    return next((i for i, name in enumerate(LONG_FIRST) if path == f"tests/{name}"), len(LONG_FIRST))


def pytest_configure(config):
    """Every test process (pytest-xdist's workers too) runs torch on the kit's thread count, one unless
    ``SUPERSMALL_THREADS`` says otherwise, as every notebook and pool worker does
    (:func:`supersmall.runcard.use_threads`). Tests that train in their own process (the mutants) otherwise run on
    torch's default of one thread per core, which stalls whenever another tier's process shares the machine:
    notebook 10 short took 272 s on one thread beside one busy process, and on two threads beside it had not
    finished after 840 s (161 s on two threads alone)."""
    from supersmall.runcard import use_threads

    use_threads()


def pytest_collection_modifyitems(config, items):
    items.sort(key=_long_first)  # stable: the order within a module, and of the other modules, is kept
    wrong = []
    for item in items:
        try:
            tier = tier_of({m.name for m in item.iter_markers()})
        except ValueError as e:
            wrong.append(f"{item.nodeid}: {e}")
            continue
        if tier == "fast":
            item.add_marker(pytest.mark.fast)
    if wrong:
        raise pytest.UsageError("tests in more than one tier:\n" + "\n".join(wrong))


# --- the notebook series, run once per code version ----------------------------------------------------------
# What ../shared/tools/other-cpu sets: PyTorch's own kernels, MKL and oneDNN on AVX2 code paths and one thread,
# so floating-point sums happen in another order, as on a laptop or an older server.
OTHER_CPU = {"ATEN_CPU_CAPABILITY": "avx2", "MKL_ENABLE_INSTRUCTIONS": "AVX2", "ONEDNN_MAX_CPU_ISA": "AVX2",
             "OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1"}
# A series takes 1,250-1,330 s side by side in fresh-clone checks here. CI once spent 1,773 s in notebook 01 of the
# tiny series alone (the other series was not slowed), and 2,400 s stopped it at notebook 05 (4780ee2); the limit
# leaves room for that and still ends a hung series within CI's 90 minutes, and pytest_terminal_summary prints
# where the time went.
SERIES_TIMEOUT_S = 3300


def series_key(name: str) -> str:
    """``<name>-<code version>-<notebooks hash>``: the same code and notebooks reuse a series, any edit reruns it."""
    from supersmall.runcard import code_version

    h = hashlib.sha256()
    for nb in sorted((REPO_ROOT / "notebooks").glob("*.ipynb")):
        h.update(nb.name.encode() + b"\0" + nb.read_bytes())
    return f"{name}-{code_version()}-{h.hexdigest()[:8]}"


def series_root() -> Path:
    """``$SUPERSMALL_CACHE_DIR/series`` (CI sets it), else ``.cache/supersmall/series`` in the repository."""
    return Path(os.environ.get("SUPERSMALL_CACHE_DIR") or REPO_ROOT / ".cache" / "supersmall") / "series"


_RUNNING: dict[Path, tuple[Path, subprocess.Popen | None, list[str]]] = {}  # by folder: started once


def start_series(name: str, env: dict[str, str]) -> Path:
    """Start the whole series (``supersmall notebooks run --profile tiny``) in its own process with ``env``
    added, into ``series_root()/series_key(name)``, unless that folder holds a complete series (reused) or it
    is already running. A folder left by an interrupted or failed series is run again in place (finished
    training runs in it are reused). Its output goes to ``series.log`` there."""
    import json

    out = series_root() / series_key(name)
    if out in _RUNNING:
        return out
    card = out / "run_card.json"
    cmd = [sys.executable, "-m", "supersmall.cli", "notebooks", "run", "--profile", "tiny", "--out", str(out)]
    if card.is_file() and json.loads(card.read_text()).get("status") == "complete":
        _RUNNING[out] = (out, None, cmd)
        return out
    out.mkdir(parents=True, exist_ok=True)
    log = open(out / "series.log", "w")  # noqa: SIM115 - closed when the process is waited for
    proc = subprocess.Popen(cmd, stdout=log, stderr=subprocess.STDOUT, text=True, env={**os.environ, **env},
                            cwd=REPO_ROOT)
    log.close()  # the child holds its own copy
    _RUNNING[out] = (out, proc, cmd)
    return out


def finish_series(name: str, env: dict[str, str]) -> tuple[Path, subprocess.CompletedProcess]:
    """(its folder, the finished process) of the series ``name``, started here if it was not yet."""
    out, proc, cmd = _RUNNING[start_series(name, env)]
    if proc is None:
        return out, subprocess.CompletedProcess(cmd, 0, f"reused the complete series in {out}\n", "")
    try:
        code = proc.wait(timeout=SERIES_TIMEOUT_S)
        stopped = ""
    except subprocess.TimeoutExpired:
        proc.kill()
        code = proc.wait()
        stopped = f"\nstopped: the series ran past SERIES_TIMEOUT_S = {SERIES_TIMEOUT_S} s (tests/conftest.py)\n"
    return out, subprocess.CompletedProcess(cmd, code, (out / "series.log").read_text() + stopped, "")


def _wanted(request, fixture: str) -> bool:
    """Whether any selected test uses ``fixture``: then its series starts beside the one asked for, so the two
    series share the machine's two cores instead of running one after the other."""
    return any(fixture in getattr(item, "fixturenames", ()) for item in request.session.items)


def machine_line() -> str:
    """What a series' speed depends on, in one line: the machine as claims record it (CPU model, torch, its
    kernels and threads: :func:`supersmall.experiments.machine`), the cores and the load."""
    from supersmall.experiments import machine

    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
    load = ", ".join(f"{x:.1f}" for x in os.getloadavg()) if hasattr(os, "getloadavg") else "?"
    return f"machine: {machine()}; {os.cpu_count()} CPUs ({cores} usable); load average {load}"


def series_report(out: Path, slowest: int = 5) -> list[str]:
    """Where a series' time went, from what it left in ``out`` (complete or not): seconds per notebook, the
    slowest cells (papermill's per-cell times; a cell still running when the series was stopped is named with
    its start), and its training runs' own times (train and eval seconds from their run cards). A failing or
    slow series in CI is read from this, as CI keeps only the log."""
    import json
    from datetime import datetime

    lines = []
    summary = out / "summary.json"
    results = json.loads(summary.read_text())["results"] if summary.is_file() else []
    times = ", ".join(f"{r['notebook'][:2]} {r['seconds']:.0f}" for r in results)
    lines.append(f"series {out.name}: {sum(r['seconds'] for r in results):.0f} s in {len(results)} notebooks; "
                 f"seconds per notebook: {times or 'none finished'}")
    cells = []
    for nb in sorted(out.glob("*.ipynb")):
        for i, cell in enumerate(json.loads(nb.read_text()).get("cells", [])):
            pm = cell.get("metadata", {}).get("papermill", {})
            first = "".join(cell.get("source", "")).strip().splitlines()[:1]
            where = f"{nb.stem[:2]} cell {i} ({(first[0] if first else '')[:60]})"
            if pm.get("status") == "running" and pm.get("start_time"):
                since = datetime.fromisoformat(pm["start_time"])
                lines.append(f"  still running when stopped: {where}, started {since:%H:%M:%S} UTC")
            elif pm.get("duration"):
                cells.append((pm["duration"], where))
    lines += [f"  slow cell: {s:.0f} s {where}" for s, where in sorted(cells, reverse=True)[:slowest]]
    cards = [json.loads(c.read_text()) for c in out.rglob("run_card.json") if c.parent != out]
    seconds = {kind: [((c.get("timings") or {}).get(f"{kind}_seconds", 0.0), c) for c in cards if c.get("kind") == kind]
               for kind in ("train", "eval")}
    if seconds["train"]:
        longest, worst = max(seconds["train"], key=lambda pair: pair[0])
        lines.append(f"  training runs: {len(seconds['train'])}, {sum(t for t, _ in seconds['train']):.0f} s in all, "
                     f"slowest {longest:.0f} s ({(worst.get('metrics') or {}).get('seconds_per_step', '?')} s/step); "
                     f"evaluations: {len(seconds['eval'])}, {sum(t for t, _ in seconds['eval']):.0f} s in all")
    return lines


def pytest_terminal_summary(terminalreporter):
    """After the tests: where the time of every series this session ran (not the reused ones) went, per
    notebook, slowest cells and training runs, and on what machine, so the CI log keeps it (the two series ran
    side by side: each notebook beside one busy process)."""
    ran = [out for out, proc, _ in _RUNNING.values() if proc is not None]
    if ran:
        terminalreporter.write_line(machine_line())
    for out in ran:
        for line in series_report(out):
            terminalreporter.write_line(line)


@pytest.fixture(scope="session")
def series(request) -> tuple[Path, subprocess.CompletedProcess]:
    """The notebook series on the tiny profile, as ``make run`` runs it: (its folder, the finished process)."""
    if _wanted(request, "other_cpu_series"):
        start_series("other-cpu", OTHER_CPU)
    return finish_series("tiny", {})


@pytest.fixture(scope="session")
def series_dir(series) -> Path:
    """The folder of :func:`series`: executed notebooks, ``summary.json``, ``claims.json``."""
    return series[0]


@pytest.fixture(scope="session")
def other_cpu_series(request) -> tuple[Path, subprocess.CompletedProcess]:
    """The whole series run as if on another machine (its own processes, ``OTHER_CPU`` set)."""
    if _wanted(request, "series"):
        start_series("tiny", {})
    return finish_series("other-cpu", OTHER_CPU)

# --- vLLM's CPU build (the GPU host's stack, rehearsed): its own environment, built by `make vllm-env` -------
VLLM_PYTHON = Path(os.environ.get("SUPERSMALL_VLLM_PYTHON",
                                  Path(__file__).resolve().parents[1] / ".venv-vllm" / "bin" / "python"))


@pytest.fixture(scope="session")
def vllm_python() -> Path:
    """The python of the vLLM environment (``.venv-vllm``, or ``$SUPERSMALL_VLLM_PYTHON``); tests that run vLLM
    for real run their code there in a subprocess. Skipped where it is not built; CI (``CI`` set) builds it, so
    there a missing environment fails instead of skipping."""
    if not VLLM_PYTHON.is_file():
        (pytest.fail if os.environ.get("CI") else pytest.skip)(
            f"no vLLM environment at {VLLM_PYTHON}: run `make vllm-env` (vLLM's CPU build, ~4 GB) to run the vLLM tests here")
    return VLLM_PYTHON
