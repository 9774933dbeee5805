"""Grading model answers safely: extract the last ``\\boxed{...}`` and compare it with the gold answer.

Model output is untrusted input. Nothing here calls ``eval``/``sympify`` on raw text: equivalence
is decided by math-verify (``parse`` + ``verify``) running in a separate worker process that is
killed and replaced when it overruns its timeout. math-verify's own timeout uses ``signal.alarm``,
which only works in the main thread (in a worker thread, a notebook widget callback or a TRL reward
thread it silently does nothing); a process boundary works everywhere and also stops C-level
hangs (huge powers and factorials in sympy). Inputs are bounded in size before any parsing.

    >>> extract_answer("so x = \\\\boxed{\\\\frac{1}{2}}.")
    '\\\\frac{1}{2}'
    >>> is_equivalent("\\\\frac{1}{2}", "0.5")
    True

Plain integers and identical strings are decided without math-verify (provably the same verdict,
and ~1000x faster), which is what the tiny task needs.
"""

from __future__ import annotations

import atexit
import json
import os
import re
import select
import subprocess
import sys
import threading
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor

from supersmall._grader_worker import PARENT_ENV

MAX_TEXT_CHARS = 200_000  # completions longer than this are scanned from the end only
MAX_ANSWER_CHARS = 1_000  # an extracted answer longer than this is not graded (returns False)

_BOX_COMMANDS = ("\\boxed", "\\fbox")
_INT = re.compile(r"^[+-]?\d{1,300}$")
_counters = {"calls": 0, "fast_path": 0, "timeouts": 0, "too_long": 0, "errors": 0}
_counter_lock = threading.Lock()


def _count(key: str) -> None:
    with _counter_lock:
        _counters[key] += 1


def grader_stats() -> dict[str, int]:
    """The grader's counters since start (or :func:`reset_grader_stats`): calls, fast_path, timeouts,
    too_long, errors."""
    with _counter_lock:
        return dict(_counters)


def reset_grader_stats() -> None:
    """Set the grader's counters (:func:`grader_stats`) back to zero."""
    with _counter_lock:
        for k in _counters:
            _counters[k] = 0


# --- extraction ----------------------------------------------------------------------------------------
def _balanced(text: str, start: int) -> str | None:
    """Content of the brace group opening at ``text[start] == '{'``, or None when unbalanced."""
    depth = 0
    for i in range(start, len(text)):
        c = text[i]
        if c == "{":
            depth += 1
        elif c == "}":
            depth -= 1
            if depth == 0:
                return text[start + 1: i]
    return None


def extract_answer(text: str | None) -> str | None:
    """The content of the last ``\\boxed{...}`` (or ``\\fbox{...}``) in ``text``; None if absent or unbalanced.

    Nested braces are fine (``\\boxed{\\frac{1}{2}}``), and so is ``\\boxed 5`` (a space then one
    token, as some models write). Only the last box counts: a model that boxes several candidates
    is graded on its final one.
    """
    if not text:
        return None
    text = text[-MAX_TEXT_CHARS:]
    best: tuple[int, str | None] | None = None
    for cmd in _BOX_COMMANDS:
        pos = text.rfind(cmd)
        while pos != -1:
            after = pos + len(cmd)
            if after < len(text) and text[after].isalpha():  # \boxedx is another command
                pos = text.rfind(cmd, 0, pos)
                continue
            if best is None or pos > best[0]:
                rest = text[after:]
                if rest.startswith("{"):
                    best = (pos, _balanced(text, after))
                elif rest.startswith(" "):
                    token = rest.strip().split(maxsplit=1)
                    best = (pos, token[0].rstrip(".,;$") if token else None)
                else:
                    best = (pos, None)
            break
    if best is None or best[1] is None:
        return None
    answer = best[1].strip()
    return answer if answer else None


def extract_tagged(text: str | None, tag: str = "answer") -> str | None:
    """The content of the last ``<answer>...</answer>`` (Small-Math-R1's format); None if absent."""
    if not text:
        return None
    text = text[-MAX_TEXT_CHARS:]
    end = text.rfind(f"</{tag}>")
    if end == -1:
        return None
    start = text.rfind(f"<{tag}>", 0, end)
    if start == -1:
        return None
    inner = text[start + len(tag) + 2: end].strip()
    return extract_answer(inner) or inner or None


# --- the worker process -----------------------------------------------------------------------------
def _normalise(s: str) -> str:
    s = s.strip().strip("$").strip()
    for junk in ("\\!", "\\,", "\\;", "\\ ", " ", "\\left", "\\right", "\\displaystyle"):
        s = s.replace(junk, "")
    return s.rstrip(".")


def _fast_verdict(pred: str, gold: str) -> bool | None:
    """True/False when decidable without math-verify (same strings, or two plain integers), else None."""
    p, g = _normalise(pred), _normalise(gold)
    if p == g:
        return True
    if _INT.match(p) and _INT.match(g):
        return int(p) == int(g)
    return None


class _Worker:
    """One math-verify process (``python -m supersmall._grader_worker``); replaced after a timeout, and
    gone within a fraction of a second when this process dies (it watches its parent's pid)."""

    START_TIMEOUT = 60.0  # importing sympy + math-verify on a busy machine

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.proc: subprocess.Popen | None = None

    def _start(self) -> None:
        env = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONUNBUFFERED": "1",
               PARENT_ENV: str(os.getpid())}  # it exits when this process goes (killed kernel, killed run)
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "supersmall._grader_worker"], stdin=subprocess.PIPE, stdout=subprocess.PIPE,
            stderr=subprocess.DEVNULL, text=True, bufsize=1, env=env,
        )
        if self._read(self.START_TIMEOUT) is None:
            self.kill()
            raise RuntimeError("the math-verify worker did not start: run `supersmall doctor`")

    def _read(self, timeout: float) -> list | None:
        assert self.proc is not None and self.proc.stdout is not None
        ready, _, _ = select.select([self.proc.stdout], [], [], timeout)
        if not ready:
            return None
        line = self.proc.stdout.readline()
        return json.loads(line) if line else None

    def kill(self) -> None:
        proc, self.proc = self.proc, None
        if proc is not None and proc.poll() is None:
            proc.kill()
            proc.wait(timeout=5)

    def call(self, pred: str | None, gold: str, timeout: float) -> bool:
        with self.lock:
            if self.proc is None or self.proc.poll() is not None:
                self._start()
            assert self.proc is not None and self.proc.stdin is not None
            self.proc.stdin.write(json.dumps([pred, gold]) + "\n")
            self.proc.stdin.flush()
            reply = self._read(timeout)
            if reply is None:  # overran (or died): kill it, a fresh one starts on the next call
                self.kill()
                _count("timeouts")
                return False
            status, value = reply
            if status != "ok":
                _count("errors")
                return False
            return bool(value)


class _Pool:
    def __init__(self, size: int) -> None:
        self.workers = [_Worker() for _ in range(size)]
        self.free: list[_Worker] = list(self.workers)
        self.cond = threading.Condition()

    def call(self, pred: str | None, gold: str, timeout: float) -> bool:
        with self.cond:
            while not self.free:
                self.cond.wait()
            worker = self.free.pop()
        try:
            return worker.call(pred, gold, timeout)
        finally:
            with self.cond:
                self.free.append(worker)
                self.cond.notify()

    def close(self) -> None:
        for w in self.workers:
            w.kill()


_pool: _Pool | None = None
_pool_lock = threading.Lock()


def _get_pool() -> _Pool:
    global _pool
    with _pool_lock:
        if _pool is None:
            _pool = _Pool(max(1, min(4, os.cpu_count() or 1)))
            atexit.register(_pool.close)
        return _pool


# --- equivalence ------------------------------------------------------------------------------------
def is_equivalent(pred: str | None, gold: str | None, timeout: float = 1.0) -> bool:
    """Whether ``pred`` and ``gold`` are the same mathematical answer (math-verify), within ``timeout`` s.

    Works in the main thread, worker threads and notebook widgets. A timeout, an error or an answer
    longer than ``MAX_ANSWER_CHARS`` returns False and is counted (see :func:`stats`).
    """
    _count("calls")
    if pred is None or gold is None:
        return False
    pred, gold = str(pred), str(gold)
    if len(pred) > MAX_ANSWER_CHARS or len(gold) > MAX_ANSWER_CHARS:
        _count("too_long")
        return False
    fast = _fast_verdict(pred, gold)
    if fast is not None:
        _count("fast_path")
        return fast
    return _get_pool().call(pred, gold, timeout)


def grade_batch(preds: Sequence[str | None], golds: Sequence[str | None], timeout: float = 1.0) -> list[bool]:
    """:func:`is_equivalent` over pairs, using every worker process (fast on 2 cores)."""
    if len(preds) != len(golds):
        raise ValueError(f"preds has {len(preds)} items but golds has {len(golds)}")
    slow = [i for i, (p, g) in enumerate(zip(preds, golds))
            if p is not None and g is not None and _fast_verdict(str(p)[:MAX_ANSWER_CHARS + 1],
                                                                 str(g)[:MAX_ANSWER_CHARS + 1]) is None]
    if len(slow) <= 1:
        return [is_equivalent(p, g, timeout) for p, g in zip(preds, golds)]
    pool = _get_pool()
    with ThreadPoolExecutor(len(pool.workers)) as ex:
        futures = {i: ex.submit(is_equivalent, preds[i], golds[i], timeout) for i in slow}
        return [futures[i].result() if i in futures else is_equivalent(p, g, timeout)
                for i, (p, g) in enumerate(zip(preds, golds))]


def is_parsable(gold: str | None, timeout: float = 1.0) -> bool:
    """Whether math-verify can read ``gold`` at all (``}{`` cannot): a problem nobody can grade."""
    if gold is None or not str(gold).strip() or len(str(gold)) > MAX_ANSWER_CHARS:
        return False
    if _INT.match(_normalise(str(gold))):
        return True
    return _get_pool().call(None, str(gold), timeout)


def reasoned(completion: str) -> bool:
    """Whether the completion reasons: a non-empty ``<think>...</think>`` (an R1-style template may have
    opened ``<think>`` in the prompt, so only the closing tag is required)."""
    if "</think>" in completion:
        inner = completion.split("</think>", 1)[0].replace("<think>", "")
        return bool(inner.strip())
    return False


def grade(completion: str | None, gold: str, timeout: float = 1.0) -> bool:
    """Extract the boxed answer of ``completion`` and compare it with ``gold``."""
    return is_equivalent(extract_answer(completion), gold, timeout)

