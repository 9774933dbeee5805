"""supersmall.fullscale.shards and replicate --shard: disjoint shares of the seeds, one report from several hosts'
folders equal to one host's report, and a mismatch of config or code is one sentence."""

import json
import shutil
import subprocess
import sys

import pytest

from supersmall import paper
from supersmall.errors import UserError
from supersmall.fullscale import launch, shards
from supersmall.runcard import write_run_card

N, PER_LEVEL, SEEDS = 50, 10, (0, 1, 2, 3, 4)


def _eval(root, name, solved, role="trained", arm=None, stage=None, seed=None, series="s1"):
    """An evaluation folder as evaluate writes it (records.jsonl + a complete eval run card), as tests/test_report."""
    folder = root / "eval" / name
    folder.mkdir(parents=True)
    with (folder / "records.jsonl").open("w") as fh:
        for i in range(N):
            fh.write(json.dumps({"index": i, "sample": 0, "correct": i in solved, "level": i // PER_LEVEL + 1,
                                 "subject": "Algebra", "truncated": False, "length": 12}) + "\n")
    write_run_card(folder, kind="eval", seed=seed, metrics={"accuracy": len(solved) / N, "n": N},
                   extra={"model": f"m-{name}", "role": role, "arm": arm, "stage": stage, "series": series,
                          "name": name})


def _seed_evals(root, s, series="s1"):
    """One seed's five trained evaluations (the same fabricated gains as tests/test_report.py)."""
    _eval(root, f"no-kl-level1-3-seed{s}", set(range(25 + s)), arm="no-kl", stage="level1-3", seed=s, series=series)
    _eval(root, f"kl-nopenalty-level1-3-seed{s}", set(range(35 if s == 1 else 15)), arm="kl-nopenalty",
          stage="level1-3", seed=s, series=series)
    _eval(root, f"kl-penalty-level1-3-seed{s}", set(range(35 + 2 * s)), arm="kl-penalty", stage="level1-3", seed=s,
          series=series)
    _eval(root, f"no-kl-level4-seed{s}", set(range(30 + 2 * s)), arm="no-kl", stage="level4", seed=s, series=series)
    _eval(root, f"no-kl-level5-seed{s}", set(range(3 + s, N)), arm="no-kl", stage="level5", seed=s, series=series)


def _train_card(root, name, code):
    write_run_card(root / name, kind="train", seed=0, status="complete", extra={"code_version": code})


def _shard_folders(tmp_path, n=2):
    """Each host's folder as replicate --shard i/n leaves it: its seeds' evaluations, the base on shard 0."""
    roots = [tmp_path / f"host{i}" for i in range(n)]
    for i, root in enumerate(roots):
        if i == 0:
            _eval(root, "base", set(range(5)), role="base")
        for s in launch.shard_seeds(list(SEEDS), (i, n)):
            _seed_evals(root, s)
            _train_card(root, f"no-kl/level1-3/seed{s}", "c1")
    return roots


def _normalised(path, root):
    return path.read_text().replace(str(root), "ROOT")


def test_shards_are_disjoint_and_cover_every_plan():
    seeds = [42, 43, 44, 45, 46]
    for n in (1, 2, 3, 5):
        shares = [launch.shard_seeds(seeds, (i, n)) for i in range(n)]
        assert sorted(s for share in shares for s in share) == seeds  # every seed, exactly once
        assert all(share for share in shares)
    assert launch.shard_seeds(seeds, (0, 2)) == [42, 44, 46] and launch.shard_seeds(seeds, (1, 2)) == [43, 45]
    for bad in ((2, 2), (-1, 2), (0, 6)):
        with pytest.raises(UserError, match="--shard"):
            launch.shard_seeds(seeds, bad)


def test_shard_dry_runs_split_the_plans_and_only_shard_0_evaluates_the_base(tmp_path, capsys):
    full = launch.plans_for("a6000x4", paper.ARMS, ["level1-3", "level4", "level5"], None, str(tmp_path / "all"))
    keys = []
    for i in range(2):
        result = launch.replicate("a6000x4", tmp_path / f"s{i}", shard=(i, 2), dry_run=True)
        keys.append(set(result["problems"]))
        printed = capsys.readouterr().out
        assert ("and the base model's evaluation" in printed) == (i == 0)
    assert not keys[0] & keys[1]  # disjoint
    assert keys[0] | keys[1] == {f"{p.arm}/{p.stage}/seed{p.seed}" for p in full}  # together: every plan
    # the base is evaluated on shard 0 only, and a shard writes no report of its own
    calls = {}
    for i in range(2):
        _run_shard_faked(tmp_path / f"r{i}", (i, 2), calls.setdefault(i, []))
    assert [n for n in calls[0] if n == "base"] == ["base"] and "base" not in calls[1]
    assert {n for c in calls.values() for n in c if n != "base"} == {
        f"{a}-{s}-seed{seed}" for a, s, seed in ((p.arm, p.stage, p.seed) for p in
                                               launch.plans_for("rehearsal", paper.ARMS, ["level1-3", "level4",
                                                                                         "level5"], [0, 1, 2]))}
    assert not (tmp_path / "r0" / "report").exists() and not (tmp_path / "r1" / "report").exists()


def _run_shard_faked(out, shard, evaluated):
    mp = pytest.MonkeyPatch()
    try:
        mp.setattr(launch, "prepare_data", lambda p: None)
        mp.setattr(launch, "run_plan", lambda plan, out: None)
        mp.setattr(launch, "run_eval", lambda model, settings, dest, meta: evaluated.append(dest.name))
        mp.setattr(launch.report, "write_report", lambda *a, **k: pytest.fail("a shard writes no report"))
        launch.replicate("rehearsal", out, seeds=[0, 1, 2], shard=shard)
    finally:
        mp.undo()


def test_report_over_two_shards_equals_the_report_over_one_merged_folder(tmp_path):
    roots = _shard_folders(tmp_path)
    single = tmp_path / "single"  # one host: every evaluation in one folder
    for root in roots:
        shutil.copytree(root / "eval", single / "eval", dirs_exist_ok=True)
    one = launch.report.write_report(single, single / "report", series="s1")
    merged = shards.merge(roots, tmp_path / "merged")
    assert json.loads(_normalised(merged["verdicts"], tmp_path / "merged")) == \
        json.loads(_normalised(one["verdicts"], single))
    assert _normalised(merged["md"], tmp_path / "merged") == _normalised(one["md"], single)
    rows = json.loads(merged["verdicts"].read_text())
    assert rows and max(r["n_seeds"] for r in rows) == len(SEEDS)  # every seed of both shards is in the verdicts
    # a shard alone lacks seeds: its report differs (the merge is what makes it whole)
    alone = launch.report.write_report(roots[0], tmp_path / "alone", series="s1")
    assert json.loads(alone["verdicts"].read_text()) != json.loads(one["verdicts"].read_text())
    # the CLI: the same report, and --out may be one of the shards' folders
    out = subprocess.run([sys.executable, "-m", "supersmall.cli", "report", "--runs", *map(str, roots), "--out",
                          str(roots[0])], capture_output=True, text=True)
    assert out.returncode == 0, out.stderr
    assert json.loads(_normalised(roots[0] / "report" / "verdicts.json", roots[0])) == \
        json.loads(_normalised(one["verdicts"], single))


def test_shards_of_another_config_or_code_are_refused_in_one_sentence(tmp_path):
    roots = _shard_folders(tmp_path)
    other = tmp_path / "other"
    _seed_evals(other, 9, series="s2")  # another config or code version: another series
    with pytest.raises(UserError, match=r"differ in config or code version .*series s1.*series s2"):
        shards.merge([roots[0], other], tmp_path / "m1")
    _train_card(roots[1], "no-kl/level4/seed1", "c2")  # a training run of other code
    with pytest.raises(UserError, match="made by different code"):
        shards.merge(roots, tmp_path / "m2")
    shutil.rmtree(roots[1] / "no-kl" / "level4")
    overlap = tmp_path / "overlap"
    _seed_evals(overlap, 1)  # seed 1 again: the shards overlap
    with pytest.raises(UserError, match="the shards overlap"):
        shards.merge(roots + [overlap], tmp_path / "m3")
    (tmp_path / "empty").mkdir()
    with pytest.raises(UserError, match="no finished evaluation"):
        shards.merge([roots[0], tmp_path / "empty"], tmp_path / "m4")
    cli = subprocess.run([sys.executable, "-m", "supersmall.cli", "report", "--runs", str(roots[0]), str(other),
                          "--out", str(tmp_path / "m5")], capture_output=True, text=True)
    assert cli.returncode == 2 and "differ in config or code version" in cli.stderr and "Traceback" not in cli.stderr
    assert cli.stderr.strip().count("\n") == 0  # one sentence
    bad = subprocess.run([sys.executable, "-m", "supersmall.cli", "replicate", "--shard", "2", "--dry-run", "--out",
                          str(tmp_path / "b")], capture_output=True, text=True)
    assert bad.returncode == 2 and "--shard must be I/N" in bad.stderr
