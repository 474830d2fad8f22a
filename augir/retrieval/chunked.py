"""Corpus embeddings encoded chunk by chunk straight into a float32 `.npy` on disk, resumable after an interruption.

The encode stage is the slow one (hours for a large corpus on a CPU), so a killed run must not start over: each
finished chunk is written to its rows of the file, synced, and then recorded in a small progress file, written
atomically. A later run with the same fingerprint (model, corpus file, sizes) encodes only the chunks not
recorded. The work folder sits beside the output (`.<out>.partial`), where DVC, which deletes a stage's outputs
before running it, leaves it alone.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import shutil
from collections.abc import Callable, Iterable, Iterator
from dataclasses import asdict, dataclass
from itertools import islice
from pathlib import Path

import numpy as np

from augir.errors import AugirError
from augir.fileio import write_json_atomic
from augir.retrieval.on_disk import EmbeddingsFile

log = logging.getLogger(__name__)

PROGRESS_FILE = "progress.json"
EMBEDDINGS_FILE = "embeddings.npy"

EncodeFn = Callable[[list[str]], np.ndarray]


@dataclass(frozen=True)
class ChunkPlan:
    rows: int
    dim: int
    chunk_size: int
    fingerprint: str  # what the rows were encoded from: a different value means nothing done can be reused

    @property
    def chunks(self) -> int:
        return -(-self.rows // self.chunk_size)


def work_folder(out_dir: Path) -> Path:
    return out_dir.parent / f".{out_dir.name}.partial"


def fingerprint(*parts: object) -> str:
    return hashlib.sha256(json.dumps([str(part) for part in parts]).encode()).hexdigest()[:16]


def file_stamp(path: Path) -> str:
    """Size and modification time of a file, or of every file in a folder (a model): cheap, and changes on rewrite."""
    path = Path(path)
    if not path.exists():
        return str(path)  # a hub id or built-in name: the name is all there is
    files = [path] if path.is_file() else sorted(p for p in path.rglob("*") if p.is_file())
    return ";".join(f"{p.relative_to(path) if p != path else p.name}:{p.stat().st_size}:{p.stat().st_mtime_ns}"
                    for p in files)


def chunks_of(texts: Iterable[str], size: int) -> Iterator[list[str]]:
    iterator = iter(texts)
    while chunk := list(islice(iterator, size)):
        yield chunk


def _done_chunks(folder: Path, plan: ChunkPlan) -> set[int] | None:
    """The chunks an earlier run finished for this plan, or None when there is nothing reusable."""
    progress = folder / PROGRESS_FILE
    if not progress.is_file() or not (folder / EMBEDDINGS_FILE).is_file():
        return None
    recorded = json.loads(progress.read_text(encoding="utf-8"))
    if recorded.get("plan") != asdict(plan):
        log.info("%s: an earlier run encoded something else; starting over", folder)
        return None
    return set(recorded["done"])


def _prepare(folder: Path, plan: ChunkPlan) -> set[int]:
    """The chunks already done; a new work folder gets a zero-filled (sparse) `.npy` of the plan's shape."""
    if folder.exists() and any(folder.iterdir()) and not (folder / PROGRESS_FILE).is_file():
        raise AugirError(f"{folder}: exists and is not augir's encoding work folder (no {PROGRESS_FILE}); "
                         "refusing to replace it")
    done = _done_chunks(folder, plan)
    if done is not None:
        log.info("%s: resuming, %d of %d chunks already encoded", folder, len(done), plan.chunks)
        return done
    shutil.rmtree(folder, ignore_errors=True)
    folder.mkdir(parents=True)
    created = np.lib.format.open_memmap(folder / EMBEDDINGS_FILE, mode="w+", dtype=np.float32,
                                        shape=(plan.rows, plan.dim))
    del created  # only the header is written; the rows are written through the file below
    _record(folder, plan, set())
    return set()


def _record(folder: Path, plan: ChunkPlan, done: set[int]) -> None:
    write_json_atomic(folder / PROGRESS_FILE, {"plan": asdict(plan), "done": sorted(done)})


def encode_chunks(encode: EncodeFn, texts: Iterable[str], plan: ChunkPlan, folder: Path) -> Path:
    """Encode `texts` (plan.rows of them, streamed) into `folder`/embeddings.npy; returns its path.

    Chunks recorded as done are read past without encoding. A chunk is recorded only after its rows are flushed,
    so a crash loses at most the chunk in progress.
    """
    done = _prepare(folder, plan)
    path = folder / EMBEDDINGS_FILE
    offset, row_bytes = EmbeddingsFile.open(path).offset, 4 * plan.dim
    # Written through the file, not a memory map: mapped pages written would count as resident, growing with N.
    with path.open("r+b") as handle:
        for number, chunk in enumerate(chunks_of(texts, plan.chunk_size)):
            if number in done:
                continue
            start = number * plan.chunk_size
            vectors = np.ascontiguousarray(encode(chunk), dtype=np.float32)
            if vectors.shape != (len(chunk), plan.dim) or start + len(chunk) > plan.rows:
                raise AugirError(f"{folder}: chunk {number} encoded to {vectors.shape}, "
                                 f"expected ({len(chunk)}, {plan.dim})")
            os.pwrite(handle.fileno(), vectors.tobytes(), offset + start * row_bytes)
            os.fdatasync(handle.fileno())  # on disk before the chunk is recorded as done
            done.add(number)
            _record(folder, plan, done)
            log.info("encoded chunk %d of %d", len(done), plan.chunks)
    if len(done) != plan.chunks:
        raise AugirError(f"{folder}: the corpus changed while it was encoded ({len(done)} of {plan.chunks} chunks)")
    return path
