import numpy as np
import pytest
import yaml

from augir.data.beir import document_text
from augir.errors import AugirError
from augir.fileio import write_jsonl
from augir.params import TrainParams
from augir.retrieval.encoders import load_encoder
from augir.training.pairs import Pair, real_pairs, synthetic_pairs
from augir.training.train import train_encoder


def _augmented(folder, pairs):
    (folder / "qrels").mkdir(parents=True)
    write_jsonl(folder / "queries.jsonl", ({"_id": qid, "text": text} for qid, text, _ in pairs))
    rows = "".join(f"{qid}\t{doc}\t1\n" for qid, _, doc in pairs)
    (folder / "qrels" / "train.tsv").write_text("query-id\tcorpus-id\tscore\n" + rows)
    return folder


def test_real_pairs_come_from_positive_train_judgments_only(tiny_dataset):
    pairs = real_pairs(tiny_dataset, "tiny")
    assert len(pairs) == 4
    assert Pair("what is a black hole", document_text(tiny_dataset.corpus["d2"])) in pairs
    test_queries = set(tiny_dataset.split_queries("test").values())
    assert not test_queries & {pair.query for pair in pairs}


def test_real_pairs_skip_judgments_naming_unknown_ids(tiny_dataset):
    tiny_dataset.qrels["train"] = {"q1": {"d1": 1, "ghost": 1}, "q9": {"d2": 1}}
    assert real_pairs(tiny_dataset, "tiny") == [Pair("how do plants make sugar", document_text(tiny_dataset.corpus["d1"]))]


def test_a_dataset_without_train_split_is_refused(tiny_dataset):
    del tiny_dataset.qrels["train"]
    with pytest.raises(AugirError, match="tiny has no 'train' qrels"):
        real_pairs(tiny_dataset, "tiny")


def test_synthetic_pairs_are_a_prefix_in_generation_order(tmp_path, tiny_dataset):
    folder = _augmented(tmp_path / "aug", [("g7", "sugar from light", "d1"), ("g2", "oxygen in rust", "d4"), ("g5", "moon", "d5")])
    two = synthetic_pairs(folder, tiny_dataset, 2)
    assert [pair.query for pair in two] == ["sugar from light", "oxygen in rust"]
    assert synthetic_pairs(folder, tiny_dataset, 3)[:2] == two
    assert synthetic_pairs(folder, tiny_dataset, 0) == []


def test_asking_for_more_synthetic_pairs_than_exist_is_an_error(tmp_path, tiny_dataset):
    folder = _augmented(tmp_path / "aug", [("g1", "sugar", "d1")])
    with pytest.raises(AugirError, match="train.augmented_pairs: 5 asked, but .* holds only 1 pairs"):
        synthetic_pairs(folder, tiny_dataset, 5)


def test_too_few_kept_pairs_says_how_many_were_generated_and_kept(tmp_path, tiny_dataset):
    folder = _augmented(tmp_path / "aug", [("g1", "sugar", "d1"), ("g2", "rust", "d4")])
    write_jsonl(folder / "provenance.jsonl", [{"query_id": f"g{i}"} for i in range(1, 6)])
    with pytest.raises(AugirError) as caught:
        synthetic_pairs(folder, tiny_dataset, 4)
    assert str(caught.value) == (f"train.augmented_pairs: 4 asked, but {folder} holds only 2 pairs (of 5 generated "
                                 "queries; clean-up and filtering dropped the rest): ask for at most 2, or generate "
                                 "for more passages")


def test_training_changes_the_model_and_saves_prefixes(tmp_path, tiny_dataset, tiny_encoder_dir):
    config = TrainParams(datasets=["tiny"], model=str(tiny_encoder_dir), query_prefix="q: ", passage_prefix="p: ", epochs=2, batch_size=4, max_seq_length=32)
    stats = train_encoder(real_pairs(tiny_dataset, "tiny"), config, tmp_path / "model", log_dir=tmp_path / "live")
    assert stats["steps"] == 2 and stats["pairs"] == 4
    trained = load_encoder(str(tmp_path / "model"))
    assert trained.prompts["query"] == "q: " and trained.prompts["document"] == "p: "
    before = load_encoder(str(tiny_encoder_dir)).encode(["tides"])
    assert not np.allclose(before, trained.encode(["tides"]), atol=1e-5)
    assert (tmp_path / "live" / "plots" / "metrics" / "train" / "loss.tsv").is_file()


def test_zero_epochs_saves_the_model_untrained(tmp_path, tiny_dataset, tiny_encoder_dir):
    config = TrainParams(datasets=["tiny"], model=str(tiny_encoder_dir), epochs=0)
    stats = train_encoder(real_pairs(tiny_dataset, "tiny"), config, tmp_path / "model", log_dir=tmp_path / "live")
    assert stats["steps"] == 0
    before = load_encoder(str(tiny_encoder_dir)).encode(["tides"])
    assert np.allclose(before, load_encoder(str(tmp_path / "model")).encode(["tides"]), atol=1e-6)
    assert yaml.safe_load((tmp_path / "live" / "params.yaml").read_text()) == {"epochs": 0}


def test_training_uses_the_no_duplicates_batch_sampler(monkeypatch, tmp_path, tiny_dataset, tiny_encoder_dir):
    import sentence_transformers

    seen = {}
    original = sentence_transformers.SentenceTransformerTrainer.__init__

    def spy(self, *args, **kwargs):
        seen["sampler"] = kwargs["args"].batch_sampler
        seen["loss"] = type(kwargs["loss"]).__name__
        original(self, *args, **kwargs)

    monkeypatch.setattr(sentence_transformers.SentenceTransformerTrainer, "__init__", spy)
    train_encoder(real_pairs(tiny_dataset, "tiny"), TrainParams(datasets=["tiny"], model=str(tiny_encoder_dir), batch_size=2), tmp_path / "m")
    assert str(seen["sampler"]).endswith("no_duplicates") or "NO_DUPLICATES" in str(seen["sampler"])
    assert seen["loss"] == "MultipleNegativesRankingLoss"


def test_one_distinct_passage_trains_with_loss_zero_and_says_so(tmp_path, tiny_encoder_dir, caplog):
    pairs = [Pair("how do plants make sugar", "Plants make sugar."), Pair("what is photosynthesis", "Plants make sugar.")]
    params = TrainParams(datasets=["tiny"], model=str(tiny_encoder_dir), batch_size=2, epochs=1)
    stats = train_encoder(pairs, params, tmp_path / "model")
    assert stats["final_loss"] == 0.0
    assert any("all 2 pairs have the same passage" in r.getMessage() for r in caplog.records if r.levelname == "WARNING")
