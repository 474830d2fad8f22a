"""`dvc repro` with judge training, the trained judge as filter, as labeller and cleaning hard negatives, on a tiny config."""

import json
import sys
from pathlib import Path

import pytest
import yaml
from repo_copy import commit_repository, copy_repository, run

pytestmark = pytest.mark.integration

DOCS = {f"d{i}": f"passage {i} about {topic}" for i, topic in
        enumerate(["plants sugar", "black holes", "vaccines", "iron rust", "tides moon", "insulin", "lava", "bacteria"])}
# "passage" is in every document: BM25 returns the unjudged ones too, the judge's grade-0 examples
TRAIN = {"q1": "passage plants sugar", "q2": "passage black holes", "q3": "passage vaccines", "q4": "passage iron rust"}
TEST = {"t1": "passage tides moon", "t2": "passage insulin"}
RELEVANT = {"q1": "d0", "q2": "d1", "q3": "d2", "q4": "d3", "t1": "d4", "t2": "d5"}


def _binary_beir(folder: Path) -> Path:
    """Binary train judgments for four queries (the judge's examples), two test queries."""
    (folder / "qrels").mkdir(parents=True)
    (folder / "corpus.jsonl").write_text("".join(json.dumps({"_id": d, "title": "", "text": t}) + "\n"
                                                 for d, t in DOCS.items()))
    (folder / "queries.jsonl").write_text("".join(json.dumps({"_id": q, "text": t}) + "\n"
                                                  for q, t in (TRAIN | TEST).items()))
    for split, queries in (("train", TRAIN), ("test", TEST)):
        rows = "".join(f"{q}\t{RELEVANT[q]}\t1\n" for q in queries)
        (folder / "qrels" / f"{split}.tsv").write_text("query-id\tcorpus-id\tscore\n" + rows)
    return folder


def test_dvc_repro_trains_the_judge_and_uses_it_to_filter_and_clean_negatives(tmp_path, judge_model, judge_tokenizer,
                                                                              tiny_encoder_dir):
    base = tmp_path / "tiny-base"
    judge_model.save_pretrained(str(base))
    judge_tokenizer.save_pretrained(str(base))
    dataset = _binary_beir(tmp_path / "binary")
    repo = copy_repository(tmp_path / "repo")
    params = yaml.safe_load((repo / "params.yaml").read_text())
    params["download"]["sources"] = {"tiny": f"local:{dataset}"}
    params["augment"].update(dataset="tiny", num_passages=8, max_new_tokens=12)
    params["runtime"]["batch_size"] = 4
    params["judge"].update(enabled=True, dataset="tiny", base_model=str(base), cosine_encoder=str(tiny_encoder_dir),
                           test_fraction=0.5, max_length=48, batch_size=4, candidates_top_k=8)
    # min_expected_grade 0: a random judge keeps every pair; the test checks the wiring, the benchmark the quality
    params["filter"].update(method="judge", judge_model="models/judge", min_expected_grade=0.0)
    params["negatives"].update(count=1, miner=str(tiny_encoder_dir), range_max=8, judge="models/judge",
                               judge_max_grade=1.0)
    # and as labeller: min_grade 0 makes every graded BM25 candidate a positive (the wiring again, not quality)
    params["labels"].update(judge="models/judge", top_k=2, min_grade=0.0, max_negative_grade=0.0)
    params["train"].update(datasets=["tiny"], model=str(tiny_encoder_dir), augmented_pairs=2, batch_size=4)
    params["evaluate"]["datasets"] = ["tiny"]
    (repo / "params.yaml").write_text(yaml.safe_dump(params, sort_keys=False))
    commit_repository(repo)

    output = run([sys.executable, "-m", "dvc", "repro"], repo)
    for stage in ["judge", "filter", "pairs", "train", "evaluate@tiny"]:
        assert f"Running stage '{stage}'" in output
    judge = json.loads((repo / "metrics" / "judge.json").read_text())
    assert judge["enabled"] and judge["queries"] == {"judge_train": 2, "judge_test": 2}
    assert set(judge["agreement"]) == {"tuned", "untuned", "cosine"}
    filtered = json.loads((repo / "metrics" / "filter.json").read_text())
    assert filtered["kept"] == filtered["input"] and sum(g["input"] for g in filtered["by_grade"].values()) == filtered["input"]
    pairs = json.loads((repo / "metrics" / "pairs.json").read_text())
    assert pairs["negatives"]["pairs_with_negatives"] == pairs["pairs"]
    records = [json.loads(line) for line in (repo / "data" / "pairs" / "pairs.jsonl").read_text().splitlines()]
    assert all(len(record["negatives"]) == 1 for record in records)
    assert pairs["labels"]["graded"] > 0 and pairs["labels"]["positives_added"] == pairs["labels"]["graded"]
    assert pairs["labelled"] == sum(record["source"] == "labelled" for record in records) > 0
    shown = run([sys.executable, "-m", "dvc", "exp", "show", "--json"], repo, stdout_only=True)
    assert "metrics/judge.json" in shown and "quadratic_kappa" in shown  # the agreement is in `dvc exp show`
