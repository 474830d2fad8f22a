"""Hard negatives: mined with sentence-transformers' mine_hard_negatives, cleaned by a judge, written and trained on."""

import json

import pytest

from augir.judging.readout import GradeReading
from augir.params import NegativesParams, TrainParams
from augir.training.negatives import mine_negatives
from augir.training.pairs import Pair, read_pairs, write_pairs
from augir.training.train import train_encoder

CORPUS = ["plants turn light into sugar", "black holes bend light", "vaccines train the immune system",
          "iron rusts in water", "the moon raises tides", "insulin lowers blood sugar"]
PAIRS = [Pair("how do plants make sugar", CORPUS[0]), Pair("why does iron rust", CORPUS[3]),
         Pair("what causes tides", CORPUS[4])]


class JudgeCallingOneDocumentRelevant:
    def __init__(self, relevant):
        self.relevant, self.asked = relevant, []

    def grade(self, pairs, progress=False):
        self.asked += pairs
        return [GradeReading([0.0, 1.0], 1.0, 1) if text == self.relevant else GradeReading([1.0, 0.0], 0.0, 0)
                for _, text in pairs]


def test_mined_negatives_are_corpus_passages_other_than_the_positive(tiny_encoder_dir):
    params = NegativesParams(count=2, miner=str(tiny_encoder_dir), range_max=6)
    mined, stats = mine_negatives(PAIRS, CORPUS, params)
    assert [(p.query, p.document) for p in mined] == [(p.query, p.document) for p in PAIRS]
    for pair in mined:
        assert len(pair.negatives) == 2 and pair.document not in pair.negatives
        assert set(pair.negatives) <= set(CORPUS)
    assert stats == {"mined": 6, "judged_relevant": 0, "pairs_with_negatives": 3, "pairs_dropped": 0}


def test_the_judge_removes_false_negatives(tiny_encoder_dir):
    judge = JudgeCallingOneDocumentRelevant(relevant=CORPUS[5])
    params = NegativesParams(count=1, miner=str(tiny_encoder_dir), range_max=6, judge="models/judge")
    mined, stats = mine_negatives(PAIRS, CORPUS, params, judge)
    assert len(judge.asked) == 6  # twice the count mined per pair, each graded
    assert all(CORPUS[5] not in pair.negatives for pair in mined)
    assert stats["judged_relevant"] == sum(1 for _, text in judge.asked if text == CORPUS[5])
    assert stats["pairs_with_negatives"] + stats["pairs_dropped"] == 3


def test_pairs_without_negatives_are_written_as_before(tmp_path):
    write_pairs(PAIRS[:1], tmp_path / "plain")
    assert json.loads((tmp_path / "plain" / "pairs.jsonl").read_text()) == {
        "query": PAIRS[0].query, "document": PAIRS[0].document, "source": "real"}
    with_negatives = [Pair("q", "d", "real", ("n1", "n2"))]
    write_pairs(with_negatives, tmp_path / "hard")
    assert read_pairs(tmp_path / "hard") == with_negatives


def test_training_with_negative_columns_changes_the_model(tmp_path, tiny_encoder_dir):
    from augir.retrieval.encoders import load_encoder

    pairs, _ = mine_negatives(PAIRS, CORPUS, NegativesParams(count=1, miner=str(tiny_encoder_dir), range_max=6))
    config = TrainParams(datasets=["tiny"], model=str(tiny_encoder_dir), epochs=1, batch_size=3, max_seq_length=32,
                         warmup_ratio=0, learning_rate=1e-3)  # one step: no warm-up, or its learning rate is 0
    stats = train_encoder(pairs, config, tmp_path / "model")
    assert stats["steps"] == 1
    before = load_encoder(str(tiny_encoder_dir)).encode(["tides"])
    after = load_encoder(str(tmp_path / "model")).encode(["tides"])
    assert not (before == after).all()


def test_a_window_that_is_empty_is_refused():
    with pytest.raises(ValueError, match="range_min"):
        NegativesParams(range_min=5, range_max=5)
