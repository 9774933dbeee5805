"""GPU processes for ``supersmall replicate`` and ``supersmall canary``: which GPUs are free, whether they talk
over NVLink, a command that is stopped when it hangs after its work is done, and jobs run one per GPU in parallel.

    used = gpus.memory_used()                       # {0: 0.3, 1: 0.3, ...} GiB per GPU (nvidia-smi), {} on CPU
    gpus.wait_until_free([0, 1, 2, 3])              # a UserError sentence when a GPU stays busy
    gpus.run_command(cmd, done=lambda: is_complete(run_dir), exit_timeout=300)   # a vLLM hang at exit is stopped
    gpus.run_parallel({"base": "python -m ...", ...}, [0, 1, 2, 3])            # CUDA_VISIBLE_DEVICES=i per job

Every function that asks the hardware takes the asking function as an argument (``query``), so the tests
give a fake ``nvidia-smi`` on CPU.
"""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import time
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path

from supersmall.errors import UserError

Query = Callable[[], dict[int, float]]
FREE_GB = 1.5  # choice: a GPU holding more than this (GiB) is busy (an idle CUDA context takes ~0.3-0.6)
EXIT_TIMEOUT_S = 300.0  # choice: seconds a finished run may take to exit (vLLM and NCCL teardown) before it is stopped


def _smi(*args: str) -> str | None:
    """nvidia-smi's output, or None where there is no nvidia-smi (CPU hosts) or it fails."""
    if shutil.which("nvidia-smi") is None:
        return None
    try:
        out = subprocess.run(["nvidia-smi", *args], capture_output=True, text=True, timeout=60)
    except (OSError, subprocess.TimeoutExpired):
        return None
    return out.stdout if out.returncode == 0 else None


def memory_used() -> dict[int, float]:
    """GiB in use on each GPU, from ``nvidia-smi`` (every process, not only this one's); {} without GPUs."""
    text = _smi("--query-gpu=index,memory.used", "--format=csv,noheader,nounits")
    if not text:
        return {}
    rows = [line.split(",") for line in text.strip().splitlines() if "," in line]
    return {int(i): float(mib) / 1024 for i, mib in rows}


# choice: CUDA numbers GPUs fastest-first by default, nvidia-smi by PCI bus: with PCI_BUS_ID both agree, so the
# GPU that wait_until_free checked (nvidia-smi index) is the GPU a command pinned with CUDA_VISIBLE_DEVICES gets
DEVICE_ENV = {"CUDA_DEVICE_ORDER": "PCI_BUS_ID",
              # choice: PyTorch's allocator grows segments instead of fragmenting them (fewer OOMs at the same peak
              # when completion lengths vary step to step); vLLM keeps its own pool (sleep mode stays off)
              "PYTORCH_CUDA_ALLOC_CONF": "expandable_segments:True"}


def visible_devices(count: int, environ: Mapping[str, str] | None = None) -> list[str]:
    """The host's first ``count`` GPUs as ``CUDA_VISIBLE_DEVICES`` entries: the user's own entries when they set
    ``CUDA_VISIBLE_DEVICES`` (a shared host: ``2,3,6,7`` -> runs pinned to those), else ``0 .. count-1`` (also
    when it hides every GPU, ``""`` or ``-1``: a plan made on a CPU host for a GPU host). Too few entries is a
    UserError sentence."""
    env = os.environ if environ is None else environ
    given = env.get("CUDA_VISIBLE_DEVICES")
    entries = [e.strip() for e in (given or "").split(",") if e.strip()]
    if not entries or all(e.startswith("-") for e in entries):  # unset, or GPUs hidden ("" or -1: a plan made on CPU)
        return [str(i) for i in range(count)]
    if len(entries) < count:
        raise UserError(f"CUDA_VISIBLE_DEVICES={given} names {len(entries)} GPU(s) but the profile uses "
                        f"launch.num_gpus={count}: name {count} GPUs there, or set --set launch.num_gpus={len(entries)}")
    return entries[:count]


def device_slots(devices: Sequence[str], per_run: int) -> list[list[str]]:
    """The host's GPUs split into disjoint groups of ``per_run`` (one concurrent run each); leftovers stay idle."""
    per_run = per_run or len(devices)
    return [list(devices[i:i + per_run]) for i in range(0, len(devices) - per_run + 1, per_run)]


def indices(devices: Sequence[str]) -> list[int]:
    """The nvidia-smi indices among ``devices`` (UUID entries cannot be asked about and are skipped)."""
    return [int(d) for d in devices if d.isdigit()]


def nvlink_present(topology: Callable[[], str | None] = lambda: _smi("topo", "-m")) -> bool | None:
    """Whether the GPUs reach each other over NVLink (``nvidia-smi topo -m`` shows ``NV#`` links); None when
    unknown (no nvidia-smi). PCIe-only hosts (most RTX A6000 boxes) often hang or crawl with NCCL's P2P."""
    text = topology()
    if not text:
        return None
    return any(cell.startswith("NV") and cell[2:].isdigit() for cell in text.split())


def nccl_env(setting: str, topology: Callable[[], str | None] | None = None) -> dict[str, str]:
    """``launch.nccl_p2p`` as environment: ``off`` -> NCCL_P2P_DISABLE=1; ``auto`` -> the same when no NVLink is
    found (nothing when the topology is unknown, e.g. a plan made on CPU); ``on`` -> nothing."""
    if setting == "off":
        return {"NCCL_P2P_DISABLE": "1"}
    if setting == "auto" and (nvlink_present(topology) if topology else nvlink_present()) is False:
        return {"NCCL_P2P_DISABLE": "1"}
    return {}


def wait_until_free(gpus: Sequence[int], query: Query = memory_used, timeout: float = 180.0, poll: float = 5.0,
                    sleep: Callable[[float], None] = time.sleep, free_gb: float = FREE_GB) -> None:
    """Return once every GPU in ``gpus`` holds under ``free_gb`` GiB; else a UserError sentence naming them."""
    waited = 0.0
    while True:
        used = query()
        busy = {g: used[g] for g in gpus if used.get(g, 0.0) > free_gb}
        if not busy:
            return
        if waited >= timeout:
            names = ", ".join(f"GPU {g} ({gb:.1f} GB)" for g, gb in sorted(busy.items()))
            raise UserError(f"{names} still in use after {timeout:.0f} s, most likely a vLLM engine of an earlier run "
                            "that did not exit: stop it (nvidia-smi lists its process id) and rerun; finished runs "
                            "are kept")
        sleep(poll)
        waited += poll


def _stop(proc: subprocess.Popen) -> None:
    """SIGTERM to the command's whole process group, SIGKILL 20 s later."""
    for sig, wait in ((signal.SIGTERM, 20), (signal.SIGKILL, 10)):
        try:
            os.killpg(proc.pid, sig)
        except ProcessLookupError:
            return
        try:
            proc.wait(timeout=wait)
            return
        except subprocess.TimeoutExpired:
            continue


def run_command(cmd: str, env: Mapping[str, str] | None = None, done: Callable[[], bool] | None = None,
                exit_timeout: float = EXIT_TIMEOUT_S, poll: float = 1.0, log: Path | None = None) -> int:
    """Run a shell command in its own process group and return its exit status. When ``done()`` turns true
    (the run card says complete) and the command has not exited ``exit_timeout`` seconds later (a colocated
    vLLM that hangs at exit), it is stopped and counted as a success."""
    out = log.open("w") if log else None
    proc = subprocess.Popen(cmd, shell=True, env=dict(env) if env is not None else None, start_new_session=True,
                            stdout=out, stderr=subprocess.STDOUT if out else None)
    finished_at = None
    try:
        while proc.poll() is None:
            if done is not None and finished_at is None and done():
                finished_at = time.time()
            if finished_at is not None and time.time() - finished_at > exit_timeout:
                print(f"the run finished but its processes did not exit within {exit_timeout:.0f} s: stopping them",
                      flush=True)
                _stop(proc)
                return 0
            time.sleep(poll)
        return proc.returncode
    except BaseException:
        _stop(proc)
        raise
    finally:
        if out:
            out.close()


def run_parallel(jobs: Mapping[str, str], gpus: Sequence[int | str], env: Mapping[str, str] | None = None,
                 query: Query = memory_used, poll: float = 2.0, wait_timeout: float = 180.0,
                 log_dir: Path | None = None) -> dict[str, int]:
    """Run each job's command on one GPU (``CUDA_VISIBLE_DEVICES=<gpu> <command>``), as many at once as there
    are GPUs, each GPU checked free before its next job. Returns every job's exit status."""
    pending, running, status = list(jobs.items()), {}, {}
    free = list(gpus)
    if log_dir:
        log_dir.mkdir(parents=True, exist_ok=True)
    while pending or running:
        while pending and free:
            gpu = free.pop(0)
            wait_until_free(indices([str(gpu)]), query, timeout=wait_timeout)
            name, cmd = pending.pop(0)
            line = f"CUDA_VISIBLE_DEVICES={gpu} {cmd}"
            print(f"$ {line}", flush=True)
            out = (log_dir / f"{name}.log").open("w") if log_dir else None
            running[name] = (subprocess.Popen(line, shell=True, env=dict(env) if env else None, stdout=out,
                                              stderr=subprocess.STDOUT if out else None, start_new_session=True),
                             gpu, out)
        for name, (proc, gpu, out) in list(running.items()):
            if proc.poll() is not None:
                status[name] = proc.returncode
                if out:
                    out.close()
                del running[name]
                free.append(gpu)
        if running:
            time.sleep(poll)
    return status
