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


# The slower tiers' longest modules, longest first (fresh-clone --durations on 2 cores: notebook 10 ~190 s in
# test_real.py, the vLLM rehearsal ~250 s, the mutants ~80 s each beside the vLLM rehearsal, the LoRA rehearsal
# ~170 s, the tiny rebuild ~140 s). `make test` runs the slow tier with --dist loadscope --no-loadscope-reorder (a
# worker takes whole modules in this order) and the notebooks tier with --dist load: the long ones start first,
# so the two workers end close together instead of one waiting on a long test handed out last.
LONG_FIRST = ("test_real.py", "test_rehearsal_vllm.py", "tools/test_readme.py", "test_rehearsal_vllm_lora.py",
              "test_tiny.py")


def _long_first(item) -> int:
    path = item.nodeid.split("::")[0]
    return next((i for i, name in enumerate(LONG_FIRST) if path == f"tests/{name}"), len(LONG_FIRST))


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
SERIES_TIMEOUT_S = 2400


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
    except subprocess.TimeoutExpired:
        proc.kill()
        code = proc.wait()
    return out, subprocess.CompletedProcess(cmd, code, (out / "series.log").read_text(), "")


def _wanted(request, fixture: str) -> bool:
    """Whether any selected test uses ``fixture``: then its series starts beside the one asked for, so the two
    series share the machine's two cores instead of running one after the other."""
    return any(fixture in getattr(item, "fixturenames", ()) for item in request.session.items)


def pytest_terminal_summary(terminalreporter):
    """After the tests: the seconds of each notebook of every series this session ran (not the reused ones),
    so the CI log keeps them (the two series ran side by side: each notebook beside one busy process)."""
    import json

    for out, proc, _ in _RUNNING.values():
        summary = out / "summary.json"
        if proc is None or not summary.is_file():
            continue
        results = json.loads(summary.read_text())["results"]
        times = ", ".join(f"{r['notebook'][:2]} {r['seconds']:.0f}" for r in results)
        terminalreporter.write_line(f"series {out.name}: {sum(r['seconds'] for r in results):.0f} s; "
                                    f"seconds per notebook: {times}")


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
