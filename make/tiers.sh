#!/usr/bin/env bash
# `make test`: every test tier, fast first. Called by the Makefile with PYTEST (the pytest command line) and
# MAKE set. The series tier (the notebook series twice side by side, normally and as if on another CPU: the
# longest tier, 1,319 s in a fresh-clone check on a 2-core machine) needs only .venv, so it starts at once in the
# background, in its own session: it overlaps the fast tier and the build of .venv-vllm (mostly downloads and
# unpacking). The other slow tiers start only after it has finished, so no test with a timeout shares the
# machine with it. A failing fast tier stops everything (the series too); otherwise every tier runs and the
# script fails at the end if any did.
set -uo pipefail
: "${PYTEST:?PYTEST is the pytest command line}" "${MAKE:=make}"
# The tiers after the series (training runs, papermill kernels, vLLM, torchrun rehearsals: many independent
# processes) run as ONE pytest run on two pytest-xdist workers, so neither core idles while the other finishes a
# tier's last long test. loadscope keeps a module's tests (and its module fixtures, such as the vLLM rehearsals)
# on one worker; conftest.py hands out the longest modules first (LONG_FIRST).
AFTER_SERIES=${AFTER_SERIES:-slow or notebooks or rehearsal}
WORKERS=${TEST_WORKERS:-2}
log=$(mktemp "${TMPDIR:-/tmp}/supersmall-series.XXXXXX")
setsid $PYTEST -m series >"$log" 2>&1 &
series=$!  # setsid in a non-interactive shell does not fork: this pid leads the series' process group
stop_series() { kill -TERM -- "-$series" 2>/dev/null; wait "$series" 2>/dev/null; }
trap 'stop_series; exit 130' INT TERM
echo "== tier series: started in the background (pid $series), its output follows the fast tier"

echo "== tier fast"
if ! $PYTEST -m fast; then
  echo "the fast tier failed: stopping (the series too)"; stop_series; exit 1
fi
if ! $MAKE --no-print-directory vllm-env; then
  echo "building .venv-vllm failed: stopping (the series too)"; stop_series; exit 1
fi
failed=""
echo "== tier series (waiting for it to finish)"
wait "$series" || failed=" series"
cat "$log"
echo "== tiers $AFTER_SERIES (one run, $WORKERS workers)"
$PYTEST -m "$AFTER_SERIES" -n "$WORKERS" --dist loadscope --no-loadscope-reorder || failed="$failed $AFTER_SERIES"
if [ -n "$failed" ]; then echo "failed tiers:$failed"; exit 1; fi
echo "every tier passed"
