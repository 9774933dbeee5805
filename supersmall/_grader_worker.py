"""Worker-process plumbing: the math-verify worker behind :mod:`supersmall.grading`, and the parent watch
every worker process of the kit runs (grader workers here, training workers in :mod:`supersmall.pool`).

The grader worker is started as ``python -m supersmall._grader_worker``; the parent kills it when a call
overruns its timeout. It reads ``[pred, gold]`` per line (``pred`` null: only parse ``gold``) and writes
``["ok", bool]`` or ``["error", message]``.

A worker must not outlive the process that started it: when ``supersmall notebooks run`` or a Jupyter
kernel is killed mid-run (SIGTERM, SIGKILL, a kernel restart), nothing tells its workers, and a training
worker would go on using a core for minutes. :func:`exit_with_parent` makes each worker watch the pid of
its parent and exit within a fraction of a second once it is gone; as every level (kernel -> training
worker -> grader worker) watches its own parent, a whole tree goes away when its root does. (Linux's
``PR_SET_PDEATHSIG`` fires when the parent *thread* ends, and grader workers are started from short-lived
threads, so the kit polls the parent pid instead, which works the same on Linux and macOS.)
"""

import json
import os
import sys
import threading
import time

PARENT_ENV = "SUPERSMALL_PARENT_PID"  # the pid a worker started with ``subprocess`` must outlive no longer
WATCH_INTERVAL_S = 0.2


def _watch(parent_pid: int, interval: float) -> None:
    while os.getppid() == parent_pid:
        time.sleep(interval)
    os._exit(1)  # the parent is gone: no cleanup to wait for (a stuck sympy call, a half-done training step)


def exit_with_parent(parent_pid: int | None = None, interval: float = WATCH_INTERVAL_S) -> None:
    """Exit this process (``os._exit``) once the process ``parent_pid`` is no longer its parent.

    ``parent_pid`` defaults to ``$SUPERSMALL_PARENT_PID`` (set by the process that started this one, so a
    parent that died before this call is noticed too), else the current parent. A daemon thread polls
    ``os.getppid()`` every ``interval`` s: an orphan is re-parented to init or a subreaper.
    """
    if parent_pid is None:
        parent_pid = int(os.environ.get(PARENT_ENV) or os.getppid())
    if os.getppid() != parent_pid:
        os._exit(1)
    threading.Thread(target=_watch, args=(parent_pid, interval), daemon=True, name="exit-with-parent").start()


def main() -> None:  # pragma: no cover - exercised through supersmall.grading in a child process
    exit_with_parent()
    from math_verify import parse, verify

    sys.stdout.write(json.dumps(["ready", True]) + "\n")
    sys.stdout.flush()
    for line in sys.stdin:
        try:
            pred, gold = json.loads(line)
            g = parse(f"\\boxed{{{gold}}}", parsing_timeout=None)
            if pred is None:  # parse-only request: can the gold answer be graded at all?
                out = ["ok", bool(g)]
            else:
                p = parse(f"\\boxed{{{pred}}}", parsing_timeout=None)
                out = ["ok", bool(g) and bool(p) and bool(verify(g, p, timeout_seconds=None))]
        except BaseException as e:  # noqa: BLE001 - anything odd is "not equivalent"
            out = ["error", f"{type(e).__name__}: {e}"[:200]]
        sys.stdout.write(json.dumps(out) + "\n")
        sys.stdout.flush()


if __name__ == "__main__":
    main()
