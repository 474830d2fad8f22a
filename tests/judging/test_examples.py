from collections import Counter

import pytest

from augir.data.beir import BeirDataset, Document
from augir.errors import AugirError
from augir.judging.examples import build_examples, graded_candidates, judge_queries


def graded_dataset() -> BeirDataset:
    corpus = {f"d{i}": Document(f"d{i}", "", f"text {i}") for i in range(12)}
    queries = {q: f"query {q}" for q in ["a", "b", "c", "d", "e", "t"]}
    train = {
        "a": {"d0": 2, "d1": 1},
        "b": {"d2": 2, "d3": 0},
        "c": {"d4": 1, "d5": 2},
        "d": {"d6": 1},
        "e": {"d7": 2},
        "t": {"d8": 2},  # also judged in test: must never be used
    }
    return BeirDataset(corpus=corpus, queries=queries, qrels={"train": train, "test": {"t": {"d8": 1}}})


RETRIEVED = {q: {f"d{i}": 1.0 for i in range(9, 12)} | {"d0": 2.0} for q in "abcdet"}


def test_split_is_by_query_without_test_queries_and_seeded():
    dataset = graded_dataset()
    split = judge_queries(dataset, "train", test_fraction=0.4, seed=3)
    assert not set(split.train) & set(split.test)
    assert sorted(split.train + split.test) == ["a", "b", "c", "d", "e"]  # "t" is a test query
    assert len(split.test) == 2
    assert judge_queries(dataset, "train", 0.4, seed=3) == split
    assert {tuple(judge_queries(dataset, "train", 0.4, seed=s).test) for s in range(10)} != {tuple(split.test)}


def test_candidates_are_judgments_and_unjudged_retrieved_as_grade_0():
    grades = graded_candidates({"d0": 2, "d3": 0}, {"d0": 5.0, "d3": 4.0, "d9": 1.0}, max_grade=2, where="q")
    assert grades == {"d0": 2, "d3": 0, "d9": 0}
    with pytest.raises(AugirError, match="grade 3 > max_grade 2"):
        graded_candidates({"d0": 3}, {}, max_grade=2, where="q")


def test_examples_are_balanced_over_grades_and_stay_on_their_side():
    dataset = graded_dataset()
    examples = build_examples(dataset, "train", ["a", "b", "c"], RETRIEVED, max_grade=2, max_examples=None, seed=0)
    # grade 1: d1 (a), d4 (c) -> 2 per grade; grade 2 has 3, grade 0 many: sampled down to 2
    assert Counter(e.grade for e in examples) == {0: 2, 1: 2, 2: 2}
    assert {e.query_id for e in examples} <= {"a", "b", "c"}
    judged = dataset.qrels["train"]
    for example in examples:
        assert example.grade == judged[example.query_id].get(example.doc_id, 0)
        assert example.query == dataset.queries[example.query_id] and example.document == f"text {example.doc_id[1:]}"
    assert build_examples(dataset, "train", ["a", "b", "c"], RETRIEVED, 2, None, seed=0) == examples
    capped = build_examples(dataset, "train", ["a", "b", "c"], RETRIEVED, max_grade=2, max_examples=3, seed=0)
    assert Counter(e.grade for e in capped) == {0: 1, 1: 1, 2: 1}


def test_a_missing_grade_is_an_error_naming_it():
    with pytest.raises(AugirError, match="no train examples of grade 1"):
        build_examples(graded_dataset(), "train", ["b", "e"], RETRIEVED, max_grade=2, max_examples=None, seed=0)
