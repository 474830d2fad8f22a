"""The judge stage's library path end to end with tiny random models: examples, tuning, agreement, saved judge."""

import json

import pytest

from augir.data.beir import BeirDataset, Document
from augir.errors import AugirError
from augir.fileio import read_jsonl
from augir.judging.run import load_trained_judge, train_and_measure, write_disabled
from augir.params import JudgeParams

TOPICS = ["plants sugar light", "black hole gravity", "vaccine immune", "iron rust oxygen", "tides moon",
          "water light", "oxygen plants", "gravity moon", "immune water", "rust iron water"]


@pytest.fixture
def binary_dataset() -> BeirDataset:
    corpus = {f"d{i}": Document(f"d{i}", "", words) for i, words in enumerate(TOPICS)}
    queries = {f"q{i}": words.split()[0] for i, words in enumerate(TOPICS)} | {"t0": "moon"}
    train = {f"q{i}": {f"d{i}": 1} for i in range(len(TOPICS))}
    return BeirDataset(corpus=corpus, queries=queries, qrels={"train": train, "test": {"t0": {"d4": 1}}})


@pytest.fixture
def tiny_base_dir(tmp_path, judge_model, judge_tokenizer):
    folder = tmp_path / "tiny-base"
    judge_model.save_pretrained(str(folder))
    judge_tokenizer.save_pretrained(str(folder))
    return folder


def test_train_and_measure_writes_a_judge_that_grades_like_its_readings(binary_dataset, tiny_base_dir,
                                                                         tiny_encoder_dir, tmp_path):
    params = JudgeParams(enabled=True, dataset="tiny", base_model=str(tiny_base_dir), cosine_encoder=str(tiny_encoder_dir),
                         test_fraction=0.3, max_length=48, batch_size=4, learning_rate=1e-2, epochs=1, merged=True)
    out = tmp_path / "judge"
    metrics = train_and_measure(binary_dataset, params, out)
    assert metrics["queries"] == {"judge_train": 7, "judge_test": 3}
    train, test = read_jsonl(out / "judge-train.jsonl"), read_jsonl(out / "judge-test.jsonl")
    assert not {r["query_id"] for r in train} & {r["query_id"] for r in test}
    assert "t0" not in {r["query_id"] for r in train + test}
    # balanced: as many positives as BM25 negatives (the rarer side; build_examples' own tests check exact counts)
    counts = metrics["examples"]["judge_train"]
    assert counts["0"] == counts["1"] == len(train) // 2 and 1 <= counts["1"] <= 7
    assert metrics["examples"]["judge_test"]["0"] == metrics["examples"]["judge_test"]["1"] == len(test) // 2
    for judge in ("tuned", "untuned", "cosine"):
        assert set(metrics["agreement"][judge]) == {"examples", "accuracy", "kappa", "quadratic_kappa", "kendall_tau"}
        assert metrics["agreement"][judge]["examples"] == len(test)
    assert json.loads((out / "judge.json").read_text())["trained"] is True
    assert (out / "adapter" / "adapter_config.json").is_file() and (out / "merged" / "config.json").is_file()
    assert not (out / "trainer").exists()

    # The saved judge reads the same grades as the stage measured on judge-test.
    readings = read_jsonl(out / "judge-test-readings.jsonl")
    judge = load_trained_judge(out)
    pairs = [(binary_dataset.queries[r["query_id"]], binary_dataset.corpus[r["doc_id"]].text) for r in readings]
    for reading, again in zip(readings, judge.grade(pairs)):
        assert again.expected == pytest.approx(reading["tuned"]["expected"], abs=1e-5)


def test_a_disabled_judge_cannot_be_loaded(tmp_path):
    assert write_disabled(tmp_path / "judge") == {"enabled": False}
    with pytest.raises(AugirError, match="no trained judge"):
        load_trained_judge(tmp_path / "judge")
    with pytest.raises(AugirError, match="is missing"):
        load_trained_judge(tmp_path / "elsewhere")


def test_judge_dataset_is_checked_only_when_the_judge_is_on():
    from pathlib import Path

    import yaml

    from augir.params import Params

    values = yaml.safe_load((Path(__file__).resolve().parents[2] / "params.yaml").read_text())
    values["judge"]["dataset"] = "absent"
    assert not Params.model_validate(values).judge.enabled  # the default pipeline needs no judge dataset
    values["judge"]["enabled"] = True
    with pytest.raises(ValueError, match="judge.dataset: dataset 'absent' is not in download.sources"):
        Params.model_validate(values)
