"""The judge as labeller: BM25 candidates of each training query graded; relevant ones become positive pairs,
non-relevant ones hard negatives. A hand-made judge (grades fixed per passage) makes every outcome exact."""

from __future__ import annotations

from pathlib import Path

import pytest

from augir.data.beir import document_text
from augir.judging.labels import label_pairs
from augir.judging.readout import GradeReading
from augir.params import LabelsParams, Params
from augir.training.pairs import Pair


class FixedJudge:
    """Grades a (query, passage) pair by the passage's id word, and remembers what it was asked."""

    def __init__(self, grades: dict[str, float]):
        self.grades = grades
        self.asked: list[tuple[str, str]] = []

    def grade(self, pairs: list[tuple[str, str]], progress: bool = False) -> list[GradeReading]:
        self.asked += pairs
        readings = []
        for _, text in pairs:
            expected = next((grade for word, grade in self.grades.items() if word in text), 0.5)
            readings.append(GradeReading(probabilities=[1 - expected, expected], expected=expected, argmax=round(expected)))
        return readings


def _pair(dataset, query_id: str, doc_id: str, source: str = "real") -> Pair:
    return Pair(dataset.queries[query_id], document_text(dataset.corpus[doc_id]), source)


def test_graded_relevant_become_positives_graded_not_relevant_negatives_unsure_left_out(tiny_dataset):
    corpus = tiny_dataset.corpus
    pairs = [_pair(tiny_dataset, "q4", "d4")]  # "why does iron rust" -> the rust passage
    # three more passages sharing "iron" with the query, so that BM25 ranks them as its candidates
    judge = FixedJudge({"Photosynthesis": 0.9, "Volcanoes": 0.1, "Antibiotics": 0.5})
    query = tiny_dataset.queries["q4"]
    extra = {
        "x1": corpus["d1"].__class__("x1", "Photosynthesis", "iron in plants"),
        "x2": corpus["d1"].__class__("x2", "Volcanoes", "iron rich lava rust"),
        "x3": corpus["d1"].__class__("x3", "Antibiotics", "iron and bacteria"),
    }
    labelled, stats = label_pairs(pairs, {**corpus, **extra}, judge,
                                  LabelsParams(judge="j", top_k=10, min_grade=0.75, max_negative_grade=0.25,
                                               negatives=1))
    graded = {text for _, text in judge.asked}
    assert document_text(corpus["d4"]) not in graded  # a known positive is never graded
    assert {document_text(doc) for doc in extra.values()} <= graded
    positive = document_text(extra["x1"])
    negative = document_text(extra["x2"])
    assert labelled == [Pair(query, document_text(corpus["d4"]), "real", (negative,)),
                        Pair(query, positive, "labelled", (negative,))]
    assert stats["positives_added"] == 1 and stats["pairs_dropped"] == 0 and stats["graded"] == len(judge.asked)


def test_without_negatives_asked_pairs_keep_none_and_a_query_without_enough_is_dropped(tiny_dataset):
    pairs = [_pair(tiny_dataset, "q1", "d1"), _pair(tiny_dataset, "q2", "d2")]
    judge = FixedJudge({})  # every candidate unsure (0.5): no positive, no negative
    labelled, stats = label_pairs(pairs, tiny_dataset.corpus, judge, LabelsParams(judge="j"))
    assert labelled == pairs and stats["positives_added"] == 0
    labelled, stats = label_pairs(pairs, tiny_dataset.corpus, judge, LabelsParams(judge="j", negatives=1))
    assert labelled == [] and stats["pairs_dropped"] == 2


def test_thresholds_that_overlap_and_two_sources_of_negatives_are_refused(default_params_data):
    with pytest.raises(ValueError, match="labels.max_negative_grade .* must not exceed labels.min_grade"):
        LabelsParams(min_grade=0.3, max_negative_grade=0.6)
    data = {**default_params_data, "labels": {"judge": "models/judge", "negatives": 2}, "negatives": {"count": 1}}
    with pytest.raises(ValueError, match="labels.negatives and negatives.count"):
        Params.model_validate(data)


@pytest.fixture
def default_params_data():
    import yaml

    return yaml.safe_load((Path(__file__).resolve().parents[2] / "params.yaml").read_text())
