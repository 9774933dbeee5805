"""supersmall.pool.train_many: runs that are complete are reused in the parent, with no worker process."""

import pytest

from supersmall import pool
from supersmall.train import reusable_card, train


def test_complete_runs_are_reused_without_a_process(tmp_path, monkeypatch):
    run = dict(profile="tiny", seed=0, steps=1, out_dir=str(tmp_path / "run"), evaluate_model=False,
               **{"train.prompts_per_step": 2, "train.num_generations": 2})
    assert reusable_card(**run) is None  # nothing there yet: train_many would train it
    card = train(progress=False, **run)
    assert reusable_card(**run)["seed"] == card["seed"]
    assert reusable_card(**{**run, "train.learning_rate": 1e-3}) is None  # another config: train would refuse
    assert reusable_card(**run, resume=False) is None

    def no_process(*args, **kwargs):
        raise AssertionError("a worker process was started for a complete run")

    monkeypatch.setattr(pool, "ProcessPoolExecutor", no_process)
    assert pool.train_many([run], desc="reuse") == [reusable_card(**run)]
    with pytest.raises(AssertionError, match="worker process"):
        pool.train_many([{**run, "seed": 1, "out_dir": str(tmp_path / "other")}])


@pytest.mark.slow
def test_workers_run_on_the_kits_thread_count(monkeypatch):
    import torch

    monkeypatch.delenv("SUPERSMALL_THREADS", raising=False)
    with pool.executor(1) as ex:
        assert ex.submit(torch.get_num_threads).result() == 1
    monkeypatch.setenv("SUPERSMALL_THREADS", "2")  # a spawned worker inherits the environment
    with pool.executor(1) as ex:
        assert ex.submit(torch.get_num_threads).result() == 2
