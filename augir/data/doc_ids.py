"""A corpus's document ids, compact: one numpy array of UTF-8 bytes in corpus order, not a list of Python strings.

At MS MARCO scale (8.8M passages) a list and a set of `str` cost about 1 GB; this array costs the ids' bytes
(about 60 MB), can be saved as `.npy` and read back memory-mapped, and answers `in` by binary search over a
sorted copy. It is what the encode stage keeps of the corpus and what evaluate maps rows back through.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Sequence
from pathlib import Path

import numpy as np

from augir.errors import AugirError

_BATCH = 65_536  # ids turned into an array at a time while reading: bounds the Python objects alive at once


class DocIds(Sequence[str]):
    """Ids in corpus order (row i of the index is `ids[i]`), with membership by binary search."""

    def __init__(self, array: np.ndarray) -> None:
        if array.dtype.kind != "S":
            raise TypeError(f"DocIds needs a bytes array, not {array.dtype}")
        self._array = array
        self._sorted: np.ndarray | None = None

    @classmethod
    def from_strings(cls, ids: Iterable[str]) -> DocIds:
        batches = [np.array(batch, dtype=bytes) for batch in _batches(i.encode("utf-8") for i in ids)]
        return cls(np.concatenate(batches) if batches else np.array([], dtype="S1"))

    @classmethod
    def load(cls, path: Path) -> DocIds:
        return cls(np.load(path, mmap_mode="r"))

    def save(self, path: Path) -> None:
        np.save(path, np.asarray(self._array))

    def __len__(self) -> int:
        return len(self._array)

    def __getitem__(self, row):  # type: ignore[override]  # int -> str; a slice -> list[str]
        if isinstance(row, slice):
            return [value.decode("utf-8") for value in self._array[row]]
        return self._array[row].decode("utf-8")

    def __iter__(self) -> Iterator[str]:
        for start in range(0, len(self._array), _BATCH):
            yield from (value.decode("utf-8") for value in self._array[start:start + _BATCH])

    def __contains__(self, doc_id: object) -> bool:
        if not isinstance(doc_id, str):
            return False
        ordered = self.sorted_array()
        needle = doc_id.encode("utf-8")
        position = int(np.searchsorted(ordered, needle))
        # Compared in Python: numpy may cut a needle longer than the array's width before searching.
        return position < len(ordered) and ordered[position] == needle

    def sorted_array(self) -> np.ndarray:
        if self._sorted is None:
            self._sorted = np.sort(self._array)
        return self._sorted

    def sorted_ids(self) -> list[str]:
        """Every id in sorted (byte) order, as Python strings: for the stages that choose among them."""
        return [value.decode("utf-8") for value in self.sorted_array()]


def _batches(values: Iterable[bytes]) -> Iterator[list[bytes]]:
    batch: list[bytes] = []
    for value in values:
        batch.append(value)
        if len(batch) == _BATCH:
            yield batch
            batch = []
    if batch:
        yield batch


def check_unique(ids: DocIds, lines: Sequence[int], where: str) -> None:
    """Refuse the first repeated id in file order, naming both lines, as a one-line error (`where`:line: ...).

    `lines[i]` is the file line of `ids[i]`. Checked after reading (a stable sort), so reading keeps no set of ids.
    """
    array = np.asarray(ids._array)
    order = np.argsort(array, kind="stable")
    ordered = array[order]
    repeats = np.flatnonzero(ordered[1:] == ordered[:-1])
    if not repeats.size:
        return
    # Of all (earlier, later) pairs of equal ids, the later row that comes first in the file is the first repeat.
    later = order[repeats + 1]
    pick = int(np.argmin(later))
    first_row, repeat_row = int(order[repeats[pick]]), int(later[pick])
    doc_id = ids[repeat_row]
    raise AugirError(f"{where}:{lines[repeat_row]}: duplicate document id {doc_id!r} "
                     f"(first on line {lines[first_row]})")
