"""Indexes kept on disk, so that building and searching them holds a block of vectors, never the whole corpus.

- `Flat` (exact) needs no build: the encode stage's `embeddings.npy` is the index. `StreamedFlat` searches it
  block by block, read with plain file reads (a memory map's touched pages would count as resident), keeping
  each query's best k in faiss's `ResultHeap`, as `faiss.contrib.exhaustive_search.knn_ground_truth` does.
- IVF indexes (`IVF<n>,Flat`, `IVF<n>,PQ<m>`, ...) are trained once on the seeded sample; each block is added to a
  copy of the trained empty index and written as a shard, and the shards are merged into one inverted-lists file
  (`index.ivfdata`) by `faiss.contrib.ondisk.merge_ondisk`, the way faiss's own demo_ondisk_ivf builds indexes
  larger than memory. Rows keep their corpus order, so the index equals one built in memory. It is read back with
  `IO_FLAG_ONDISK_SAME_DIR`, so the folder may move (DVC's cache, a clone) and still find its data file.
- Everything else (HNSW) is built in memory: its graph links every vector to others.
"""

from __future__ import annotations

import os
import shutil
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

IVFDATA_FILE = "index.ivfdata"
BLOCK_BYTES = 32 << 20  # vectors read at a time: large enough for BLAS, small next to any corpus worth streaming


@dataclass(frozen=True)
class EmbeddingsFile:
    """A float32 `.npy` matrix read by rows through the file, not a memory map."""

    path: Path
    rows: int
    dim: int
    offset: int  # bytes of the .npy header

    @classmethod
    def open(cls, path: Path) -> EmbeddingsFile:
        with Path(path).open("rb") as handle:
            major, _ = np.lib.format.read_magic(handle)
            read_header = np.lib.format.read_array_header_1_0 if major == 1 else np.lib.format.read_array_header_2_0
            shape, fortran_order, dtype = read_header(handle)
            offset = handle.tell()
        if len(shape) != 2 or fortran_order or dtype != np.float32:
            raise ValueError(f"{path}: expected a C-ordered float32 matrix, got {dtype} {shape}")
        return cls(Path(path), int(shape[0]), int(shape[1]), offset)

    def __len__(self) -> int:
        return self.rows

    def __getitem__(self, rows: np.ndarray) -> np.ndarray:
        """Rows by a sorted index array (what `augir.retrieval.factory.train` samples), read with `take`."""
        return self.take(rows)

    def block_rows(self, block_bytes: int = BLOCK_BYTES) -> int:
        return max(1, block_bytes // (4 * self.dim))

    def blocks(self, block_rows: int) -> Iterator[tuple[int, np.ndarray]]:
        """(first row, rows) for consecutive blocks; each block is a fresh array the caller may keep."""
        with self.path.open("rb") as handle:
            handle.seek(self.offset)
            for start in range(0, self.rows, block_rows):
                count = min(block_rows, self.rows - start)
                block = np.fromfile(handle, dtype=np.float32, count=count * self.dim)
                yield start, block.reshape(count, self.dim)

    def take(self, rows: np.ndarray) -> np.ndarray:
        """The given rows (sorted), each read on its own: a training sample without mapping the file."""
        out = np.empty((len(rows), self.dim), dtype=np.float32)
        row_bytes = 4 * self.dim
        with self.path.open("rb") as handle:
            descriptor = handle.fileno()
            for i, row in enumerate(rows):
                out[i] = np.frombuffer(os.pread(descriptor, row_bytes, self.offset + int(row) * row_bytes), np.float32)
        return out


class StreamedFlat:
    """Exact inner-product search over an embeddings file, one block at a time: what `Flat` is on disk."""

    def __init__(self, embeddings: EmbeddingsFile, block_rows: int | None = None) -> None:
        self.embeddings = embeddings
        self.block_rows = block_rows or embeddings.block_rows()

    @property
    def ntotal(self) -> int:
        return self.embeddings.rows

    def search(self, queries: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
        """Scores and rows of each query's top k, best first, as faiss's `Index.search` returns them."""
        import faiss

        queries = np.ascontiguousarray(queries, dtype=np.float32)
        heap = faiss.ResultHeap(len(queries), k, keep_max=True)
        for start, block in self.embeddings.blocks(self.block_rows):
            scores, rows = faiss.knn(queries, block, min(k, len(block)), metric=faiss.METRIC_INNER_PRODUCT)
            heap.add_result(scores, rows + start)
        heap.finalize()
        return heap.D, heap.I


def is_ivf(index: Any) -> bool:
    import faiss

    try:
        faiss.extract_index_ivf(index)
    except RuntimeError:
        return False
    return True


def fill_ivf_on_disk(trained: Any, embeddings: EmbeddingsFile, folder: Path, index_file: str) -> Any:
    """Add every row of `embeddings` to the trained, empty IVF index `trained` through shards merged on disk;
    writes `folder/index_file` and `folder/index.ivfdata` and returns the filled index."""
    import faiss
    from faiss.contrib.ondisk import merge_ondisk

    shards = folder / ".shards"
    shards.mkdir()
    names = []
    for number, (start, block) in enumerate(embeddings.blocks(embeddings.block_rows())):
        shard = faiss.clone_index(trained)
        shard.add_with_ids(block, np.arange(start, start + len(block), dtype=np.int64))
        names.append(str(shards / f"{number}.faiss"))
        faiss.write_index(shard, names[-1])
        del shard
    merge_ondisk(trained, names, str(folder / IVFDATA_FILE))
    # The data file is named without its folder: the index's bytes do not depend on where it was built, and
    # readers find the file beside the index (IO_FLAG_ONDISK_SAME_DIR).
    faiss.downcast_InvertedLists(faiss.extract_index_ivf(trained).invlists).filename = IVFDATA_FILE
    faiss.write_index(trained, str(folder / index_file))
    shutil.rmtree(shards)
    return trained


def read_ivf_on_disk(path: Path) -> Any:
    """An index written by `fill_ivf_on_disk`, its inverted lists mapped read-only from the file beside it."""
    import faiss

    return faiss.read_index(str(path), faiss.IO_FLAG_ONDISK_SAME_DIR | faiss.IO_FLAG_READ_ONLY)
