"""Runtime knobs change speed, not the augmentation: DVC keeps augment up to date, the greedy CPU output is the same."""

import json
import sys
from pathlib import Path

import pytest
import yaml
from repo_copy import commit_repository, copy_repository, run

pytestmark = [pytest.mark.integration, pytest.mark.slow]

KNOBS = {
    "batch_size": 1,
    "sort_by_length": False,
    "threads": 1,
    "prefix_cache": False,
    "prefill_tokens": 1,
    "openai": {"concurrency": 9, "cache_prompt": True},
    "vllm": {"tensor_parallel_size": 2, "data_parallel_size": 2, "gpu_memory_utilization": 0.5,
             "enable_prefix_caching": False},
    "executor": "ray",
    "ray": {"address": "ray://head:10001", "num_actors": 8, "num_cpus_per_actor": 2, "max_restarts": 0,
            "max_task_retries": 0, "max_shard_attempts": 1},
}


def _write(repo: Path, params: dict) -> None:
    (repo / "params.yaml").write_text(yaml.safe_dump(params, sort_keys=False))


def test_runtime_knobs_leave_augment_up_to_date_and_its_output_unchanged(tmp_path, tiny_beir_dir):
    repo = copy_repository(tmp_path / "repo")
    params = yaml.safe_load((repo / "params.yaml").read_text())
    params["download"]["sources"] = {"tiny": f"local:{tiny_beir_dir}"}
    params["augment"].update(dataset="tiny", num_passages=4, max_new_tokens=8)
    params["train"]["datasets"] = params["evaluate"]["datasets"] = ["tiny"]
    params["runtime"]["batch_size"] = 4
    _write(repo, params)
    commit_repository(repo)
    run([sys.executable, "-m", "dvc", "repro", "augment"], repo)
    before = {name: (repo / "data" / "augmented" / name).read_bytes() for name in ["queries.jsonl", "provenance.jsonl"]}

    for knob, value in KNOBS.items():
        changed = {**params, "runtime": {**params["runtime"], knob: value}}
        _write(repo, changed)
        status = json.loads(run([sys.executable, "-m", "dvc", "status", "--json", "augment"], repo, stdout_only=True))
        assert status == {}, f"runtime.{knob} made augment stale: {status}"

    # The greedy transformers engine on CPU: one prompt per batch in passage order, no prefix cache, one thread,
    # same bytes.
    _write(repo, {**params, "runtime": {**params["runtime"], "batch_size": 1, "sort_by_length": False,
                                        "prefix_cache": False, "threads": 1,
                                        "prefill_tokens": 1}})
    run([sys.executable, "-m", "dvc", "repro", "--force", "augment"], repo)
    for name, content in before.items():
        assert (repo / "data" / "augmented" / name).read_bytes() == content, name
    recorded = json.loads((repo / "metrics" / "augment.json").read_text())["runtime"]
    assert (recorded["batch_size"], recorded["prefix_cache"], recorded["threads"]) == (1, False, 1)
