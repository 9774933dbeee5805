"""Several training runs at once: a process pool that keeps both cores of a laptop busy.

    cards = train_many([dict(profile="tiny", arm="no-kl", seed=s, out_dir=f"runs/x/seed{s}") for s in (0, 1)])

Each run is a dict of :func:`supersmall.train.train` arguments; it runs in its own (spawned) process
with ``torch threads / workers`` threads, quietly, under one progress bar for the lot. A complete run of
the same config and code is reused, not retrained (``train`` decides). :mod:`supersmall.experiments`
names the conditions and calls this.
"""

from __future__ import annotations

import multiprocessing
from concurrent.futures import ProcessPoolExecutor, as_completed
from typing import Any

import torch
from tqdm.auto import tqdm

from supersmall.train import quiet, reusable_card, train


def _one(kwargs: dict[str, Any], threads: int) -> dict[str, Any]:
    """One run inside a worker process: its share of the threads, no library noise, no per-run bar."""
    torch.set_num_threads(threads)
    quiet()
    return train(progress=False, **kwargs)


def train_many(runs: list[dict[str, Any]], workers: int = 2, desc: str = "experiment") -> list[dict[str, Any]]:
    """Train several runs (each a dict of :func:`supersmall.train.train` arguments), ``workers`` at a time
    in separate processes sharing the torch threads; returns the run cards in the order of ``runs``."""
    cards: list[dict[str, Any] | None] = [reusable_card(**kw) for kw in runs]  # complete: reused, no process
    todo = [i for i, card in enumerate(cards) if card is None]
    if not todo:
        print(f"{desc}: all {len(runs)} runs complete (same config and code), reused")
        return [c for c in cards if c is not None]
    threads = max(1, torch.get_num_threads() // max(1, workers))
    with ProcessPoolExecutor(min(max(1, workers), len(todo)), mp_context=multiprocessing.get_context("spawn")) as pool, \
            tqdm(total=len(runs), initial=len(runs) - len(todo), desc=desc, unit="run") as bar:
        futures = {pool.submit(_one, runs[i], threads): i for i in todo}
        for future in as_completed(futures):
            cards[futures[future]] = future.result()
            bar.update(1)
    return [c for c in cards if c is not None]


__all__ = ["train_many"]
