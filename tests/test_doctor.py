import subprocess
import sys

import supersmall
from supersmall import doctor, trl_args
from supersmall.doctor import FAIL, OK


def test_doctor_on_this_machine(capsys):
    report = supersmall.doctor()  # the module is callable
    printed = capsys.readouterr().out
    names = [c.name for c in report.checks]
    for name in ("python", "torch", "transformers", "trl", "vllm", "deepspeed", "trl/vllm", "cpu", "gpu",
                 "huggingface", "jupyter kernel", "grader thread"):
        assert name in names, name
    assert report.ok, str(report)
    assert report["grader thread"].status == OK  # math-verify answers off the main thread
    assert len(printed.strip().splitlines()) == len(report.checks) + 1
    assert report["a6000x4 plan"].status == OK, report["a6000x4 plan"].message
    assert printed.strip().splitlines()[-1] == "supersmall doctor: ready"
    assert supersmall.doctor(print_report=False).ok and capsys.readouterr().out == ""


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
    report = doctor.doctor(print_report=False)
    assert not report.ok and report["trl"].status == FAIL and "pip install" in report["trl"].fix


def test_cli_exit_status():
    out = subprocess.run([sys.executable, "-m", "supersmall.cli", "doctor"], capture_output=True, text=True)
    assert out.returncode == 0, out.stdout + out.stderr
    assert "supersmall doctor: ready" in out.stdout
