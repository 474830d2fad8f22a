"""Which faiss index `encode.index` names: a faiss index-factory string (`Flat`, `HNSW32`, `IVF256,Flat`, ...).

Every index searches by inner product (cosine models are encoded as unit vectors). `Flat` is exact; everything
else is approximate, and the metrics say so (`exact`), so a report can never mistake an approximate run for an
exact one. The faiss calls live here so the rest of augir deals in factory strings and plain numbers.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

import numpy as np

from augir.errors import AugirError

EXACT = "Flat"
# The only value accepted before factory strings: it was exact inner product, which is what `Flat` is here.
ALIASES = {"flat_ip": EXACT}
# A dimension divisible by the usual PQ sizes, to check a string's syntax before the real dimension is known.
_PROBE_DIM = 2880
EXAMPLES = ("Flat", "HNSW32", "IVF256,Flat", "IVF256,PQ16")
_FAISS_ERROR = re.compile(r"^Error in .*? at \S+:\d+: (?:Error: )?(.*)$")


@dataclass(frozen=True)
class MmapMode:
    """How evaluate reads an index: the faiss IO flag and how much of the index stays on disk."""

    flag: int
    mode: str  # "full": all codes memory-mapped; "partial": codes mapped, graph in memory; "none": read whole


def canonical_factory(value: str) -> str:
    """The factory string `value` names (aliases resolved), or an AugirError naming encode.index if faiss cannot parse it.

    Only the syntax is checked here: whether PQ<m> divides the model's dimension is known at encode time.
    """
    factory = ALIASES.get(value, value)
    try:
        make_index(factory, _PROBE_DIM)
    except AugirError as error:
        if "could not parse" in str(error):
            raise AugirError(f"encode.index: {value!r} is not a faiss index-factory string; "
                             f"use e.g. {', '.join(EXAMPLES)} (or flat_ip, the old name of Flat)") from None
    return factory


def faiss_message(error: Exception) -> str:
    """faiss's first error line without its C++ location: what a user can act on."""
    first = str(error).strip().splitlines()[0] if str(error).strip() else type(error).__name__
    match = _FAISS_ERROR.match(first)
    return match.group(1) if match else first


def make_index(factory: str, dim: int) -> Any:
    """An empty inner-product index built by faiss's index_factory; errors are one line naming encode.index."""
    import faiss

    try:
        return faiss.index_factory(dim, factory, faiss.METRIC_INNER_PRODUCT)
    except (RuntimeError, ValueError) as error:
        raise AugirError(f"encode.index: {factory!r} is not a usable faiss index-factory string for dimension {dim} "
                         f"({faiss_message(error)}); use e.g. {', '.join(EXAMPLES)}") from None


def is_exact(index: Any) -> bool:
    """True for brute-force float search (IndexFlat): the only index whose top k is the true top k."""
    import faiss

    return isinstance(faiss.downcast_index(index), faiss.IndexFlat)


def training_rows(total: int, sample: int, seed: int) -> np.ndarray:
    """The rows an index trains on: a seeded sample without replacement, sorted so reading a memmap is sequential."""
    if sample >= total:
        return np.arange(total)
    return np.sort(np.random.default_rng(seed).choice(total, size=sample, replace=False))


def train(index: Any, embeddings: np.ndarray, *, sample: int, seed: int) -> int:
    """Train `index` (IVF centroids, PQ codebooks) on a seeded sample of `embeddings`; returns the rows used (0: none needed)."""
    import faiss

    if index.is_trained:
        return 0
    rows = training_rows(len(embeddings), sample, seed)
    try:
        ivf = faiss.extract_index_ivf(index)
        ivf.cp.seed = seed  # k-means' own initialisation, so the centroids follow encode.seed too
    except RuntimeError:
        pass  # not an IVF index (PQ, HNSW-PQ): their k-means keeps faiss's fixed default seed
    try:
        index.train(np.ascontiguousarray(embeddings[rows], dtype=np.float32))
    except RuntimeError as error:
        raise AugirError(f"encode.index: training {len(rows)} vectors failed ({faiss_message(error)}); "
                         "raise encode.train_sample or choose fewer IVF lists") from None
    return len(rows)


def apply_search_params(index: Any, *, nprobe: int, ef_search: int) -> dict[str, int]:
    """Set the search depth on the index kinds that have one; returns what was set (recorded with the metrics)."""
    import faiss

    applied: dict[str, int] = {}
    try:
        faiss.extract_index_ivf(index).nprobe = nprobe
        applied["nprobe"] = nprobe
    except RuntimeError:
        pass
    inner = faiss.downcast_index(index)
    if hasattr(inner, "hnsw"):
        inner.hnsw.efSearch = ef_search  # faiss searches with max(efSearch, k) anyway
        applied["ef_search"] = ef_search
    return applied


def mmap_mode(index: Any) -> MmapMode:
    """How far `index` can be searched straight from its file (measured with faiss 1.15: see benchmarks/index_memory.py).

    IVF indexes map their inverted lists (IO_FLAG_MMAP); flat-code indexes (Flat, PQ) map their codes
    (IO_FLAG_MMAP_IFC); HNSW maps its vectors but reads its graph into memory; anything else is read whole.
    """
    import faiss

    inner = faiss.downcast_index(index)
    try:
        faiss.extract_index_ivf(index)
        return MmapMode(faiss.IO_FLAG_MMAP, "full")
    except RuntimeError:
        pass
    if isinstance(inner, faiss.IndexFlatCodes):
        return MmapMode(faiss.IO_FLAG_MMAP_IFC, "full")
    if hasattr(inner, "hnsw") and isinstance(faiss.downcast_index(inner.storage), faiss.IndexFlatCodes):
        return MmapMode(faiss.IO_FLAG_MMAP_IFC, "partial")
    return MmapMode(0, "none")
