import subprocess
import sys

import pytest

import supersmall
from supersmall import doctor, trl_args
from supersmall.doctor import FAIL, OK


def test_doctor_on_this_machine(capsys):
    report = supersmall.doctor.run()
    printed = capsys.readouterr().out
    names = [c.name for c in report.checks]
    for name in ("python", "torch", "transformers", "trl", "vllm", "deepspeed", "trl/vllm", "cpu", "gpu", "nvlink",
                 "disk", "huggingface", "jupyter kernel", "grader thread"):
        assert name in names, name
    assert report.ok, str(report)
    assert report["grader thread"].status == OK  # math-verify answers off the main thread
    assert len(printed.strip().splitlines()) == len(report.checks) + 1
    assert report["a6000x4 plan"].status == OK, report["a6000x4 plan"].message
    assert printed.strip().splitlines()[-1] == "supersmall doctor: ready"
    assert supersmall.doctor.run(print_report=False).ok and capsys.readouterr().out == ""


def test_version_is_runcard_package_version():
    from supersmall import runcard

    assert doctor._version is runcard.package_version
    assert doctor._version("torch") is not None and doctor._version("no-such-package-xyz") is None


def test_trl_vllm_range_is_read_from_trl():
    spec = trl_args.trl_vllm_range()
    assert doctor.trl_vllm_range is trl_args.trl_vllm_range  # one home; the doctor imports it
    assert spec is not None and "0.31.0" in spec and ">=" in spec


def test_incompatible_vllm_is_a_blocker_with_a_fix(monkeypatch):
    real = doctor._version
    monkeypatch.setattr(doctor, "_version", lambda n: "0.99.0" if n == "vllm" else real(n))
    check = doctor._trl_vllm()
    assert check.status == FAIL and "outside" in check.message and "pip install 'vllm" in check.fix
    monkeypatch.setattr(doctor, "_version", lambda n: "0.30.0" if n == "vllm" else real(n))
    assert doctor._trl_vllm().status == OK


def test_missing_package_is_a_blocker(monkeypatch):
    real = doctor._version
    monkeypatch.setattr(doctor, "_version", lambda n: None if n == "trl" else real(n))
    report = doctor.run(print_report=False)
    assert not report.ok and report["trl"].status == FAIL and "pip install" in report["trl"].fix


@pytest.mark.slow  # over 20 s (CLI processes / a training loop): the slow tier
def test_cli_exit_status():
    out = subprocess.run([sys.executable, "-m", "supersmall.cli", "doctor"], capture_output=True, text=True)
    assert out.returncode == 0, out.stdout + out.stderr
    assert "supersmall doctor: ready" in out.stdout


def test_doctor_is_a_plain_module_with_a_run_function():
    import types

    assert type(doctor) is types.ModuleType and callable(doctor.run)  # no class swapped in to make it callable


def test_disk_check_counts_live_checkpoints_and_final_models():
    from supersmall.config import load_profile
    from supersmall.fullscale import model_shape

    params = model_shape.model_dims(load_profile("a6000x4").model.name_or_path).params
    need = doctor.disk_needed_gb("a6000x4")
    # 3 live checkpoints of ~28 GB + 25 final bf16 models: claim_seeds (5) x 5 runs (3 arms + 2 curriculum stages)
    assert len(load_profile("a6000x4").notebooks.claim_seeds) == 5
    assert need == pytest.approx((3 * 16 + 25 * 2) * params / 1e9)
    three = load_profile("a6000x4", **{"notebooks.claim_seeds": [1, 2, 3]})
    assert doctor.disk_needed_gb(three) == pytest.approx((3 * 16 + 15 * 2) * params / 1e9)  # follows the seeds
    lora = doctor.disk_needed_gb("single-gpu")  # 5 x 4 runs (no kl-penalty), merged models + small adapters
    assert 20 * 2 * params / 1e9 < lora < 20 * 2 * params / 1e9 + 5
    assert 3 * 16 * params / 1e9 > 80  # a checkpoint is about 28 GB
    low = doctor._disk(free_bytes=int(50e9))
    assert low.status == doctor.WARN and "needs" in low.message and "--out" in low.fix
    assert doctor._disk(free_bytes=int(50e9), gpu=False).status == doctor.INFO  # a laptop running tiny
    assert doctor._disk(free_bytes=int(1e12)).status == OK


def test_interconnect_check():
    assert "NVLink" in doctor._interconnect(lambda: "GPU0 X NV12\nGPU1 NV12 X").message
    pcie = doctor._interconnect(lambda: "GPU0 X PHB\nGPU1 PHB X")
    assert "NCCL_P2P_DISABLE=1" in pcie.message
