"""The real `dvc repro` on a small config, in a temporary copy of the repository."""

import json
import os
import sys
from pathlib import Path

import pytest
import yaml
from repo_copy import commit_repository, copy_repository, run

pytestmark = pytest.mark.integration


def _small_params(repo: Path, dataset_dir: Path) -> dict:
    params = yaml.safe_load((repo / "params.yaml").read_text())
    params["download"]["sources"] = {"tiny": f"local:{dataset_dir}"}
    # all 8 passages for 2 pairs: clean-up drops some of SmolLM2's queries
    params["augment"].update(dataset="tiny", num_passages=8, max_new_tokens=12)
    params["runtime"]["batch_size"] = 4
    params["train"].update(datasets=["tiny"], augmented_pairs=2, batch_size=4)
    params["evaluate"]["datasets"] = ["tiny"]
    return params


def test_dvc_repro_runs_every_stage_and_train_params_leave_augment_alone(tmp_path, tiny_beir_dir):
    repo = copy_repository(tmp_path / "repo")
    params = _small_params(repo, tiny_beir_dir)
    (repo / "params.yaml").write_text(yaml.safe_dump(params, sort_keys=False))
    commit_repository(repo)

    first = run([sys.executable, "-m", "dvc", "repro"], repo)
    for stage in ["download@tiny", "augment", "train", "encode@tiny", "evaluate@tiny"]:
        assert f"Running stage '{stage}'" in first
    metrics = json.loads((repo / "metrics" / "tiny.json").read_text())
    assert metrics["num_queries"] == 2 and 0 <= metrics["ndcg_at_10"] <= 1
    assert {"ndcg_at_10", "recall_at_100", "mrr_at_10", "num_queries"} <= set(metrics)
    augment_stats = json.loads((repo / "metrics" / "augment.json").read_text())
    assert augment_stats["generated"] == 8
    provenance = (repo / "data" / "augmented" / "provenance.jsonl").read_text()
    for query_id in ["t1", "t2"]:  # test queries never reach a prompt
        assert json.dumps(_tiny_query(tiny_beir_dir, query_id))[1:-1] not in provenance

    params["train"]["epochs"] = 2
    (repo / "params.yaml").write_text(yaml.safe_dump(params, sort_keys=False))
    status = run([sys.executable, "-m", "dvc", "status", "--json"], repo)
    # dvc status lists the stages whose own inputs changed; those after them rerun as a consequence
    assert set(json.loads(status)) == {"train"}

    second = run([sys.executable, "-m", "dvc", "repro"], repo)
    assert "Running stage 'augment'" not in second and "Running stage 'download@tiny'" not in second
    for stage in ["train", "encode@tiny", "evaluate@tiny"]:
        assert f"Running stage '{stage}'" in second


def _tiny_query(folder: Path, query_id: str) -> str:
    for line in (folder / "queries.jsonl").read_text().splitlines():
        record = json.loads(line)
        if record["_id"] == query_id:
            return record["text"]
    raise KeyError(query_id)


def test_a_hostile_dataset_name_runs_nothing_under_dvc_repro(tmp_path, tiny_beir_dir):
    import subprocess

    repo = copy_repository(tmp_path / "repo")
    params = _small_params(repo, tiny_beir_dir)
    name = "x;touch hacked"  # dvc.yaml's foreach pastes the key into the download command
    params["download"]["sources"] = {name: f"local:{tiny_beir_dir}"}
    params["augment"]["dataset"] = name
    params["train"]["datasets"] = params["evaluate"]["datasets"] = [name]
    (repo / "params.yaml").write_text(yaml.safe_dump(params, sort_keys=False))
    run(["git", "init", "-q"], repo)
    env = {**os.environ, "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}", "PYTHONPATH": str(repo)}
    result = subprocess.run([sys.executable, "-m", "dvc", "repro", f"download@{name}"], cwd=repo, env=env,
                            capture_output=True, text=True)
    assert result.returncode != 0
    assert "is not a dataset name" in result.stdout + result.stderr, result.stderr
    assert not (repo / "hacked").exists()
    assert [p.name for p in (repo / "data" / "raw").iterdir()] == [".gitignore"]  # DVC's; nothing was downloaded
