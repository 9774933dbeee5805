import contextlib
import json
import os
import signal
import subprocess
import sys
import time

import nbformat
import pytest

from supersmall.runcard import read_run_card
from supersmall.runner import REPO_ROOT, NotebookError, discover, has_parameters_cell, run_notebooks


def _nb(path, cells, params=True):
    nb = nbformat.v4.new_notebook()
    nb.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3", "language": "python"}
    first = nbformat.v4.new_code_cell('profile = "tiny"\nout_dir = "x"\nruns_dir = "y"')
    if params:
        first.metadata["tags"] = ["parameters"]
    nb.cells = [first] + [nbformat.v4.new_code_cell(c) for c in cells]
    nbformat.write(nb, str(path))


@pytest.fixture
def folder(tmp_path):
    d = tmp_path / "notebooks"
    d.mkdir()
    _nb(d / "01_ok.ipynb", ["import pathlib\npathlib.Path(out_dir).mkdir(parents=True)\n"
                            "pathlib.Path(out_dir, 'seen.txt').write_text(profile + '|' + runs_dir)"])
    return d


def test_runs_in_order_and_injects_parameters(folder, tmp_path):
    _nb(folder / "02_ok.ipynb", ["print('second')"])
    out = tmp_path / "out"
    results = run_notebooks(profile="tiny", out=out, notebooks_dir=folder, progress=False)
    assert [r.notebook for r in results] == ["01_ok.ipynb", "02_ok.ipynb"]
    assert all(r.status == "ok" for r in results)
    assert (out / "01_ok" / "seen.txt").read_text() == f"tiny|{out}"
    summary = json.loads((out / "summary.json").read_text())
    assert [r["status"] for r in summary["results"]] == ["ok", "ok"]
    assert "| 01_ok.ipynb | ok |" in (out / "summary.md").read_text()
    assert (out / "01_ok.ipynb").exists()  # executed copy
    card = read_run_card(out)
    assert card["kind"] == "notebooks" and card["metrics"]["ok"] == 2


@pytest.mark.skipif(os.name == "nt", reason="Unix sockets")
def test_kernels_talk_over_unix_sockets_without_a_warning_per_notebook(folder, tmp_path, capfd):
    _nb(folder / "02_ok.ipynb", ["import os, json, ipykernel.connect\n"
                                 "print(json.load(open(ipykernel.connect.get_connection_file()))['transport'])"])
    results = run_notebooks(profile="tiny", out=tmp_path / "out", notebooks_dir=folder, progress=False)
    assert [r.status for r in results] == ["ok", "ok"]
    assert nbformat.read(str(tmp_path / "out" / "02_ok.ipynb"), 4).cells[-1].outputs[0]["text"] == "ipc\n"
    assert "without encryption" not in capfd.readouterr().err  # ipykernel 7 warns once per kernel on TCP


@pytest.mark.skipif(os.name == "nt", reason="Unix sockets")
def test_a_finished_kernel_is_shut_down_without_an_interrupt(tmp_path):
    """jupyter_client sends SIGINT before its shutdown request; ipykernel 7 logged "KeyboardInterrupt caught in
    kernel." for it on make run's console at times. The runner's manager shuts an idle kernel down without it."""
    import asyncio
    import signal

    from supersmall.runner import _kernel_manager

    async def signals_at_shutdown() -> list[int]:
        km = _kernel_manager(str(tmp_path))(kernel_name="python3")
        await km.start_kernel()
        sent, send = [], km._async_signal_kernel

        async def record(signum):
            sent.append(signum)
            await send(signum)

        km._async_signal_kernel = record
        await km.shutdown_kernel()
        return sent

    assert signal.SIGINT not in asyncio.run(signals_at_shutdown())


def test_failure_names_notebook_cell_and_exception(folder, tmp_path):
    _nb(folder / "02_bad.ipynb", ["x = 1", "raise ValueError('boom')"])
    _nb(folder / "03_after.ipynb", ["print('still runs')"])
    out = tmp_path / "out"
    with pytest.raises(NotebookError) as e:
        run_notebooks(profile="tiny", out=out, notebooks_dir=folder, progress=False)
    msg = str(e.value)
    assert "02_bad.ipynb" in msg and "cell" in msg and "ValueError: boom" in msg
    statuses = {r["notebook"]: r["status"] for r in json.loads((out / "summary.json").read_text())["results"]}
    assert statuses == {"01_ok.ipynb": "ok", "02_bad.ipynb": "failed", "03_after.ipynb": "ok"}
    assert read_run_card(out)["status"] == "failed"


def test_fail_fast_stops(folder, tmp_path):
    _nb(folder / "00_bad.ipynb", ["raise RuntimeError('stop')"])
    with pytest.raises(NotebookError):
        run_notebooks(out=tmp_path / "o", notebooks_dir=folder, fail_fast=True, progress=False)
    statuses = [r["status"] for r in json.loads((tmp_path / "o" / "summary.json").read_text())["results"]]
    assert statuses == ["failed", "not run"]


def test_missing_parameters_cell_is_an_error_before_running(folder, tmp_path):
    _nb(folder / "02_noparams.ipynb", ["print(1)"], params=False)
    assert not has_parameters_cell(folder / "02_noparams.ipynb")
    with pytest.raises(NotebookError, match="no cell tagged 'parameters' in 02_noparams.ipynb"):
        run_notebooks(out=tmp_path / "o", notebooks_dir=folder, progress=False)
    assert not (tmp_path / "o" / "01_ok.ipynb").exists()  # nothing ran


def test_only_and_unknown_prefix(folder):
    assert [p.name for p in discover(folder, only=["01"])] == ["01_ok.ipynb"]
    _nb(folder / "10_real.ipynb", ["pass"])  # outside the core series: run only when named
    assert [p.name for p in discover(folder)] == ["01_ok.ipynb"]
    assert [p.name for p in discover(folder, only=["01", "10"])] == ["01_ok.ipynb", "10_real.ipynb"]
    with pytest.raises(NotebookError, match="--only 07 matches no notebook"):
        discover(folder, only=["07"])


def test_cli_exit_status_without_traceback(tmp_path):
    out = subprocess.run([sys.executable, "-m", "supersmall.cli", "notebooks", "run", "--only", "99",
                          "--out", str(tmp_path)], capture_output=True, text=True)
    assert out.returncode == 2
    assert "matches no notebook" in out.stderr and "Traceback" not in out.stderr


BUSY = '''
import pathlib, os, sys, time


def work(folder, seconds):
    """A training worker's stand-in: a grader worker of its own, then a core kept busy."""
    from supersmall import grading

    assert grading.is_parsable("\\\\frac{1}{2}")  # starts a math-verify worker under this process
    pathlib.Path(folder, f"worker-{os.getpid()}").write_text("")
    end = time.time() + seconds
    while time.time() < end:
        pass
'''

def _alive(proc) -> bool:
    """Running, and not a zombie waiting for init to reap it."""
    import psutil

    try:
        return proc.is_running() and proc.status() != psutil.STATUS_ZOMBIE
    except psutil.NoSuchProcess:
        return False


KILL_CASES = [("run", signal.SIGTERM), ("run", signal.SIGKILL), ("kernel", signal.SIGKILL)]


@pytest.mark.slow
@pytest.mark.parametrize("target, sig", KILL_CASES, ids=[f"{t}-{s.name}" for t, s in KILL_CASES])
def test_killing_a_run_mid_notebook_leaves_no_process(tmp_path, target, sig):
    """A notebook that does what notebooks 03-05 do (training workers from supersmall.pool, each grading
    with supersmall.grading's worker, a grader worker in the kernel too), killed mid-cell: the run
    (SIGTERM, SIGKILL) or its kernel (SIGKILL). Every process under the run must be gone seconds later."""
    import psutil

    (tmp_path / "busy.py").write_text(BUSY)
    nbs = tmp_path / "notebooks"
    nbs.mkdir()
    _nb(nbs / "00_busy.ipynb", [
        "import busy\nfrom supersmall import grading, pool\n"
        "assert grading.is_parsable('\\\\frac{1}{2}')\n"  # a grader worker under the kernel
        f"ex = pool.executor(2)\nfutures = [ex.submit(busy.work, {str(tmp_path)!r}, 600) for _ in range(2)]\n"
        "[f.result() for f in futures]"])
    code = (f"from supersmall.runner import run_notebooks; run_notebooks(notebooks_dir={str(nbs)!r}, "
            f"out={str(tmp_path / 'out')!r}, progress=False)")
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(tmp_path), str(REPO_ROOT)])}
    run = subprocess.Popen([sys.executable, "-c", code], env=env, stdout=subprocess.DEVNULL,
                           stderr=subprocess.DEVNULL)
    tree: list[psutil.Process] = []
    try:
        deadline = time.time() + 300  # kernel start and two workers importing torch, on a busy machine
        while len(list(tmp_path.glob("worker-*"))) < 2:
            assert run.poll() is None and time.time() < deadline, "the notebook never got its workers busy"
            time.sleep(0.5)
        tree = psutil.Process(run.pid).children(recursive=True)
        names = [" ".join(p.cmdline()) for p in tree]
        assert sum("ipykernel" in n for n in names) == 1, names
        assert sum("_grader_worker" in n for n in names) == 3, names  # kernel's + one per training worker
        assert sum("spawn_main" in n for n in names) >= 2, names  # two training workers (+ resource tracker)
        victim = run.pid if target == "run" else next(p.pid for p, n in zip(tree, names) if "ipykernel" in n)
        os.kill(victim, sig)
        deadline = time.time() + 20
        while (alive := [p for p in tree if _alive(p)]) and time.time() < deadline:
            time.sleep(0.5)
        assert not alive, [" ".join(p.cmdline())[:100] for p in alive]
        assert run.wait(timeout=60) != 0
    finally:  # whatever happened, nothing of this test keeps a core busy
        for p in tree + (psutil.Process(run.pid).children(recursive=True) if run.poll() is None else []):
            with contextlib.suppress(psutil.Error):
                p.kill()
        run.kill()
        run.wait()
