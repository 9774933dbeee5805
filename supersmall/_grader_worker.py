"""The math-verify worker process behind :mod:`supersmall.grading` (one JSON line in, one out).

Started as ``python -m supersmall._grader_worker``; the parent kills it when a call overruns its
timeout. Reads ``[pred, gold]`` per line (``pred`` null: only parse ``gold``), writes ``["ok", bool]`` or ``["error", message]``.
"""

import json
import sys


def main() -> None:  # pragma: no cover - exercised through supersmall.grading in a child process
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
