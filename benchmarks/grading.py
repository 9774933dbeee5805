"""Pairs per second of ``rewards.correctness`` (the kit's grader: fast paths + math-verify in worker
processes with hard timeouts) against raw single-threaded math-verify on the same 2,000 MATH-style
pairs, in one run. Usage: ``python benchmarks/grading.py [--pairs 2000]``."""

from __future__ import annotations

import argparse
import json
import random
import time
from pathlib import Path

VARIANTS = [lambda a: a, lambda a: a.replace(" ", ""), lambda a: f"{a}+1", lambda a: "0", lambda a: f"\\left({a}\\right)"]


def make_pairs(n: int, seed: int = 0) -> list[tuple[str, str]]:
    """(completion, gold) pairs from MATH-500's gold answers: the same answer, reformatted, or wrong."""
    path = Path(__file__).resolve().parent.parent / "supersmall" / "fixtures" / "math500.jsonl"
    golds = [json.loads(line)["answer"] for line in path.read_text().splitlines()]
    rng = random.Random(seed)
    pairs = []
    for _ in range(n):
        gold = rng.choice(golds)
        pred = rng.choice(VARIANTS)(gold)
        pairs.append((f"<think>...</think> The answer is \\boxed{{{pred}}}.", gold))
    return pairs


def raw_math_verify(pairs: list[tuple[str, str]]) -> list[bool]:
    from math_verify import parse, verify

    out = []
    for completion, gold in pairs:
        out.append(bool(verify(parse(f"\\boxed{{{gold}}}"), parse(completion))))
    return out


def kit(pairs: list[tuple[str, str]]) -> list[bool]:
    from supersmall import rewards

    return [r == 1.0 for r in rewards.correctness([c for c, _ in pairs], answer=[g for _, g in pairs])]


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--pairs", type=int, default=2000)
    args = ap.parse_args()
    pairs = make_pairs(args.pairs)
    kit(pairs[:4])  # start the worker processes (a one-time cost, reported separately)
    t0 = time.perf_counter()
    ours = kit(pairs)
    t_kit = time.perf_counter() - t0
    t0 = time.perf_counter()
    theirs = raw_math_verify(pairs)
    t_raw = time.perf_counter() - t0
    agree = sum(a == b for a, b in zip(ours, theirs)) / len(pairs)
    from supersmall import grading

    print(f"pairs: {len(pairs)}")
    print(f"raw math-verify (single thread, in-process): {len(pairs) / t_raw:,.0f} pairs/s ({t_raw:.2f} s)")
    print(f"supersmall rewards.correctness (timeouts on): {len(pairs) / t_kit:,.0f} pairs/s ({t_kit:.2f} s)")
    print(f"speed ratio kit / raw: {t_raw / t_kit:.2f}x; verdicts agree on {agree:.1%}; grader: {grading.grader_stats()}")


if __name__ == "__main__":
    main()
