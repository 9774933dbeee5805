import subprocess
import sys
from pathlib import Path

import pytest

from supersmall.cli import COMMANDS as LISTED
from supersmall.cli import build_parser, main

COMMANDS = {"canary", "doctor", "eval", "estimate", "exercises", "export", "notebooks", "replicate", "report", "train",
            "tiny"}


def _cli(*args):
    return subprocess.run([sys.executable, "-m", "supersmall.cli", *args], capture_output=True, text=True)


def test_help_lists_commands():
    out = _cli("--help")
    assert out.returncode == 0
    for command in COMMANDS:
        assert command in out.stdout


def test_the_commands_are_listed_once_and_every_command_module_is_listed():
    modules = {p.stem for p in (Path(__file__).resolve().parents[1] / "supersmall" / "commands").glob("*.py")
               if not p.name.startswith("_")}
    assert len(LISTED) == len(set(LISTED)) and set(LISTED) == modules == COMMANDS


def test_every_command_registers_a_handler():
    parser = build_parser()
    sub = next(a for a in parser._actions if a.dest == "command")
    assert set(sub.choices) == COMMANDS
    for name in COMMANDS:
        handler = parser.parse_args([name, *(["run"] if name in ("notebooks",) else []),
                                     *(["--out", "x"] if name in ("train", "eval", "replicate", "canary") else []),
                                     *(["--runs", "x", "--out", "x"] if name == "report" else []),
                                     *(["verl", "--out", "x"] if name == "export" else []),
                                     *(["build"] if name in ("exercises", "tiny") else [])]).handler
        assert handler.__module__ == f"supersmall.commands.{name}", name


def test_no_command_prints_help(capsys):
    assert main([]) == 2
    assert "usage" in capsys.readouterr().out


# A table of mistakes a user makes: each must end in ONE sentence naming the culprit, exit status 2, and
# no traceback (and fail before any training or downloading starts).
BAD = [
    (["train", "--profile", "nope"], "valid profiles are"),
    (["train", "--set", "train.steps=-5"], "train.steps = -5"),
    (["train", "--set", "train.learning_rate=0"], "train.learning_rate = 0"),
    (["train", "--set", "train.temperature=0"], "train.temperature = 0"),
    (["train", "--set", "train.num_generations=1"], "train.num_generations = 1"),
    (["train", "--set", "train.loss_type=ppo"], "train.loss_type = 'ppo'"),
    (["train", "--set", "train.top_p=1.5"], "train.top_p = 1.5"),
    (["train", "--set", "reward.name=magic"], "reward.name = 'magic'"),
    (["train", "--set", "data.levels=3-1"], "data.levels = '3-1'"),
    (["train", "--set", "train.stepz=5"], "did you mean 'steps'"),
    (["train", "--set", "trian.steps=5"], "unknown profile section 'trian'"),
    (["train", "--set", "train.steps"], "must be KEY=VALUE"),
    (["train", "--set", "train.steps=many"], "train.steps must be an integer"),
    (["train", "--arm", "kl-maybe"], "unknown arm 'kl-maybe'"),
    (["train", "--backend", "jax"], "unknown backend 'jax'"),
    (["train", "--curriculum", "zigzag"], "curriculum.schedule = 'zigzag'"),
    (["train", "--curriculum", "staged", "--stages", "1-3:x"], "curriculum.stages = '1-3:x'"),
    (["train", "--model", "/nonexistent/model"], "'/nonexistent/model' is not a model folder"),
    (["train", "--out", "{file}"], "is a file, not a folder"),
    (["train", "--out", "{file}/run"], "is a file, not a folder"),
    (["train", "--profile", "{list_yaml}"], "must be a YAML mapping of sections"),
    (["train", "--profile", "{text_yaml}"], "must be a YAML mapping of sections"),
    (["train", "--profile", "{broken_yaml}"], "is not valid YAML"),
    (["train", "--stages", "9-3:5"], "curriculum.stages = '9-3:5'"),
    (["train", "--curriculum", "staged", "--stages", "1-3:5,1-3:5"], "curriculum.stages = '1-3:5,1-3:5'"),
    (["train", "--set", "data.levels=1-1000"], "data.levels = '1-1000'"),
    (["eval", "--out", "{file}"], "is a file, not a folder"),
    (["tiny", "build", "--out", "{file}"], "is a file, not a folder"),
    (["tiny", "build", "--ship", "--seed", "3"], "whose seed is fixed"),
    (["eval", "--model", "/nonexistent/model"], "'/nonexistent/model' is not a model folder"),
    (["eval", "--model", "{empty}"], "is not a model folder (no config.json"),
    (["eval", "--dataset", "/nonexistent/data.jsonl"], "/nonexistent/data.jsonl' does not exist"),
    (["eval", "--limit", "0"], "--limit must be >= 1"),
    (["eval", "--profile", "a6000x4", "--set", "eval.n_samples=0"], "eval.n_samples = 0"),
    (["replicate", "--profile", "rehearsal", "--arms", "kl-maybe", "--dry-run"], "unknown arm 'kl-maybe'"),
    (["replicate", "--profile", "rehearsal", "--stages", "level9", "--dry-run"], "unknown stage 'level9'"),
    (["replicate", "--profile", "rehearsal", "--seeds", "a,b", "--dry-run"], "--seeds must be comma-separated"),
    (["replicate", "--profile", "rehearsal", "--reading", "mine", "--dry-run"], "reading 'mine'"),
    (["notebooks", "run", "--profile", "nope"], "valid profiles are"),
    # LoRA: kl-penalty needs a separate reference model (TRL disables the adapters instead); grpo.py has no LoRA
    # (replicate reports the first in launch.validate)
    (["train", "--arm", "kl-penalty", "--set", "train.lora_rank=4"], "the kl-penalty arm needs a separate reference"),
    (["train", "--profile", "single-gpu", "--arm", "kl-penalty"], "train.lora_rank = 16 with the kl-penalty arm"),
    (["train", "--backend", "minimal", "--set", "train.lora_rank=4"], "train.lora_rank = 4 with the minimal backend"),
]


@pytest.mark.parametrize("argv, expected", BAD, ids=[" ".join(a) for a, _ in BAD])
def test_a_bad_command_line_is_one_sentence_and_exit_2(argv, expected, tmp_path, capsys):
    (tmp_path / "file.txt").write_text("not a folder")
    files = {"{empty}": tmp_path, "{file}": tmp_path / "file.txt", "{list_yaml}": tmp_path / "list.yaml",
             "{text_yaml}": tmp_path / "text.yaml", "{broken_yaml}": tmp_path / "broken.yaml"}
    files["{list_yaml}"].write_text("- train\n- eval\n")
    files["{text_yaml}"].write_text("just a sentence\n")
    files["{broken_yaml}"].write_text("train: {steps: [1,\n  eval: ]\n")
    argv = [a.replace("{file}", str(files["{file}"])) if a.startswith("{file}") else str(files.get(a, a))
            for a in argv]
    if argv[0] in ("train", "eval", "replicate", "notebooks") and "--out" not in argv:
        argv += ["--out", str(tmp_path / "out")]
    assert main(argv) == 2
    err = capsys.readouterr().err.strip()
    assert expected in err, err
    assert "\n" not in err and "Traceback" not in err
    assert not (tmp_path / "out" / "metrics.jsonl").exists()  # nothing trained


def test_lora_with_kl_penalty_is_refused_before_any_model_loads(monkeypatch, tmp_path, capsys):
    """The defect: ``train --arm kl-penalty --set train.lora_rank=4`` loaded the model and died at the first step
    (a RuntimeError traceback, exit 1)."""
    import transformers

    def no_loading(*args, **kwargs):
        raise AssertionError("a model was loaded")

    monkeypatch.setattr(transformers.AutoModelForCausalLM, "from_pretrained", no_loading)
    monkeypatch.setattr(transformers.AutoTokenizer, "from_pretrained", no_loading)
    argv = ["train", "--profile", "tiny", "--arm", "kl-penalty", "--set", "train.lora_rank=4", "--set",
            "train.steps=2", "--no-eval", "--out", str(tmp_path / "x")]
    assert main(argv) == 2
    err = capsys.readouterr().err.strip()
    assert "kl-penalty" in err and "lora_rank" in err and "\n" not in err
    assert not (tmp_path / "x").exists() or not any((tmp_path / "x").iterdir())
