"""supersmall.fullscale.cost past one host: the replicate on 1, 2 and 4 hosts, sharded by seed vs one multi-node
run, from the kit's own step model (no typed speed-up)."""

import json

import pytest

from supersmall.cli import main
from supersmall.config import load_profile
from supersmall.errors import UserError
from supersmall.fullscale import cost, estimate
from supersmall.fullscale.model_shape import model_dims

TWO_HOSTS = {"launch.num_machines": 2, "launch.main_process_ip": "host0"}


def test_the_network_term_counts_zero2s_per_micro_step_reduce_by_hand():
    p = load_profile("a6000x4")
    assert estimate.internode_seconds(p) == 0.0  # one host: nothing crosses the network
    two = p.replace(**TWO_HOSTS)
    n, params = 8, model_dims(p.model.name_or_path).params
    per_collective = 2 * params * (n - 1) / n / (estimate.INTERNODE_GBIT * 1e9 / 8)  # bf16 bytes over the link
    accumulation = p.train.gradient_accumulation_steps
    assert estimate.internode_seconds(two) == pytest.approx((accumulation + 1) * per_collective)  # + the weights' gather
    fewer = two.replace(**{"train.gradient_accumulation_steps": 1, "train.prompts_per_step": 16})
    assert estimate.internode_seconds(fewer) == pytest.approx(2 * per_collective)  # fewer micro-steps, less traffic


def test_a_run_over_two_hosts_pays_the_network_every_step_and_counts_both_hosts_gpus():
    p = load_profile("a6000x4")
    one, two = estimate.estimate(p, "no-kl"), estimate.estimate(p.replace(**TWO_HOSTS), "no-kl")
    assert one["network_s_per_step"] == 0.0 and one["hosts"] == 1
    assert one["gpu_hours"] == pytest.approx(one["minutes"]["mid"] / 60 * 4, abs=0.01)
    network = estimate.internode_seconds(p.replace(**TWO_HOSTS))
    assert two["network_s_per_step"] == pytest.approx(network, abs=0.05) and network > 1
    lengths = estimate.stage_lengths(p, "level1-3")
    compute = estimate.step_seconds(p.replace(**TWO_HOSTS), "no-kl", lengths["mean_fraction"],
                                    lengths["longest_fraction"])["total_s"]
    assert two["minutes"]["mid"] == pytest.approx((compute + network) * p.train.steps / 60, abs=0.1)
    assert two["gpu_hours"] == pytest.approx(two["minutes"]["mid"] / 60 * 8, abs=0.01)  # 2 hosts x 4 GPUs


def test_one_run_on_twice_the_gpus_is_not_twice_as_fast_because_each_step_waits_for_one_decode():
    p = load_profile("a6000x4")
    lengths = estimate.stage_lengths(p, "level1-3")
    s = cost.speedup(p, 2)
    four = estimate.step_seconds(p, "no-kl", lengths["mean_fraction"], lengths["longest_fraction"])
    eight = estimate.step_seconds(p.replace(**TWO_HOSTS), "no-kl", lengths["mean_fraction"],
                                  lengths["longest_fraction"])
    assert s["one_host_s"] == pytest.approx(four["total_s"], abs=0.05)
    assert s["hosts_s"] == pytest.approx(eight["total_s"] + estimate.internode_seconds(p.replace(**TWO_HOSTS)), abs=0.05)
    # the decode of the longest completion does not shrink with more GPUs: generation falls far less than 2x
    assert eight["generation_s"] > 0.6 * four["generation_s"] and eight["training_s"] == pytest.approx(
        four["training_s"] / 2, rel=0.01)
    assert 1.0 < s["ratio"] < 1.6
    assert four["total_s"] / eight["total_s"] < 1.6  # even over a free network


def test_hosts_sharded_by_seed_beat_one_multi_node_run():
    p = load_profile("a6000x4")
    many = cost.hosts(p)
    rows = {r["hosts"]: r for r in many["rows"]}
    assert sorted(rows) == [1, 2, 4]
    whole = cost.replicate_cost(p)
    assert rows[1]["sharded_hours"] == rows[1]["multinode_hours"] == whole["total_hours"]["mid"]
    # sharded: the busiest host is shard 0, ceil(5 / H) seeds and the base evaluation
    assert rows[2]["seeds_on_busiest_host"] == 3 and rows[4]["seeds_on_busiest_host"] == 2
    assert rows[2]["sharded_hours"] == cost.replicate_cost(p, seeds=[42, 44, 46])["total_hours"]["mid"]
    assert rows[2]["multinode_hours"] == cost.replicate_cost(p.replace(**TWO_HOSTS))["total_hours"]["mid"]
    for h in (2, 4):
        assert rows[h]["sharded_hours"] < rows[h]["multinode_hours"] < rows[1]["multinode_hours"]
    # 2 hosts: the multi-node run saves what its step speed-up gives on training, not half
    assert rows[2]["multinode_hours"] > 0.6 * rows[1]["multinode_hours"]
    with pytest.raises(UserError, match="need a GPU profile"):
        cost.hosts("rehearsal")


def test_estimate_prints_the_hours_for_1_2_and_4_hosts(capsys):
    assert main(["estimate", "--profile", "a6000x4"]) == 0
    text = capsys.readouterr().out
    assert "sharded by seed" in text and "one multi-node run" in text
    many = cost.hosts(load_profile("a6000x4"))
    for r in many["rows"]:
        assert f"{r['hosts']:>5} {r['gpus']:>5} {r['sharded_hours']:>16.1f} {r['multinode_hours']:>19.1f}" in text
    assert f"({many['one_run_speedup']['2']['ratio']:.2f}x, not 2x" in text
    assert main(["estimate", "--profile", "a6000x4", "--json"]) == 0
    out = json.loads(capsys.readouterr().out)
    assert [r["hosts"] for r in out["hosts"]["rows"]] == [1, 2, 4]
    assert main(["estimate", "--profile", "rehearsal", "--json"]) == 0  # CPU: no hosts table, no error
    assert json.loads(capsys.readouterr().out)["hosts"] is None
    assert main(["estimate", "--profile", "a6000x4", "--set", "launch.num_machines=2",
                 "--set", "launch.main_process_ip=host0"]) == 0
    two = estimate.estimate(load_profile("a6000x4", **TWO_HOSTS), "no-kl")
    assert (f"every step above includes {two['network_s_per_step']} s on the network between them"
            in capsys.readouterr().out)


def test_one_gpu_whose_kv_cache_needs_two_decode_waves_gains_more_than_twice_on_two_hosts(capsys):
    """single-gpu: one 24 GB card's KV cache holds the step's 128 rollouts in two waves, two hosts' in one, so
    one run over two hosts is more than 2x faster per step, and estimate says why instead of "not 2x"."""
    s = cost.speedup(load_profile("single-gpu"), 2)
    assert (s["one_host_waves"], s["hosts_waves"]) == (2, 1) and s["ratio"] > 2
    assert cost.speedup(load_profile("a6000x4"), 2)["one_host_waves"] == 1
    assert main(["estimate", "--profile", "single-gpu"]) == 0
    text = capsys.readouterr().out
    assert f"({s['ratio']:.2f}x, vLLM decodes the step's rollouts in 2 waves on one host, in 1 on 2)" in text
    assert f"({s['ratio']:.2f}x, not 2x" not in text


def test_two_runs_at_once_on_an_8_gpu_host_halve_the_training_hours():
    p = load_profile("a6000x4")
    eight = cost.replicate_cost(p.replace(**{"launch.num_gpus": 8, "launch.gpus_per_run": 4}))
    four = cost.replicate_cost(p)
    # 5 seeds on 2 groups of 4 GPUs: the busier group trains 3 seeds' chains, each run as on a 4-GPU host
    assert eight["training_hours"] == pytest.approx(four["training_hours"] * 3 / 5, abs=0.1)
    assert eight["evaluation_hours"] < four["evaluation_hours"]  # 26 evaluations over 8 GPUs
    assert eight["minutes_per_run"] == four["minutes_per_run"]


def test_the_readmes_hosts_table_is_what_estimate_prints():
    """The README's 'Past one machine' figures are the step model's output: a change to it must update them."""
    import re
    from pathlib import Path

    text = (Path(__file__).resolve().parents[2] / "README.md").read_text()
    section = text.split("## Past one machine", 1)[1].split("\n## ", 1)[0]
    stated = {int(h): (float(a), float(b)) for h, a, b in
              re.findall(r"^\| (\d) \| ([\d.]+) h \| ([\d.]+) h \|$", section, re.M)}
    many = cost.hosts(load_profile("a6000x4"))
    assert stated == {r["hosts"]: (r["sharded_hours"], r["multinode_hours"]) for r in many["rows"]}
    s = many["one_run_speedup"]["2"]
    assert f"takes {s['one_host_s']} s" in section and f"({s['ratio']:.2f}x)" in section
