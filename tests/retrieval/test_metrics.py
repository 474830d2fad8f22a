"""Exact metric values on hand-made qrels and runs, with the arithmetic written out.

trec_eval conventions checked here: gain = graded relevance, discount = log2(rank + 1); ties broken
by score descending then document id descending; the mean (-c) runs over every query in the qrels.
"""

from __future__ import annotations

import math
from pathlib import Path

import pytest

from augir.errors import AugirError
from augir.retrieval.metrics import (
    Evaluation,
    Qrels,
    Run,
    evaluate_run,
    read_trec_run,
    remove_self_hits,
    trec_ranking,
    write_trec_run,
)

log2 = math.log2


def _approx(value: float) -> object:
    return pytest.approx(value, rel=1e-12, abs=1e-12)


def test_graded_relevance_is_the_gain() -> None:
    qrels: Qrels = {"q1": {"a": 2, "b": 1, "c": 0}}
    run: Run = {"q1": {"b": 3.0, "a": 2.0, "c": 1.0}}  # b (grade 1) above a (grade 2)

    result = evaluate_run(qrels, run)

    dcg = 1 / log2(2) + 2 / log2(3)  # b at rank 1, a at rank 2, c contributes 0
    idcg = 2 / log2(2) + 1 / log2(3)  # ideal: a, then b
    assert result.aggregate["ndcg_at_10"] == _approx(dcg / idcg)
    assert result.aggregate["ndcg_at_10"] < 1.0  # binary relevance would give exactly 1
    assert result.aggregate["mrr_at_10"] == _approx(1 / 1)
    assert result.aggregate["recall_at_100"] == _approx(2 / 2)


def test_grade_order_in_the_run_reaches_ideal_ndcg() -> None:
    qrels: Qrels = {"q1": {"a": 2, "b": 1}}
    run: Run = {"q1": {"a": 3.0, "b": 2.0, "x": 1.0}}

    result = evaluate_run(qrels, run)

    dcg = 2 / log2(2) + 1 / log2(3)
    idcg = 2 / log2(2) + 1 / log2(3)
    assert result.aggregate["ndcg_at_10"] == _approx(dcg / idcg)


def test_ties_are_broken_by_document_id_descending() -> None:
    qrels: Qrels = {"q1": {"a": 1}}
    run: Run = {"q1": {"a": 1.0, "b": 1.0, "c": 1.0}}  # all tied: trec_eval ranks c, b, a

    result = evaluate_run(qrels, run)

    assert result.aggregate["mrr_at_10"] == _approx(1 / 3)  # ascending ids would give 1/1
    assert result.aggregate["ndcg_at_10"] == _approx((1 / log2(4)) / (1 / log2(2)))
    assert result.aggregate["recall_at_100"] == _approx(1 / 1)


def test_tie_order_does_not_depend_on_insertion_order() -> None:
    qrels: Qrels = {"q1": {"a": 1}}
    forward: Run = {"q1": {"a": 1.0, "b": 1.0, "c": 1.0}}
    backward: Run = {"q1": {"c": 1.0, "b": 1.0, "a": 1.0}}

    assert evaluate_run(qrels, forward).aggregate == evaluate_run(qrels, backward).aggregate
    assert evaluate_run(qrels, backward).aggregate["mrr_at_10"] == _approx(1 / 3)


def test_ties_at_the_cutoff_push_the_relevant_document_out_of_the_top_10() -> None:
    qrels: Qrels = {"q1": {"a": 1}}
    tied = {f"d{i:02d}": 5.0 for i in range(1, 11)}  # d10 > ... > d01 > a as strings
    run: Run = {"q1": {**tied, "a": 5.0}}  # so "a" is rank 11 of 11

    result = evaluate_run(qrels, run)

    assert result.aggregate["mrr_at_10"] == _approx(0.0)  # 1/11 would mean no cutoff
    assert result.aggregate["ndcg_at_10"] == _approx(0.0)
    assert result.aggregate["recall_at_100"] == _approx(1 / 1)


def test_mrr_cutoff_is_10() -> None:
    qrels: Qrels = {"q_at_10": {"rel": 1}, "q_at_11": {"rel": 1}}
    run: Run = {
        "q_at_10": {**{f"n{i}": 100.0 - i for i in range(1, 10)}, "rel": 90.5},  # rank 10
        "q_at_11": {**{f"n{i}": 100.0 - i for i in range(1, 11)}, "rel": 89.5},  # rank 11
    }

    result = evaluate_run(qrels, run)

    assert result.per_query["mrr_at_10"] == {"q_at_10": _approx(1 / 10), "q_at_11": _approx(0.0)}
    assert result.aggregate["mrr_at_10"] == _approx((1 / 10 + 0) / 2)


def test_judged_query_without_results_counts_as_zero() -> None:
    qrels: Qrels = {"q1": {"a": 1}, "q2": {"b": 1}}
    run: Run = {"q1": {"a": 1.0}}  # q2 retrieved nothing

    result = evaluate_run(qrels, run)

    assert result.aggregate["num_queries"] == 2
    assert result.aggregate["ndcg_at_10"] == _approx((1.0 + 0.0) / 2)
    assert result.aggregate["mrr_at_10"] == _approx((1.0 + 0.0) / 2)
    assert result.aggregate["recall_at_100"] == _approx((1.0 + 0.0) / 2)
    assert result.per_query["ndcg_at_10"]["q2"] == 0.0


def test_judged_query_with_an_empty_result_list_counts_as_zero() -> None:
    qrels: Qrels = {"q1": {"a": 1}, "q2": {"b": 1}}
    run: Run = {"q1": {"a": 1.0}, "q2": {}}

    result = evaluate_run(qrels, run)

    assert result.aggregate["num_queries"] == 2
    assert result.aggregate["ndcg_at_10"] == _approx((1.0 + 0.0) / 2)


def test_query_whose_judgments_are_all_zero_counts_as_zero_like_trec_eval_c() -> None:
    qrels: Qrels = {"q1": {"a": 1}, "q2": {"b": 0}}
    run: Run = {"q1": {"a": 1.0}, "q2": {"b": 1.0}}

    result = evaluate_run(qrels, run)

    assert result.aggregate["num_queries"] == 2  # trec_eval -c divides by qrels queries
    assert result.aggregate["ndcg_at_10"] == _approx((1.0 + 0.0) / 2)
    assert result.aggregate["mrr_at_10"] == _approx((1.0 + 0.0) / 2)
    assert result.aggregate["recall_at_100"] == _approx((1.0 + 0.0) / 2)


def test_run_query_without_qrels_is_ignored() -> None:
    qrels: Qrels = {"q1": {"a": 1}}
    run: Run = {"q1": {"a": 2.0, "b": 1.0}, "unjudged": {"x": 9.0, "a": 1.0}}

    result = evaluate_run(qrels, run)

    assert result.aggregate["num_queries"] == 1
    assert result.aggregate["ndcg_at_10"] == _approx(1 / log2(2))
    assert set(result.per_query["ndcg_at_10"]) == {"q1"}


def test_self_hits_are_removed_by_default() -> None:
    qrels: Qrels = {"q1": {"d1": 1}}
    run: Run = {"q1": {"q1": 0.9, "d1": 0.8, "d2": 0.7}}  # the query retrieves itself first

    result = evaluate_run(qrels, run)

    assert result.self_hits_removed is True
    assert result.aggregate["mrr_at_10"] == _approx(1 / 1)
    assert result.aggregate["ndcg_at_10"] == _approx((1 / log2(2)) / (1 / log2(2)))


def test_self_hits_kept_when_flag_is_false() -> None:
    qrels: Qrels = {"q1": {"d1": 1}}
    run: Run = {"q1": {"q1": 0.9, "d1": 0.8, "d2": 0.7}}

    result = evaluate_run(qrels, run, remove_self_hits=False)

    assert result.self_hits_removed is False
    assert result.aggregate["mrr_at_10"] == _approx(1 / 2)
    assert result.aggregate["ndcg_at_10"] == _approx((1 / log2(3)) / (1 / log2(2)))


def test_remove_self_hits_returns_a_new_run() -> None:
    run: Run = {"q1": {"q1": 0.9, "d1": 0.8}, "q2": {"q1": 0.5}}

    cleaned = remove_self_hits(run)

    assert cleaned == {"q1": {"d1": 0.8}, "q2": {"q1": 0.5}}  # q1 is only a self-hit for q1
    assert run == {"q1": {"q1": 0.9, "d1": 0.8}, "q2": {"q1": 0.5}}  # input untouched


def test_recall_at_100_counts_only_the_first_100_of_more_results() -> None:
    qrels: Qrels = {"q1": {"r1": 1, "r2": 1, "r3": 1}}
    ranked = [f"n{i:03d}" for i in range(150)]
    ranked[0], ranked[99], ranked[100] = "r1", "r2", "r3"  # ranks 1, 100 and 101
    run: Run = {"q1": {doc: 1000.0 - rank for rank, doc in enumerate(ranked, start=1)}}

    result = evaluate_run(qrels, run)

    assert len(run["q1"]) == 150
    assert result.aggregate["recall_at_100"] == _approx(2 / 3)
    idcg = 1 / log2(2) + 1 / log2(3) + 1 / log2(4)
    assert result.aggregate["ndcg_at_10"] == _approx((1 / log2(2)) / idcg)
    assert result.aggregate["mrr_at_10"] == _approx(1 / 1)


def test_mean_over_several_queries_and_per_query_values() -> None:
    qrels: Qrels = {"q1": {"a": 1}, "q2": {"b": 1}, "q3": {"c": 1}}
    run: Run = {
        "q1": {"a": 3.0, "x": 2.0},  # rank 1
        "q2": {"x": 3.0, "b": 2.0},  # rank 2
        "q3": {"x": 3.0, "y": 2.0, "c": 1.0},  # rank 3
    }

    result = evaluate_run(qrels, run)

    assert result.per_query["mrr_at_10"] == {
        "q1": _approx(1 / 1),
        "q2": _approx(1 / 2),
        "q3": _approx(1 / 3),
    }
    assert result.aggregate["mrr_at_10"] == _approx((1 + 1 / 2 + 1 / 3) / 3)
    expected_ndcg = (1 / log2(2) + 1 / log2(3) + 1 / log2(4)) / 3  # idcg = 1 for each query
    assert result.aggregate["ndcg_at_10"] == _approx(expected_ndcg)


def test_to_json_dict_records_the_self_hit_setting() -> None:
    qrels: Qrels = {"q1": {"a": 1}, "q2": {"b": 1}}
    run: Run = {"q1": {"a": 1.0}}

    for flag in (True, False):
        payload = evaluate_run(qrels, run, remove_self_hits=flag).to_json_dict()
        assert payload == {
            "ndcg_at_10": _approx(0.5),
            "recall_at_100": _approx(0.5),
            "mrr_at_10": _approx(0.5),
            "num_queries": 2,
            "self_hits_removed": flag,
        }


def test_evaluation_is_a_plain_dataclass() -> None:
    evaluation = Evaluation(aggregate={"num_queries": 0}, per_query={}, self_hits_removed=True)
    assert evaluation.to_json_dict() == {"num_queries": 0, "self_hits_removed": True}


def test_empty_qrels_is_an_error() -> None:
    with pytest.raises(AugirError):
        evaluate_run({}, {"q1": {"a": 1.0}})


def test_non_integer_grade_is_an_error() -> None:
    with pytest.raises(AugirError):
        evaluate_run({"q1": {"a": 1.5}}, {"q1": {"a": 1.0}})  # type: ignore[dict-item]


def test_non_finite_score_is_an_error() -> None:
    with pytest.raises(AugirError):
        evaluate_run({"q1": {"a": 1}}, {"q1": {"a": float("nan")}})


def test_trec_ranking_orders_by_score_then_doc_id_descending() -> None:
    ranking = trec_ranking({"a": 1.0, "c": 1.0, "b": 2.0, "d": 0.5})
    assert [doc for doc, _ in ranking] == ["b", "c", "a", "d"]


def test_write_and_read_trec_run_round_trip(tmp_path: Path) -> None:
    run: Run = {
        "q2": {"d1": 0.5, "d3": 0.5, "d2": 0.75},
        "q1": {"x": 1.0 / 3.0, "y": -2.5},
    }
    path = tmp_path / "runs" / "model.trec"

    write_trec_run(run, path, tag="minilm")

    assert read_trec_run(path) == run  # scores survive exactly
    lines = path.read_text(encoding="utf-8").splitlines()
    assert [line.split()[:4] for line in lines] == [
        ["q1", "Q0", "x", "1"],
        ["q1", "Q0", "y", "2"],
        ["q2", "Q0", "d2", "1"],
        ["q2", "Q0", "d3", "2"],  # tie with d1 at 0.5: larger doc id first
        ["q2", "Q0", "d1", "3"],
    ]
    assert all(len(line.split()) == 6 and line.split()[5] == "minilm" for line in lines)
    assert sorted(p.name for p in path.parent.iterdir()) == ["model.trec"]  # no temp file left


def test_written_run_evaluates_like_the_in_memory_run(tmp_path: Path) -> None:
    qrels: Qrels = {"q1": {"a": 2, "b": 1}, "q2": {"c": 1}}
    run: Run = {"q1": {"b": 0.5, "a": 0.5, "z": 0.25}, "q2": {"c": 0.1, "q2": 0.9}}
    path = tmp_path / "run.trec"

    write_trec_run(run, path, tag="t")

    assert evaluate_run(qrels, read_trec_run(path)) == evaluate_run(qrels, run)


def test_write_trec_run_replaces_an_existing_file(tmp_path: Path) -> None:
    path = tmp_path / "run.trec"
    path.write_text("stale content\n", encoding="utf-8")

    write_trec_run({"q1": {"a": 1.0}}, path, tag="t")

    assert path.read_text(encoding="utf-8") == "q1 Q0 a 1 1.0 t\n"


def test_write_trec_run_rejects_whitespace_in_ids_and_tag(tmp_path: Path) -> None:
    path = tmp_path / "run.trec"
    with pytest.raises(AugirError):
        write_trec_run({"q1": {"a b": 1.0}}, path, tag="t")
    with pytest.raises(AugirError):
        write_trec_run({"q1": {"a": 1.0}}, path, tag="my tag")
    assert not path.exists()


def test_read_trec_run_rejects_malformed_lines(tmp_path: Path) -> None:
    path = tmp_path / "bad.trec"
    path.write_text("q1 Q0 a 1 0.5 t\nq1 Q0 b 2\n", encoding="utf-8")
    with pytest.raises(AugirError, match=r"bad\.trec:2"):
        read_trec_run(path)


def test_read_trec_run_rejects_duplicate_documents(tmp_path: Path) -> None:
    path = tmp_path / "dup.trec"
    path.write_text("q1 Q0 a 1 0.5 t\nq1 Q0 a 2 0.4 t\n", encoding="utf-8")
    with pytest.raises(AugirError, match="twice"):
        read_trec_run(path)


def test_read_trec_run_missing_file_is_an_error(tmp_path: Path) -> None:
    with pytest.raises(AugirError):
        read_trec_run(tmp_path / "missing.trec")
