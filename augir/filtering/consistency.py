"""Consistency filtering (InPars, Promptagator): does a query's own passage rank in the top k for it?"""

from __future__ import annotations

from augir.data.beir import BeirDataset


def source_ranks(pairs: list[tuple[str, str, str]], dataset: BeirDataset, retriever: str, top_k: int) -> dict[str, int | None]:
    """The rank of each query's source passage within the top k (None when it is not there)."""
    queries = {query_id: text for query_id, text, _ in pairs}
    if retriever == "bm25":
        from augir.retrieval.bm25 import bm25_run

        run = bm25_run(dataset.corpus, queries, top_k)
    else:
        from augir.retrieval.encoders import load_encoder
        from augir.retrieval.index import build_index, encode_corpus, encode_queries, search

        encoder = load_encoder(retriever)
        dense = build_index(*encode_corpus(encoder, dataset, batch_size=64))
        query_ids, embeddings = encode_queries(encoder, queries, batch_size=64)
        run = search(dense, query_ids, embeddings, top_k)
    ranks: dict[str, int | None] = {}
    for query_id, _, doc_id in pairs:
        ranked = sorted(run.get(query_id, {}).items(), key=lambda item: (-item[1], item[0]))
        position = next((i for i, (d, _) in enumerate(ranked, start=1) if d == doc_id), None)
        ranks[query_id] = position
    return ranks
