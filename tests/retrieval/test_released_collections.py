"""A collection as some BEIR releases are: qrels judging documents the corpus lacks (ArguAna's test split has five).

Built here from SciFact (no such release is in ../shared/datasets): its test qrels with every 8th judged document
removed from the corpus, plus a seeded sample of other documents. augir must load it as published, evaluate it as
trec_eval and MTEB do (the missing documents count in the ideal ranking and in recall), and its numbers must be the
ones pytrec_eval computes on the same run and qrels.
"""

import json
import random
import shutil

import pytest

from augir.cli import main
from augir.data.beir import load_beir, read_qrels, write_beir
from augir.retrieval.metrics import read_trec_run, trec_ranking

pytestmark = pytest.mark.slow

OTHER_DOCUMENTS = 400  # beside the judged ones: keeps encoding to about a minute on 2 cores


@pytest.fixture(scope="module")
def released(shared_datasets, tmp_path_factory):
    """(folder, the judged documents removed from its corpus)."""
    scifact = load_beir(shared_datasets / "scifact")
    test = scifact.qrels["test"]
    judged = sorted({doc for docs in test.values() for doc in docs})
    removed = set(judged[::8])
    others = sorted(set(scifact.corpus) - set(judged))
    kept = (set(judged) - removed) | set(random.Random(0).sample(others, OTHER_DOCUMENTS))
    scifact.corpus = {doc_id: doc for doc_id, doc in scifact.corpus.items() if doc_id in kept}
    scifact.qrels = {"test": test}
    folder = tmp_path_factory.mktemp("released") / "scifact-missing-docs"
    write_beir(scifact, folder)
    return folder, removed


@pytest.fixture(scope="module")
def evaluated(released, tmp_path_factory):
    folder, _ = released
    out = tmp_path_factory.mktemp("evaluated")
    status = main(["evaluate", "--model", "minilm-l6", "--dataset", str(folder), "--split", "test",
                   "--out", str(out / "metrics.json"), "--run-dir", str(out / "eval")])
    assert status == 0
    return json.loads((out / "metrics.json").read_text()), read_trec_run(out / "eval" / "run.trec")


def test_the_collection_loads_as_published_and_the_metrics_count_what_is_missing(released, evaluated):
    folder, removed = released
    metrics, _ = evaluated
    qrels = read_qrels(folder / "qrels" / "test.tsv")
    missing = sum(doc in removed for docs in qrels.values() for doc in docs)
    assert missing > 40 and metrics["qrels_unknown_documents"] == missing
    assert metrics["qrels_unknown_queries"] == 0 and metrics["num_queries"] == len(qrels) == 300


def test_the_numbers_are_pytrec_evals_on_the_same_run(released, evaluated):
    import pytrec_eval

    folder, _ = released
    metrics, run = evaluated
    qrels = read_qrels(folder / "qrels" / "test.tsv")  # as released: the missing documents' judgments included
    top10 = {qid: dict(trec_ranking(docs)[:10]) for qid, docs in run.items()}
    expected = {
        "ndcg_at_10": _mean(pytrec_eval.RelevanceEvaluator(qrels, {"ndcg_cut.10"}).evaluate(run), "ndcg_cut_10", qrels),
        "recall_at_100": _mean(pytrec_eval.RelevanceEvaluator(qrels, {"recall.100"}).evaluate(run), "recall_100", qrels),
        "mrr_at_10": _mean(pytrec_eval.RelevanceEvaluator(qrels, {"recip_rank"}).evaluate(top10), "recip_rank", qrels),
    }
    for key, value in expected.items():
        assert metrics[key] == pytest.approx(value, abs=1e-9), key
    # Dropping the unretrievable judgments instead (what augir refused to do) would report other numbers.
    corpus_ids = {json.loads(line)["_id"] for line in (folder / "corpus.jsonl").read_text().splitlines()}
    pruned = {q: {d: g for d, g in docs.items() if d in corpus_ids} for q, docs in qrels.items()}
    pruned = {q: docs for q, docs in pruned.items() if docs}
    recall_pruned = _mean(pytrec_eval.RelevanceEvaluator(pruned, {"recall.100"}).evaluate(run), "recall_100", pruned)
    assert recall_pruned > metrics["recall_at_100"] + 0.05


def test_strict_validation_refuses_the_collection(released, tmp_path, capsys):
    folder, _ = released
    status = main(["download", "--source", f"local:{folder}", "--out", str(tmp_path / "raw"), "--strict"])
    assert status == 1 and not (tmp_path / "raw").exists()
    assert "is not in the corpus" in capsys.readouterr().err
    assert main(["download", "--source", f"local:{folder}", "--out", str(tmp_path / "raw")]) == 0
    shutil.rmtree(tmp_path / "raw")


def _mean(per_query: dict[str, dict[str, float]], measure: str, qrels: dict) -> float:
    """trec_eval -c: the mean over every judged query, 0 for a query the run has nothing for."""
    return sum(per_query.get(qid, {}).get(measure, 0.0) for qid in qrels) / len(qrels)
