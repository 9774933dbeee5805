import subprocess
import sys

from supersmall.cli import build_parser, main


def _cli(*args):
    return subprocess.run([sys.executable, "-m", "supersmall.cli", *args], capture_output=True, text=True)


def test_help_lists_commands():
    out = _cli("--help")
    assert out.returncode == 0
    for command in ("doctor", "notebooks", "exercises"):
        assert command in out.stdout


def test_every_command_registers_a_handler():
    parser = build_parser()
    sub = next(a for a in parser._actions if a.dest == "command")
    assert sub.choices, "no subcommands registered"
    for name, p in sub.choices.items():
        assert p.description is not None or p.format_help(), name


def test_user_errors_are_one_line(tmp_path):
    out = _cli("notebooks", "run", "--profile", "nope", "--out", str(tmp_path))
    assert out.returncode == 2
    assert out.stderr.strip().count("\n") == 0 and "valid profiles are" in out.stderr
    assert "Traceback" not in out.stderr


def test_no_command_prints_help(capsys):
    assert main([]) == 2
    assert "usage" in capsys.readouterr().out
