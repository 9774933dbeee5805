"""A notebook's time idle and beside one CPU-bound process (``yes > /dev/null``), the figure behind the kit's
one-thread default (issue 27: "with one CPU-bound process beside it, notebook 00 runs within 2x of its idle
time"). Each run is ``supersmall notebooks run --only NB`` into a fresh folder, so model loads, papermill's
kernel start and every cell count, as a student's run would. Usage::

    python benchmarks/notebook_load.py                      # notebook 00, idle then loaded, once each
    python benchmarks/notebook_load.py --only 01 --repeats 2 --out load.json

Run it on an otherwise idle machine: "idle" is only idle if nothing else runs. It prints each time, the
ratio loaded / idle, and the load average seen before each run, and writes them as JSON to ``--out``.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path


def timed_run(only: str, profile: str) -> float:
    """Seconds for one ``supersmall notebooks run --only <only>`` into a fresh folder (fails loudly)."""
    with tempfile.TemporaryDirectory() as out:
        t0 = time.perf_counter()
        run = subprocess.run([sys.executable, "-m", "supersmall.cli", "notebooks", "run", "--profile", profile,
                              "--only", only, "--out", out], capture_output=True, text=True)
        seconds = time.perf_counter() - t0
    if run.returncode:
        sys.exit(f"notebook {only} failed:\n{(run.stdout + run.stderr)[-3000:]}")
    return seconds


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--only", default="00", help="notebook name prefix (default 00)")
    ap.add_argument("--profile", default="tiny")
    ap.add_argument("--repeats", type=int, default=1)
    ap.add_argument("--out", default=None, help="write the figures here as JSON")
    args = ap.parse_args()
    rows = []
    for repeat in range(args.repeats):
        for condition in ("idle", "beside yes"):
            load = os.getloadavg()[0]
            busy = subprocess.Popen(["yes"], stdout=subprocess.DEVNULL) if condition != "idle" else None
            try:
                seconds = timed_run(args.only, args.profile)
            finally:
                if busy:
                    busy.kill()
                    busy.wait()
            rows.append({"repeat": repeat, "condition": condition, "seconds": round(seconds, 1),
                         "load_average_before": round(load, 2)})
            print(f"notebook {args.only}, {condition}: {seconds:.1f} s (1-min load average before: {load:.2f})",
                  flush=True)
    idle = min(r["seconds"] for r in rows if r["condition"] == "idle")
    loaded = min(r["seconds"] for r in rows if r["condition"] != "idle")
    summary = {"notebook": args.only, "profile": args.profile, "cpus": os.cpu_count(), "runs": rows,
               "idle_seconds": idle, "loaded_seconds": loaded, "ratio": round(loaded / idle, 2)}
    print(f"best of {args.repeats}: idle {idle:.1f} s, beside one busy process {loaded:.1f} s: "
          f"{loaded / idle:.2f}x on {os.cpu_count()} CPUs")
    if args.out:
        Path(args.out).write_text(json.dumps(summary, indent=1))


if __name__ == "__main__":
    main()
