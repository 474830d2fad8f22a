"""SKIM's mapping on hand-made 2-d embeddings, where every cosine is known exactly."""

import numpy as np
import pytest

from augir.errors import AugirError
from augir.infusion.skim import InfusedJudgment, SyntheticQuery, skim_mapping

# Training queries on the unit circle: cos(a, b) is the dot product of the rows.
TRAIN_IDS = ["q1", "q2", "q3", "q4"]
TRAIN = np.array([[1.0, 0.0], [0.8, 0.6], [0.6, 0.8], [0.0, 1.0]])


def _map(synthetic, embeddings, existing=None, **options):
    return skim_mapping(synthetic, np.array(embeddings), TRAIN_IDS, TRAIN, existing or {}, **options)


def test_top_k_and_threshold_keep_the_nearest_above_the_cosine():
    # s1 = (1, 0): cosines 1.0 (q1), 0.8 (q2), 0.6 (q3, exactly the threshold: kept), 0.0 (q4)
    judgments, counts = _map([SyntheticQuery("s1", "dA")], [[1.0, 0.0]], top_k=3, min_similarity=0.6)
    assert judgments == [
        InfusedJudgment("q1", "dA", 1.0, "s1", 1.0),
        InfusedJudgment("q2", "dA", 0.8, "s1", 0.8),
        InfusedJudgment("q3", "dA", 0.6, "s1", 0.6),
    ]
    assert (counts.synthetic_queries, counts.synthetic_queries_used, counts.candidates) == (1, 1, 3)
    top_two, _ = _map([SyntheticQuery("s1", "dA")], [[1.0, 0.0]], top_k=2, min_similarity=0.6)
    assert [j.query_id for j in top_two] == ["q1", "q2"]
    strict, _ = _map([SyntheticQuery("s1", "dA")], [[1.0, 0.0]], top_k=10, min_similarity=0.61)
    assert [j.query_id for j in strict] == ["q1", "q2"]


def test_embeddings_are_normalised_before_the_cosine():
    judgments, _ = _map([SyntheticQuery("s1", "dA")], [[5.0, 0.0]], top_k=1, min_similarity=0.9)
    assert judgments == [InfusedJudgment("q1", "dA", 1.0, "s1", 1.0)]


def test_a_pair_found_twice_keeps_its_largest_weight_and_that_provenance():
    # s1 = (1, 0) and s2 = (0.8, 0.6) were written for the same document dA; s2 is closer to q2 (1.0 vs 0.8)
    synthetic = [SyntheticQuery("s1", "dA"), SyntheticQuery("s2", "dA")]
    judgments, counts = _map(synthetic, [[1.0, 0.0], [0.8, 0.6]], top_k=2, min_similarity=0.7)
    # s1: q1 1.0, q2 0.8; s2: q2 1.0, q1 0.8 and q3 0.96 (top 2: q2, q3)
    assert judgments == [
        InfusedJudgment("q1", "dA", 1.0, "s1", 1.0),
        InfusedJudgment("q2", "dA", 1.0, "s2", 1.0),
        InfusedJudgment("q3", "dA", pytest.approx(0.96), "s2", pytest.approx(0.96)),
    ]
    assert counts.candidates == 4 and counts.merged == 1 and counts.synthetic_queries_used == 2


def test_a_merge_tie_keeps_the_earlier_synthetic_query():
    synthetic = [SyntheticQuery("s1", "dA"), SyntheticQuery("s2", "dA")]
    judgments, counts = _map(synthetic, [[1.0, 0.0], [1.0, 0.0]], top_k=1, min_similarity=0.5)
    assert judgments == [InfusedJudgment("q1", "dA", 1.0, "s1", 1.0)]
    assert counts.merged == 1 and counts.synthetic_queries_used == 1


def test_existing_judgments_are_never_changed_or_lowered():
    # q1 already judges dA relevant (2) and q2 judged it non-relevant (0): neither is touched; q3 gains it
    existing = {"q1": {"dA": 2}, "q2": {"dA": 0}, "q3": {"dB": 1}}
    judgments, counts = _map([SyntheticQuery("s1", "dA")], [[1.0, 0.0]], existing, top_k=3, min_similarity=0.5)
    assert judgments == [InfusedJudgment("q3", "dA", 0.6, "s1", 0.6)]
    assert counts.skipped_existing == 2


def test_never_onto_test_or_dev_queries():
    with pytest.raises(AugirError, match="q2 are test or dev queries"):
        _map([SyntheticQuery("s1", "dA")], [[1.0, 0.0]], protected_query_ids={"q2", "t9"})


def test_the_strongest_come_first_and_ties_by_query_then_document():
    synthetic = [SyntheticQuery("s1", "dB"), SyntheticQuery("s2", "dA")]
    judgments, _ = _map(synthetic, [[0.0, 1.0], [0.0, 1.0]], top_k=1, min_similarity=0.5)
    assert [(j.query_id, j.doc_id) for j in judgments] == [("q4", "dA"), ("q4", "dB")]


def test_bad_settings_are_one_line_errors():
    with pytest.raises(AugirError, match="infuse.top_k"):
        _map([SyntheticQuery("s1", "dA")], [[1.0, 0.0]], top_k=0)
    with pytest.raises(AugirError, match="infuse.min_similarity"):
        _map([SyntheticQuery("s1", "dA")], [[1.0, 0.0]], min_similarity=1.5)
    with pytest.raises(AugirError, match="one embedding"):
        _map([SyntheticQuery("s1", "dA")], [[1.0, 0.0], [0.0, 1.0]])


def test_nothing_to_map_gives_nothing():
    judgments, counts = _map([], np.zeros((0, 2)))
    assert judgments == [] and counts.synthetic_queries == 0
