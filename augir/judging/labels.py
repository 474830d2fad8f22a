"""The judge as labeller: the Qwant paper's "augmented relevance dataset" for training.

For every training query (real or synthetic), BM25 ranks the corpus; the trained judge grades the top
`labels.top_k` candidates that are not already a positive of that query. Those graded relevant (expected grade at
least `labels.min_grade`) become new positive pairs (source "labelled"); those graded not relevant (under
`labels.max_negative_grade`) become the query's hard negatives, in BM25 order, `labels.negatives` per pair. The
grades in between are left out: the judge is unsure there.
"""

from __future__ import annotations

from dataclasses import replace
from typing import Any

from augir.data.beir import Document, document_text
from augir.training.pairs import Pair


def label_pairs(pairs: list[Pair], corpus: dict[str, Document], judge: Any, params: Any) -> tuple[list[Pair], dict]:
    """``pairs`` plus the judge's positives, with its negatives where ``params.negatives`` asks for them (pairs left
    with fewer are dropped, as the loss needs one negative column count); ``params`` is a `LabelsParams`."""
    from augir.retrieval.bm25 import bm25_run

    queries = list(dict.fromkeys(pair.query for pair in pairs))  # first-seen order, so output order is fixed
    known = {query: set() for query in queries}
    for pair in pairs:
        known[pair.query].add(pair.document)
    run = bm25_run(corpus, {f"q{i}": query for i, query in enumerate(queries)}, params.top_k)
    candidates = [
        (query, text)
        for i, query in enumerate(queries)
        for doc_id, _ in sorted(run.get(f"q{i}", {}).items(), key=lambda item: (-item[1], item[0]))
        if (text := document_text(corpus[doc_id])) not in known[query]
    ]
    readings = judge.grade(candidates) if candidates else []
    positives: list[Pair] = []
    negatives: dict[str, list[str]] = {query: [] for query in queries}
    for (query, text), reading in zip(candidates, readings):
        if reading.expected >= params.min_grade:
            positives.append(Pair(query, text, "labelled"))
        elif reading.expected < params.max_negative_grade:
            negatives[query].append(text)
    labelled = pairs + positives
    stats = {"graded": len(candidates), "positives_added": len(positives),
             "negatives_found": sum(len(texts) for texts in negatives.values())}
    if params.negatives:
        kept = [replace(pair, negatives=tuple(negatives[pair.query][:params.negatives]))
                for pair in labelled if len(negatives[pair.query]) >= params.negatives]
        stats["pairs_dropped"] = len(labelled) - len(kept)
        labelled = kept
    return labelled, stats
