"""The evaluate stage: retrieve the top k for a split's queries, write a TREC run, score it with trec_eval semantics."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from augir.data.beir import BeirDataset
from augir.fileio import atomic_folder
from augir.retrieval.index import DenseIndex, build_index, encode_corpus, encode_queries, search
from augir.retrieval.metrics import Evaluation, evaluate_run, write_trec_run

RUN_FILE = "run.trec"
PER_QUERY_FILE = "per_query.json"


def retrieve(encoder: Any, dense: DenseIndex, queries: dict[str, str], top_k: int, batch_size: int) -> dict[str, dict[str, float]]:
    query_ids, embeddings = encode_queries(encoder, queries, batch_size)
    return search(dense, query_ids, embeddings, top_k)


def evaluate_split(
    encoder: Any, dense: DenseIndex, dataset: BeirDataset, *, split: str, top_k: int, remove_self_hits: bool,
    batch_size: int = 64,
) -> tuple[dict[str, dict[str, float]], Evaluation]:
    queries = dataset.split_queries(split)
    run = retrieve(encoder, dense, queries, top_k, batch_size)
    return run, evaluate_run(dataset.qrels[split], run, remove_self_hits=remove_self_hits)


def evaluate_model(
    encoder: Any, dataset: BeirDataset, *, split: str, top_k: int = 1000, remove_self_hits: bool = True,
    batch_size: int = 64,
) -> tuple[dict[str, dict[str, float]], Evaluation]:
    """Encode the corpus, search and score in one go (what `augir evaluate --model` does)."""
    doc_ids, embeddings = encode_corpus(encoder, dataset, batch_size)
    dense = build_index(doc_ids, embeddings)
    return evaluate_split(
        encoder, dense, dataset, split=split, top_k=top_k, remove_self_hits=remove_self_hits, batch_size=batch_size
    )


# BM25 scores every document that shares a term with the query: its top k is exact.
BM25_SEARCH = {"index": "bm25s", "exact": True}


def metrics_record(evaluation: Evaluation, dataset: BeirDataset, *, split: str, top_k: int,
                   search: dict[str, Any]) -> dict[str, Any]:
    """What metrics/<name>.json holds: the means, the settings, how the search ran (`exact`, the index) and how many
    judgments name unknown ids. `search` is required so that no report can leave out whether a run was exact."""
    if "exact" not in search:
        raise ValueError("metrics_record: the search record must say whether the search was exact")
    return {**evaluation.to_json_dict(), "split": split, "top_k": top_k, **search, **dataset.unknown_references(split)}


def write_run_outputs(run: dict[str, dict[str, float]], evaluation: Evaluation, out_dir: Path, tag: str, *,
                      overwrite: bool = False) -> None:
    """The TREC run and per-query scores (for significance tests), written whole or not at all."""
    with atomic_folder(out_dir, signature=RUN_FILE, overwrite=overwrite, option="--run-dir") as staging:
        write_trec_run(run, staging / RUN_FILE, tag)
        (staging / PER_QUERY_FILE).write_text(json.dumps(evaluation.per_query, indent=1, sort_keys=True), encoding="utf-8")


def evaluate_bm25(
    dataset: BeirDataset, *, split: str, top_k: int, remove_self_hits: bool
) -> tuple[dict[str, dict[str, float]], Evaluation]:
    """The lexical baseline: BM25 (bm25s) over the corpus for the split's queries, scored like the dense runs."""
    from augir.retrieval.bm25 import bm25_run

    run = bm25_run(dataset.corpus, dataset.split_queries(split), top_k)
    return run, evaluate_run(dataset.qrels[split], run, remove_self_hits=remove_self_hits)
