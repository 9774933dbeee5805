#!/usr/bin/env bash
# `make test`: every test tier, fast first. Called by the Makefile with PYTEST (the pytest command line) and
# MAKE set. The series tier (the notebook series twice side by side, normally and as if on another CPU: the
# longest tier, 1,332 s in a fresh-clone check on a 2-core machine) needs only .venv, so it starts at once in the
# background, in its own session: it overlaps the fast tier and the build of .venv-vllm (mostly downloads and
# unpacking). The other slow tiers start only after it has finished, so no test with a timeout shares the
# machine with it. A failing fast tier stops everything (the series too); otherwise every tier runs and the
# script fails at the end if any did. `make/tiers.sh --slow` (make test-slow): the same without the fast tier.
set -uo pipefail
: "${PYTEST:?PYTEST is the pytest command line}" "${MAKE:=make}"
SLOW_TIERS=${SLOW_TIERS:-slow notebooks rehearsal}
# the slow and notebooks tiers are many independent processes (training runs, papermill kernels, vLLM): two
# pytest-xdist workers keep both cores busy. loadscope keeps a module's tests (and its module fixtures, such
# as the vLLM rehearsals) on one worker, and conftest.py hands out the longest modules first (LONG_FIRST); the
# rehearsal tier is one torchrun pipeline that uses both cores. The tiers run one after the other: one xdist
# run of all three took longer (1,722 s against 1,452 s in fresh-clone checks of 8546148 and 4084730): notebook
# 10 and the mutants' training runs took 5-12x their idle time there (the cause was not isolated; both ran on two
# torch threads then). The notebooks and rehearsal tiers as one run (--dist loadgroup, on an idle machine) took
# 656 s against 514 s one after the other in the 10aceb3 fresh-clone check: the rehearsal's module fixture ran on
# both workers (216 s and 154 s; the xdist_group mark did not hold it to one) and notebook 10, on its two torch
# threads, took 488 s beside it (161 s alone). Not tried again with the fixture held to one worker.
WORKERS=${TEST_WORKERS:-2}
tier_options() {
  case "$1" in
    slow) echo "-n $WORKERS --dist loadscope --no-loadscope-reorder" ;;
    notebooks) echo "-n $WORKERS --dist load" ;;
    *) echo "" ;;
  esac
}
log=$(mktemp "${TMPDIR:-/tmp}/supersmall-series.XXXXXX")
setsid $PYTEST -m series >"$log" 2>&1 &
series=$!  # setsid in a non-interactive shell does not fork: this pid leads the series' process group
stop_series() { kill -TERM -- "-$series" 2>/dev/null; wait "$series" 2>/dev/null; }
trap 'stop_series; exit 130' INT TERM
echo "== tier series: started in the background (pid $series), its output is printed when it has finished"

if [ "${1:-}" != "--slow" ]; then
  echo "== tier fast"
  if ! $PYTEST -m fast; then
    echo "the fast tier failed: stopping (the series too)"; stop_series; exit 1
  fi
fi
if ! $MAKE --no-print-directory vllm-env; then
  echo "building .venv-vllm failed: stopping (the series too)"; stop_series; exit 1
fi
failed=""
echo "== tier series (waiting for it to finish)"
wait "$series" || failed=" series"
cat "$log"
for tier in $SLOW_TIERS; do
  echo "== tier $tier"
  $PYTEST -m "$tier" $(tier_options "$tier") || failed="$failed $tier"
done
if [ -n "$failed" ]; then echo "failed tiers:$failed"; exit 1; fi
echo "every tier passed"
