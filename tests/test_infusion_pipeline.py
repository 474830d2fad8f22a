"""The real `dvc repro` with label infusion on a small config, in a temporary copy of the repository."""

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import yaml
from repo_copy import commit_repository, copy_repository, run

from augir.fileio import read_jsonl

pytestmark = pytest.mark.integration


def test_dvc_repro_infuses_trains_on_infused_pairs_and_reruns_only_from_infuse(tmp_path, tiny_beir_dir):
    repo = copy_repository(tmp_path / "repo")
    params = yaml.safe_load((repo / "params.yaml").read_text())
    params["download"]["sources"] = {"tiny": f"local:{tiny_beir_dir}"}
    params["augment"].update(dataset="tiny", num_passages=8, max_new_tokens=12)
    params["runtime"]["batch_size"] = 4
    # Every training query is a neighbour of every synthetic query (cosine >= -1, top 4 of 4): pairs are certain.
    params["infuse"].update(method="skim", encoder="minilm-l6", top_k=4, min_similarity=-1.0)
    params["train"].update(datasets=["tiny"], augmented_pairs=2, infused_pairs=3, batch_size=4)
    params["evaluate"]["datasets"] = ["tiny"]
    (repo / "params.yaml").write_text(yaml.safe_dump(params, sort_keys=False))
    commit_repository(repo)

    first = run([sys.executable, "-m", "dvc", "repro"], repo)
    for stage in ["augment", "filter", "infuse", "train", "evaluate@tiny"]:
        assert f"Running stage '{stage}'" in first
    counts = json.loads((repo / "metrics" / "infuse.json").read_text())
    synthetic = counts["synthetic_queries"]
    assert counts["method"] == "skim" and synthetic >= 2
    assert counts["candidates"] == 4 * synthetic  # each synthetic query meets all 4 training queries
    assert counts["new_pairs"] == counts["candidates"] - counts["skipped_existing"] - counts["merged"] >= 3
    records = read_jsonl(repo / "data" / "infused" / "provenance.jsonl")
    assert len(records) == counts["new_pairs"]
    assert {r["query_id"] for r in records} <= {"q1", "q2", "q3", "q4"}  # never the test queries t1, t2
    existing = {("q1", "d1"), ("q2", "d2"), ("q3", "d3"), ("q4", "d4")}
    assert not existing & {(r["query_id"], r["doc_id"]) for r in records}
    weights = [r["weight"] for r in records]
    assert weights == sorted(weights, reverse=True)  # ranked: the first N are the most similar
    assert json.loads((repo / "metrics" / "train.json").read_text())["pairs"] == 4 + 2 + 3

    pairs_before = (repo / "data" / "pairs" / "pairs.jsonl").read_text()
    params["infuse"]["top_k"] = 2
    (repo / "params.yaml").write_text(yaml.safe_dump(params, sort_keys=False))
    assert set(json.loads(run([sys.executable, "-m", "dvc", "status", "--json"], repo, stdout_only=True))) == {"infuse"}
    result = subprocess.run([sys.executable, "-m", "dvc", "repro", "-v"], cwd=repo, capture_output=True, text=True,
                            env={**os.environ, "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}"})
    second = result.stdout + result.stderr
    assert result.returncode == 0, f"exit {result.returncode}:\n{second[-3000:]}"
    assert "Running stage 'augment'" not in second and "Running stage 'filter'" not in second
    for stage in ["infuse", "pairs"]:
        assert f"Running stage '{stage}'" in second
    # train reads the pairs file: it re-runs exactly when the first train.infused_pairs infused pairs changed
    pairs_changed = (repo / "data" / "pairs" / "pairs.jsonl").read_text() != pairs_before
    assert ("Running stage 'train'" in second) == pairs_changed
    assert ("Running stage 'evaluate@tiny'" in second) == pairs_changed
    assert json.loads((repo / "metrics" / "infuse.json").read_text())["candidates"] == 2 * synthetic
