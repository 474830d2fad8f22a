"""Our conventions reproduce MTEB's published all-MiniLM-L6-v2 numbers on BEIR SciFact (full test split).

Public reference: embeddings-benchmark/mtebpaper, results/all-MiniLM-L6-v2/SciFact.json (test split):
ndcg_at_10 0.64508, recall_at_100 0.925. That file has no MRR@10, so MRR@10 is checked against trec_eval's
recip_rank computed by pytrec_eval on the same run cut at rank 10.
"""

import json

import pytest

from augir.cli import main
from augir.retrieval.metrics import read_trec_run, trec_ranking

pytestmark = pytest.mark.slow

MTEB_NDCG_AT_10 = 0.64508
MTEB_RECALL_AT_100 = 0.925


@pytest.fixture(scope="module")
def scifact_evaluation(shared_datasets, tmp_path_factory):
    out = tmp_path_factory.mktemp("scifact")
    status = main([
        "evaluate", "--model", "minilm-l6", "--dataset", str(shared_datasets / "scifact"), "--split", "test",
        "--out", str(out / "metrics.json"), "--run-dir", str(out / "eval"),
    ])
    assert status == 0
    return json.loads((out / "metrics.json").read_text()), out / "eval" / "run.trec"


def test_ndcg_and_recall_match_mteb_to_three_decimals(scifact_evaluation):
    metrics, _ = scifact_evaluation
    assert metrics["num_queries"] == 300
    assert round(metrics["ndcg_at_10"], 3) == round(MTEB_NDCG_AT_10, 3)
    assert round(metrics["recall_at_100"], 3) == round(MTEB_RECALL_AT_100, 3)


def test_mrr_at_10_equals_trec_eval_recip_rank_at_cutoff_10(scifact_evaluation, shared_datasets):
    import pytrec_eval

    from augir.data.beir import read_qrels

    metrics, run_file = scifact_evaluation
    qrels = read_qrels(shared_datasets / "scifact" / "qrels" / "test.tsv")
    top10 = {qid: dict(trec_ranking(docs)[:10]) for qid, docs in read_trec_run(run_file).items()}
    per_query = pytrec_eval.RelevanceEvaluator(qrels, {"recip_rank"}).evaluate(top10)
    expected = sum(per_query.get(qid, {"recip_rank": 0.0})["recip_rank"] for qid in qrels) / len(qrels)
    assert metrics["mrr_at_10"] == pytest.approx(expected, abs=1e-9)
