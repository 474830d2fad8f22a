"""BM25 retrieval with bm25s: the lexical baseline and the default retriever of consistency filtering."""

from __future__ import annotations

from augir.data.beir import Document, document_text


def bm25_run(corpus: dict[str, Document], queries: dict[str, str], top_k: int) -> dict[str, dict[str, float]]:
    """Top-k documents per query by BM25 (English stopwords removed); documents sharing no term are not returned."""
    import bm25s

    doc_ids = sorted(corpus)
    retriever = bm25s.BM25()
    retriever.index(bm25s.tokenize([document_text(corpus[d]) for d in doc_ids], stopwords="en", show_progress=False),
                    show_progress=False)
    query_ids = sorted(queries)
    tokens = bm25s.tokenize([queries[q] for q in query_ids], stopwords="en", show_progress=False)
    rows, scores = retriever.retrieve(tokens, k=min(top_k, len(doc_ids)), show_progress=False)
    return {
        query_id: {doc_ids[row]: float(score) for row, score in zip(rows[i], scores[i]) if score > 0}
        for i, query_id in enumerate(query_ids)
    }
