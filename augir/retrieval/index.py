"""The encode stage and dense search: corpus embeddings (float32), a faiss index, top-k retrieval."""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from augir.data.beir import BeirDataset, document_text
from augir.errors import AugirError
from augir.fileio import atomic_folder, check_replaceable

EMBEDDINGS_FILE = "embeddings.npy"
IDS_FILE = "doc_ids.json"
INDEX_FILE = "index.faiss"


@dataclass
class DenseIndex:
    doc_ids: list[str]
    index: Any  # a faiss index whose row i is doc_ids[i]


def _normalize(encoder: Any) -> bool:
    # Cosine models are searched by inner product of unit vectors; dot-product models keep their norms.
    return getattr(encoder, "similarity_fn_name", "cosine") == "cosine"


def encode_corpus(encoder: Any, dataset: BeirDataset, batch_size: int) -> tuple[list[str], np.ndarray]:
    doc_ids = sorted(dataset.corpus)
    texts = [document_text(dataset.corpus[doc_id]) for doc_id in doc_ids]
    embeddings = encoder.encode_document(
        texts,
        batch_size=batch_size,
        show_progress_bar=True,
        convert_to_numpy=True,
        normalize_embeddings=_normalize(encoder),
    )
    return doc_ids, np.ascontiguousarray(embeddings, dtype=np.float32)


def encode_queries(encoder: Any, queries: dict[str, str], batch_size: int) -> tuple[list[str], np.ndarray]:
    query_ids = sorted(queries)
    embeddings = encoder.encode_query(
        [queries[query_id] for query_id in query_ids],
        batch_size=batch_size,
        convert_to_numpy=True,
        normalize_embeddings=_normalize(encoder),
    )
    return query_ids, np.ascontiguousarray(embeddings, dtype=np.float32)


def build_index(doc_ids: list[str], embeddings: np.ndarray, kind: str = "flat_ip") -> DenseIndex:
    import faiss

    if kind != "flat_ip":
        raise AugirError(f"encode.index: unknown index {kind!r}; use flat_ip")
    index = faiss.IndexFlatIP(embeddings.shape[1])
    index.add(embeddings)
    return DenseIndex(doc_ids=doc_ids, index=index)


def save_index(dense: DenseIndex, embeddings: np.ndarray, out_dir: Path, *, overwrite: bool = False) -> None:
    import faiss

    with atomic_folder(out_dir, signature=INDEX_FILE, overwrite=overwrite) as staging:
        np.save(staging / EMBEDDINGS_FILE, embeddings)
        (staging / IDS_FILE).write_text(json.dumps(dense.doc_ids), encoding="utf-8")
        faiss.write_index(dense.index, str(staging / INDEX_FILE))


def index_corpus(model: str, dataset: BeirDataset, out_dir: Path, *, batch_size: int, max_seq_length: int | None,
                 kind: str = "flat_ip", backend: str = "torch", overwrite: bool = False) -> DenseIndex:
    """What the encode stage does: load the retriever, embed the corpus, save embeddings and index at `out_dir`."""
    from augir.retrieval.encoders import load_encoder

    check_replaceable(out_dir, INDEX_FILE, overwrite=overwrite)  # before the expensive part

    encoder = load_encoder(model, max_seq_length=max_seq_length, backend=backend)
    doc_ids, embeddings = encode_corpus(encoder, dataset, batch_size)
    dense = build_index(doc_ids, embeddings, kind)
    save_index(dense, embeddings, out_dir, overwrite=overwrite)
    return dense


def load_index(folder: Path) -> DenseIndex:
    import faiss

    if not (folder / INDEX_FILE).is_file():
        raise AugirError(f"{folder}: no {INDEX_FILE}; run the encode stage first")
    doc_ids = json.loads((folder / IDS_FILE).read_text(encoding="utf-8"))
    return DenseIndex(doc_ids=doc_ids, index=faiss.read_index(str(folder / INDEX_FILE)))


def search(dense: DenseIndex, query_ids: list[str], query_embeddings: np.ndarray, top_k: int) -> dict[str, dict[str, float]]:
    """Top-k documents per query by inner product, as a run: query id -> doc id -> score."""
    k = min(top_k, len(dense.doc_ids))
    scores, rows = dense.index.search(query_embeddings, k)
    return {
        query_id: {dense.doc_ids[row]: float(score) for row, score in zip(rows[i], scores[i]) if row >= 0}
        for i, query_id in enumerate(query_ids)
    }
