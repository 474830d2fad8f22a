"""The encode stage and dense search: corpus embeddings (float32), a faiss index, top-k retrieval.

The encode stage streams the corpus: its ids are read first (compact, `augir.data.doc_ids`), then its texts chunk
by chunk, encoded straight into `embeddings.npy` on disk (resumable, see `augir.retrieval.chunked`). The
index is built from that file block by block and kept on disk where it can be (`augir.retrieval.on_disk`): `Flat`
is the embeddings file itself, searched block by block; IVF indexes are merged on disk; HNSW is built in memory.
Evaluate reads what is on disk without loading it (see `load_index`).
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from augir.data.beir import CORPUS_FILE, BeirDataset, document_text, iter_corpus, read_corpus_ids
from augir.data.doc_ids import DocIds
from augir.errors import AugirError
from augir.fileio import atomic_folder, check_replaceable, write_json_atomic
from augir.retrieval import factory as factories
from augir.retrieval.chunked import ChunkPlan, encode_chunks, file_stamp, fingerprint, work_folder
from augir.retrieval.on_disk import EmbeddingsFile, StreamedFlat, fill_ivf_on_disk, is_ivf, read_ivf_on_disk

log = logging.getLogger(__name__)

EMBEDDINGS_FILE = "embeddings.npy"
IDS_FILE = "doc_ids.npy"  # row i of the index is document i (UTF-8 bytes; `augir.data.doc_ids`)
LEGACY_IDS_FILE = "doc_ids.json"  # what folders written before December 2026 hold instead
INDEX_FILE = "index.faiss"  # absent for Flat: embeddings.npy is the index
INFO_FILE = "index.json"  # the factory string, exactness, training rows and how evaluate reads the index
# index.json's `index_mmap` for the on-disk kinds; the faiss-mapped kinds say "full", "partial" or "none".
STREAMED = "streamed"  # Flat: embeddings.npy searched block by block
ON_DISK = "ondisk"  # IVF: inverted lists in index.ivfdata, mapped read-only


@dataclass(frozen=True)
class IndexOptions:
    """encode.* as the index builder needs them (see augir.params.EncodeParams)."""

    factory: str = factories.EXACT
    train_sample: int = 100_000
    seed: int = 0
    nprobe: int = 16
    ef_search: int = 128
    chunk_size: int = 4096


@dataclass
class DenseIndex:
    doc_ids: Sequence[str]
    index: Any  # a faiss index (or a StreamedFlat) whose row i is doc_ids[i]
    info: dict[str, Any] = field(default_factory=dict)

    def search_record(self) -> dict[str, Any]:
        """What every evaluation's metrics say about the search: exact or not, which index, with which depth."""
        keys = ("index", "exact", "index_mmap", "nprobe", "ef_search")
        return {key: self.info[key] for key in keys if key in self.info}


def _normalize(encoder: Any) -> bool:
    # Cosine models are searched by inner product of unit vectors; dot-product models keep their norms.
    return getattr(encoder, "similarity_fn_name", "cosine") == "cosine"


def _encode_documents(encoder: Any, texts: list[str], batch_size: int, progress: bool,
                      pool: dict[str, Any] | None = None) -> np.ndarray:
    embeddings = encoder.encode_document(
        texts,
        batch_size=batch_size,
        show_progress_bar=progress,
        convert_to_numpy=True,
        normalize_embeddings=_normalize(encoder),
        **({"pool": pool} if pool is not None else {}),
    )
    return np.ascontiguousarray(embeddings, dtype=np.float32)


@contextlib.contextmanager
def device_pool(encoder: Any, devices: list[str] | None) -> Iterator[dict[str, Any] | None]:
    """sentence-transformers' multi-process pool, one process per device (`runtime.encode_devices`), started once
    for the whole corpus rather than once per chunk; None (encode in this process) for no or one device."""
    if not devices or len(devices) == 1:
        if devices:
            encoder.to(devices[0])
        yield None
        return
    pool = encoder.start_multi_process_pool(target_devices=list(devices))
    try:
        yield pool
    finally:
        encoder.stop_multi_process_pool(pool)


def encode_corpus(encoder: Any, dataset: BeirDataset, batch_size: int) -> tuple[list[str], np.ndarray]:
    """The whole corpus in memory, in id order: for small corpora searched in one go (filter, `augir evaluate`)."""
    doc_ids = sorted(dataset.corpus)
    texts = [document_text(dataset.corpus[doc_id]) for doc_id in doc_ids]
    return doc_ids, _encode_documents(encoder, texts, batch_size, progress=True)


def encode_queries(encoder: Any, queries: dict[str, str], batch_size: int) -> tuple[list[str], np.ndarray]:
    query_ids = sorted(queries)
    embeddings = encoder.encode_query(
        [queries[query_id] for query_id in query_ids],
        batch_size=batch_size,
        convert_to_numpy=True,
        normalize_embeddings=_normalize(encoder),
    )
    return query_ids, np.ascontiguousarray(embeddings, dtype=np.float32)


def build_faiss_index(embeddings: np.ndarray, options: IndexOptions) -> tuple[Any, dict[str, Any]]:
    """Train (on a seeded sample) and fill an index from `embeddings`, which may be a memmap: it is read in chunks."""
    index = factories.make_index(options.factory, embeddings.shape[1])
    trained = factories.train(index, embeddings, sample=options.train_sample, seed=options.seed)
    for start in range(0, len(embeddings), options.chunk_size):
        index.add(np.ascontiguousarray(embeddings[start:start + options.chunk_size], dtype=np.float32))
    info = {"index": options.factory, "exact": factories.is_exact(index), "rows": int(index.ntotal),
            "dim": int(embeddings.shape[1]), "train_rows": trained, "index_mmap": factories.mmap_mode(index).mode}
    info.update(factories.apply_search_params(index, nprobe=options.nprobe, ef_search=options.ef_search))
    return index, info


def build_index(doc_ids: list[str], embeddings: np.ndarray, kind: str = factories.EXACT,
                options: IndexOptions | None = None) -> DenseIndex:
    chosen = options or IndexOptions(factory=factories.canonical_factory(kind))
    index, info = build_faiss_index(embeddings, chosen)
    return DenseIndex(doc_ids=doc_ids, index=index, info=info)


def save_index(dense: DenseIndex, embeddings: np.ndarray, out_dir: Path, *, overwrite: bool = False) -> None:
    """Write an index built in memory (`build_index`) as an index folder, whole or not at all."""
    import faiss

    with atomic_folder(out_dir, signature=INFO_FILE, overwrite=overwrite) as staging:
        np.save(staging / EMBEDDINGS_FILE, embeddings)
        DocIds.from_strings(dense.doc_ids).save(staging / IDS_FILE)
        faiss.write_index(dense.index, str(staging / INDEX_FILE))
        write_json_atomic(staging / INFO_FILE, dense.info)


def build_on_disk(embeddings: EmbeddingsFile, options: IndexOptions, folder: Path) -> dict[str, Any]:
    """Write the index of `embeddings` into `folder` (an index folder being staged); returns its index.json record.

    Memory holds a block of vectors and the training sample, plus the index itself only for the kinds that cannot
    live on disk (HNSW's graph, other non-IVF indexes).
    """
    import faiss

    record: dict[str, Any] = {"index": options.factory, "rows": embeddings.rows, "dim": embeddings.dim}
    if options.factory == factories.EXACT:
        return {**record, "exact": True, "train_rows": 0, "index_mmap": STREAMED}
    index = factories.make_index(options.factory, embeddings.dim)
    trained = factories.train(index, embeddings, sample=options.train_sample, seed=options.seed)
    if is_ivf(index):
        fill_ivf_on_disk(index, embeddings, folder, INDEX_FILE)
        mode = ON_DISK
    else:
        for _, block in embeddings.blocks(embeddings.block_rows()):
            index.add(block)
        faiss.write_index(index, str(folder / INDEX_FILE))
        mode = factories.mmap_mode(index).mode
    record.update(exact=factories.is_exact(index), train_rows=trained, index_mmap=mode)
    record.update(factories.apply_search_params(index, nprobe=options.nprobe, ef_search=options.ef_search))
    return record


def index_corpus(model: str, corpus: Path, out_dir: Path, *, batch_size: int, max_seq_length: int | None,
                 options: IndexOptions | None = None, backend: str = "torch", devices: list[str] | None = None,
                 overwrite: bool = False) -> DenseIndex:
    """What the encode stage does: embed a BEIR folder's corpus (streamed, resumable), index it, save at `out_dir`.
    `devices` (e.g. ["cuda:0", "cuda:1"]) encodes each chunk across one process per device."""
    from augir.retrieval.encoders import load_encoder

    options = options or IndexOptions()
    corpus_path = corpus / CORPUS_FILE if Path(corpus).is_dir() else Path(corpus)
    check_replaceable(out_dir, INFO_FILE, overwrite=overwrite)  # before the expensive part
    factories.canonical_factory(options.factory)  # a bad string fails before the model is loaded
    if devices and len(devices) > 1 and backend != "torch":
        raise AugirError(f"runtime.encode_devices: several devices need encode.backend torch, not {backend!r} "
                         "(OpenVINO and ONNX Runtime use every CPU core in one process)")
    doc_ids = read_corpus_ids(corpus_path)

    encoder = load_encoder(model, max_seq_length=max_seq_length, backend=backend)
    dim = encoder.get_embedding_dimension()
    plan = ChunkPlan(rows=len(doc_ids), dim=dim, chunk_size=options.chunk_size,
                     fingerprint=fingerprint(file_stamp(Path(model)), file_stamp(corpus_path), max_seq_length,
                                             batch_size, _normalize(encoder), backend))
    work = work_folder(Path(out_dir))
    with device_pool(encoder, devices) as pool:
        path = encode_chunks(lambda texts: _encode_documents(encoder, texts, batch_size, progress=False, pool=pool),
                             (text for _, text in iter_corpus(corpus_path)), plan, work)
    with atomic_folder(out_dir, signature=INFO_FILE, overwrite=overwrite) as staging:
        info = build_on_disk(EmbeddingsFile.open(path), options, staging)
        doc_ids.save(staging / IDS_FILE)
        write_json_atomic(staging / INFO_FILE, info)
        os.replace(path, staging / EMBEDDINGS_FILE)  # last: a failed build leaves the encoded work to resume from
    for leftover in work.iterdir():
        leftover.unlink()
    work.rmdir()
    return load_index(Path(out_dir))


def read_index_file(path: Path, info: dict[str, Any]) -> tuple[Any, str]:
    """The index memory-mapped where its kind allows (what encode recorded), else read whole; returns it and the mode."""
    import faiss

    mode = info.get("index_mmap", "none")
    if mode in ("full", "partial"):
        # IVF maps its inverted lists; flat-code indexes (Flat, PQ, and HNSW's vectors) map their codes.
        flag = faiss.IO_FLAG_MMAP if info.get("index", "").startswith("IVF") else faiss.IO_FLAG_MMAP_IFC
        try:
            return faiss.read_index(str(path), flag), mode
        except RuntimeError as error:
            log.warning("%s: cannot be memory-mapped (%s); reading it whole", path, factories.faiss_message(error))
    else:
        log.warning("%s: a %s index cannot be memory-mapped; reading it whole", path, info.get("index", "faiss"))
    return faiss.read_index(str(path)), "none"


def _read_doc_ids(folder: Path) -> Sequence[str]:
    if (folder / IDS_FILE).is_file():
        return DocIds.load(folder / IDS_FILE)
    return json.loads((folder / LEGACY_IDS_FILE).read_text(encoding="utf-8"))


def load_index(folder: Path, *, nprobe: int | None = None, ef_search: int | None = None) -> DenseIndex:
    """The encoded index, searched with the depth given (else the one encode recorded), read without loading what
    can stay on disk: Flat's embeddings are streamed, IVF's lists and flat codes memory-mapped."""
    info_path = folder / INFO_FILE
    if not info_path.is_file() and not (folder / INDEX_FILE).is_file():
        raise AugirError(f"{folder}: no {INFO_FILE}; run the encode stage first")
    # Folders written before factory strings hold an exact IndexFlatIP and no index.json; its codes map fine.
    info = json.loads(info_path.read_text(encoding="utf-8")) if info_path.is_file() else {
        "index": factories.EXACT, "exact": True, "index_mmap": "full"}
    mode = info.get("index_mmap")
    if mode == STREAMED:
        return DenseIndex(doc_ids=_read_doc_ids(folder), index=StreamedFlat(EmbeddingsFile.open(folder / EMBEDDINGS_FILE)),
                          info=info)
    if mode == ON_DISK:
        index = read_ivf_on_disk(folder / INDEX_FILE)
    else:
        index, mode = read_index_file(folder / INDEX_FILE, info)
    defaults = IndexOptions()
    depth = {"nprobe": nprobe or info.pop("nprobe", defaults.nprobe),
             "ef_search": ef_search or info.pop("ef_search", defaults.ef_search)}
    info = {**info, "index_mmap": mode, **factories.apply_search_params(index, **depth)}
    return DenseIndex(doc_ids=_read_doc_ids(folder), index=index, info=info)


def search(dense: DenseIndex, query_ids: list[str], query_embeddings: np.ndarray, top_k: int) -> dict[str, dict[str, float]]:
    """Top-k documents per query by inner product, as a run: query id -> doc id -> score."""
    k = min(top_k, len(dense.doc_ids))
    scores, rows = dense.index.search(query_embeddings, k)
    return {
        query_id: {dense.doc_ids[row]: float(score) for row, score in zip(rows[i], scores[i]) if row >= 0}
        for i, query_id in enumerate(query_ids)
    }


def index_options(params: Any) -> IndexOptions:
    """IndexOptions from an EncodeParams (or any object with its attributes: the CLI's arguments)."""
    return IndexOptions(factory=factories.canonical_factory(params.index), train_sample=params.train_sample,
                        seed=params.seed, nprobe=params.nprobe, ef_search=params.ef_search, chunk_size=params.chunk_size)
