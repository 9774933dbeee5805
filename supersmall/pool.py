"""Several training runs at once: a process pool that keeps both cores of a laptop busy.

    cards = train_many([dict(profile="tiny", arm="no-kl", seed=s, out_dir=f"runs/x/seed{s}") for s in (0, 1)])

Each run is a dict of :func:`supersmall.train.train` arguments; it runs in its own (spawned) process on
:func:`supersmall.runcard.use_threads` torch threads (one, unless ``SUPERSMALL_THREADS`` says otherwise),
quietly, under one progress bar for the lot. A complete run of the same config and code is reused, not
retrained (``train`` decides). The worker processes exit with the process that started them (a killed
kernel or ``notebooks run`` leaves none behind: :func:`supersmall._grader_worker.exit_with_parent`).
:mod:`supersmall.experiments` names the conditions and calls this.
"""

from __future__ import annotations

import multiprocessing
import os
from concurrent.futures import ProcessPoolExecutor, as_completed
from typing import Any

from tqdm.auto import tqdm

from supersmall._grader_worker import exit_with_parent


def _start_worker(parent_pid: int) -> None:
    """A worker's first act: exit when ``parent_pid`` dies; then the kit's thread count, no library noise."""
    exit_with_parent(parent_pid)
    from supersmall.train import quiet

    quiet()  # also sets the torch threads (supersmall.runcard.use_threads)


def _one(kwargs: dict[str, Any]) -> dict[str, Any]:
    """One run inside a worker process, with no per-run bar."""
    from supersmall.train import train

    return train(progress=False, **kwargs)


def executor(workers: int) -> ProcessPoolExecutor:
    """``workers`` spawned processes that exit with this one and run on the kit's thread count."""
    return ProcessPoolExecutor(max(1, workers), mp_context=multiprocessing.get_context("spawn"),
                               initializer=_start_worker, initargs=(os.getpid(),))


def train_many(runs: list[dict[str, Any]], workers: int = 2, desc: str = "experiment") -> list[dict[str, Any]]:
    """Train several runs (each a dict of :func:`supersmall.train.train` arguments), ``workers`` at a time
    in separate processes; returns the run cards in the order of ``runs``."""
    from supersmall.train import reusable_card

    cards: list[dict[str, Any] | None] = [reusable_card(**kw) for kw in runs]  # complete: reused, no process
    todo = [i for i, card in enumerate(cards) if card is None]
    if not todo:
        print(f"{desc}: all {len(runs)} runs complete (same config and code), reused")
        return [c for c in cards if c is not None]
    with executor(min(max(1, workers), len(todo))) as pool, \
            tqdm(total=len(runs), initial=len(runs) - len(todo), desc=desc, unit="run") as bar:
        futures = {pool.submit(_one, runs[i]): i for i in todo}
        for future in as_completed(futures):
            cards[futures[future]] = future.result()
            bar.update(1)
    return [c for c in cards if c is not None]


__all__ = ["train_many", "executor"]
