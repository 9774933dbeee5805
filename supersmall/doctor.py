"""``supersmall doctor``: is this machine ready for the kit? One line per check, with a fix.

    supersmall doctor            # exit status 1 when a blocker is found
    >>> from supersmall import doctor; doctor.run()

Checks: Python and package versions, CPU/GPU and memory, TRL <-> vLLM compatibility (read from
TRL's own requirements, not hard-coded), the Jupyter kernel the notebook runner uses, HF offline
mode and cache, and that the kit's math grader works off the main thread (math-verify's own timeout
relies on signals, which only work in the main thread), the GPUs' interconnect (NVLink or PCIe, for NCCL's
P2P) and the disk space a full-scale replication needs.
"""

from __future__ import annotations

import os
import shutil
import sys
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field

from packaging.specifiers import SpecifierSet
from packaging.version import Version

from supersmall import grading, paper, tiny
from supersmall.config import Profile, load_profile
from supersmall.fullscale import gpus, model_shape
from supersmall.fullscale.launch import make_plan, validate
from supersmall.runcard import hardware
from supersmall.runcard import package_version as _version
from supersmall.trl_args import trl_vllm_range

OK, WARN, FAIL, INFO = "ok", "warn", "FAIL", "info"
# A checkpoint of a full fine-tuning run: bf16 weights + fp32 master weights and Adam's m, v (2 + 12 bytes per
# parameter, ~25 GB for R1-Distill-1.5B, ~28 GB on disk with DeepSpeed's files); save_total_limit of them + the
# one being written live at once per run, and every run keeps its final bf16 model.
CHECKPOINT_BYTES_PER_PARAM = 16
_SYMBOL = {OK: "✓", WARN: "!", FAIL: "✗", INFO: "·"}


@dataclass
class Check:
    name: str
    status: str
    message: str
    fix: str = ""

    def line(self) -> str:
        text = f"{_SYMBOL[self.status]} {self.name:<18} {self.message}"
        return text + (f"  -> fix: {self.fix}" if self.fix and self.status in (WARN, FAIL) else "")


@dataclass
class DoctorReport:
    checks: list[Check] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        """False when any check is a blocker (FAIL)."""
        return not any(c.status == FAIL for c in self.checks)

    def __getitem__(self, name: str) -> Check:
        for c in self.checks:
            if c.name == name:
                return c
        raise KeyError(f"no check named {name!r}; checks: {', '.join(c.name for c in self.checks)}")

    def __str__(self) -> str:
        verdict = "ready" if self.ok else "BLOCKED: fix the ✗ lines above"
        return "\n".join([c.line() for c in self.checks] + [f"supersmall doctor: {verdict}"])

    def _repr_pretty_(self, p, cycle) -> None:  # IPython display
        p.text(str(self))


def _python() -> Check:
    v = sys.version_info
    if v < (3, 10):
        return Check("python", FAIL, f"{v.major}.{v.minor} is too old", "use Python 3.10 or newer (3.11 tested)")
    return Check("python", OK, f"{v.major}.{v.minor}.{v.micro} ({sys.executable})")


def _packages() -> list[Check]:
    out = []
    required = ("torch", "transformers", "trl", "accelerate", "datasets", "math-verify", "papermill", "peft")
    for name in required:
        ver = _version(name)
        if ver is None:
            out.append(Check(name, FAIL, "not installed", f"pip install -e . (installs {name})"))
        else:
            out.append(Check(name, OK, ver))
    for name in ("vllm", "deepspeed"):
        ver = _version(name)
        out.append(Check(name, OK if ver else INFO, ver or "not installed (GPU extra; only needed on GPUs)",
                         "" if ver else "pip install -e '.[gpu]' on a CUDA host"))
    return out


def _trl_vllm() -> Check:
    spec = trl_vllm_range()
    vllm = _version("vllm")
    if spec is None:
        return Check("trl/vllm", INFO, "TRL declares no vLLM range")
    if vllm is None:
        return Check("trl/vllm", INFO, f"TRL {_version('trl')} accepts vllm {spec}; vLLM not installed")
    if Version(vllm) in SpecifierSet(spec):
        return Check("trl/vllm", OK, f"vllm {vllm} is inside TRL's range {spec}")
    return Check("trl/vllm", FAIL, f"vllm {vllm} is outside TRL {_version('trl')}'s range {spec}",
                 f"pip install 'vllm{spec}'")


def _hardware() -> list[Check]:

    hw = hardware()
    out = [Check("cpu", OK, f"{hw['cpu_count']} cores, {hw.get('memory_gb')} GiB memory")]
    try:
        import torch

        if torch.cuda.is_available():
            gpus = ", ".join(f"{g['name']} ({g['memory_gb']} GiB)" for g in hw["gpus"])
            out.append(Check("gpu", OK, f"{len(hw['gpus'])} GPU(s): {gpus}"))
        else:
            build = "CPU build" if "+cpu" in torch.__version__ else "CUDA build, no GPU visible"
            out.append(Check("gpu", INFO, f"none (torch {torch.__version__}, {build}): the tiny profile "
                                          "runs on CPU; a6000x4 needs 4 GPUs"))
    except ImportError:
        out.append(Check("gpu", FAIL, "torch is not installed", "pip install -e ."))
    return out


def _hf() -> Check:
    offline = os.environ.get("HF_HUB_OFFLINE", "0") not in ("", "0", "false", "False")
    try:
        from huggingface_hub import constants

        cache = constants.HF_HUB_CACHE
    except ImportError:  # pragma: no cover
        cache = "?"
    mode = "offline (HF_HUB_OFFLINE=1): hub models/datasets must already be cached" if offline else "online"
    return Check("huggingface", OK, f"{mode}; cache {cache}")


def _kernel() -> Check:
    try:
        from jupyter_client.kernelspec import KernelSpecManager, NoSuchKernel

        try:
            spec = KernelSpecManager().get_kernel_spec("python3")
        except NoSuchKernel:
            return Check("jupyter kernel", FAIL, "no 'python3' kernel",
                         "python -m ipykernel install --user --name python3")
        exe = spec.argv[0] if spec.argv else "?"
        if exe in ("python", "python3", "{python}") or os.path.realpath(exe) == os.path.realpath(sys.executable):
            return Check("jupyter kernel", OK, f"python3 -> {sys.executable}")
        return Check("jupyter kernel", WARN, f"python3 kernel runs {exe}, not this Python ({sys.executable})",
                     f"{sys.executable} -m ipykernel install --user --name python3")
    except ImportError:
        return Check("jupyter kernel", FAIL, "jupyter_client is not installed", "pip install -e .")


def _grader_threads() -> Check:
    """The kit's grader must answer (and time out) in worker threads too."""
    try:
        with ThreadPoolExecutor(1) as pool:
            same = pool.submit(grading.is_equivalent, "\\frac{1}{2}", "0.5", 5.0).result(timeout=30)
            diff = pool.submit(grading.is_equivalent, "3", "4", 5.0).result(timeout=30)
    except Exception as e:  # noqa: BLE001 - report anything as a failed check
        return Check("grader thread", FAIL, f"math-verify failed off the main thread: {type(e).__name__}: {e}",
                     "pip install 'math-verify[antlr4_13_2]'")
    if same and not diff:
        return Check("grader thread", OK, "math-verify grades 1/2 == 0.5 and 3 != 4 in a worker thread")
    return Check("grader thread", FAIL, f"wrong verdicts off the main thread (1/2 vs 0.5 -> {same}, 3 vs 4 -> {diff})",
                 "pip install 'math-verify[antlr4_13_2]' (the antlr runtime must match)")


def _tiny_cache() -> Check:
    try:
        path = tiny.base_model_dir()
    except RuntimeError as e:
        return Check("tiny model", FAIL, str(e), "pip install -e . (the kit ships the tiny models)")
    return Check("tiny model", OK, f"shipped at {path} (checksum verified)")


def _full_scale_plan() -> Check:
    """The a6000x4 plan's batch / num_generations / process arithmetic (no GPU needed)."""
    try:
        problems = validate(make_plan("a6000x4", "no-kl", "level1-3", out_dir="runs/full"), check_hardware=False)
    except Exception as e:  # noqa: BLE001
        return Check("a6000x4 plan", FAIL, f"cannot build the plan: {type(e).__name__}: {e}", "supersmall replicate --dry-run")
    if problems:
        return Check("a6000x4 plan", WARN, problems[0], "see `supersmall replicate --dry-run`")
    return Check("a6000x4 plan", OK, "batch, num_generations and processes divide; think-prefill set for R1-Distill")


def disk_needed_gb(profile: Profile | str = "a6000x4", runs: int | None = None) -> float:
    """GB a replication needs on disk: the live checkpoints of one run (save_total_limit + 1) and every run's
    final bf16 model. ``runs`` defaults to what ``replicate`` trains: ``notebooks.claim_seeds`` x (Table 3's arms,
    less kl-penalty under LoRA, + the level-4 and level-5 curriculum stages), 5 x 5 = 25 on a6000x4. Under LoRA a
    checkpoint holds only the adapters (and their optimizer state), and a run also keeps its adapter."""
    p = load_profile(profile)
    dims = model_shape.model_dims(p.model.name_or_path)
    lora = p.train.lora_rank
    if runs is None:
        arms = [a for a in paper.ARMS if not (lora and a == "kl-penalty")]
        runs = len(p.notebooks.claim_seeds) * (len(arms) + 2)
    trained = model_shape.lora_params(dims, lora) if lora else dims.params
    adapter = 4 * trained if lora else 0  # fp32 adapter beside the merged model
    return ((p.train.save_total_limit + 1) * CHECKPOINT_BYTES_PER_PARAM * trained
            + runs * (2 * dims.params + adapter)) / 1e9


def _disk(path: str = ".", profile: str = "a6000x4", free_bytes: int | None = None, gpu: bool = True) -> Check:
    free = (shutil.disk_usage(path).free if free_bytes is None else free_bytes) / 1e9
    need = disk_needed_gb(profile)
    if free >= need:
        return Check("disk", OK, f"{free:.0f} GB free at {os.path.abspath(path)} ({profile} needs ~{need:.0f} GB)")
    return Check("disk", WARN if gpu else INFO, f"{free:.0f} GB free at {os.path.abspath(path)}, but a {profile} replication needs "
                               f"~{need:.0f} GB (live checkpoints and every run's final model)",
                 "free space, or point supersmall doctor --out and replicate --out at a larger disk")


def _interconnect(topology=None) -> Check:
    link = gpus.nvlink_present(topology) if topology else gpus.nvlink_present()
    if link is None:
        return Check("nvlink", INFO, "no nvidia-smi: the interconnect is checked on the GPU host")
    if link:
        return Check("nvlink", OK, "GPUs linked by NVLink: NCCL's P2P stays on")
    return Check("nvlink", INFO, "no NVLink (PCIe): launch.nccl_p2p auto sets NCCL_P2P_DISABLE=1 in the plans")


def run(print_report: bool = True, path: str = ".") -> DoctorReport:
    """Run every check, print one line each (unless ``print_report=False``) and return the report;
    ``path``: where the runs will be written (its disk is checked)."""
    checks: list[Check] = [_python(), *_packages(), _trl_vllm(), *_hardware(), _interconnect(),
                           _disk(path, gpu=bool(hardware()["gpus"])), _hf(),
                           _kernel(), _grader_threads(), _tiny_cache(), _full_scale_plan()]
    report = DoctorReport(checks)
    if print_report:
        print(report)
    return report
