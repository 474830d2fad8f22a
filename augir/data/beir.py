"""The BEIR folder layout: read and validated line by line, written atomically.

A BEIR folder holds ``corpus.jsonl`` (``_id``, ``title``, ``text``), ``queries.jsonl`` (``_id``, ``text``) and
``qrels/<split>.tsv`` (header ``query-id<TAB>corpus-id<TAB>score``). Every problem in user files is an
:class:`AugirError` whose one-line message starts with ``<file>:<line>:`` so the user can open the spot directly.
"""

from __future__ import annotations

import json
import logging
import os
import re
from collections.abc import Container, Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from augir.errors import AugirError
from augir.fileio import atomic_folder

_log = logging.getLogger(__name__)

CORPUS_FILE = "corpus.jsonl"
QUERIES_FILE = "queries.jsonl"
QRELS_DIR = "qrels"
QRELS_HEADER = ("query-id", "corpus-id", "score")

# Qrels grades must be plain integers; "1.0" or "yes" would silently change nDCG gains if coerced.
_INT_RE = re.compile(r"[+-]?\d+")
# Split names become file names; anything else could escape the qrels folder or hide as a dotfile.
_SPLIT_RE = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]*")


@dataclass(frozen=True)
class Document:
    id: str
    title: str
    text: str


@dataclass
class BeirDataset:
    corpus: dict[str, Document]
    queries: dict[str, str]
    qrels: dict[str, dict[str, dict[str, int]]]  # split name -> query id -> doc id -> grade

    def split_queries(self, split: str) -> dict[str, str]:
        """The queries judged in ``split`` (BEIR convention: a split's queries come from its qrels)."""
        if split not in self.qrels:
            available = ", ".join(sorted(self.qrels)) or "none"
            raise AugirError(f"split {split!r} is not in the dataset; available splits: {available}")
        return {qid: self.queries[qid] for qid in self.qrels[split]}


def document_text(doc: Document) -> str:
    """The passage an encoder sees: BEIR/MTEB join title and text with one space."""
    if doc.title:
        return (doc.title + " " + doc.text).strip()
    return doc.text.strip()


# ---------------------------------------------------------------------------------------------- reading


def read_jsonl_lines(path: Path) -> Iterator[tuple[int, dict[str, Any]]]:
    """Yield ``(line number, object)`` for each non-blank line, streaming so large corpora fit in memory."""
    path = Path(path)
    try:
        handle = path.open("rb")
    except FileNotFoundError:
        raise AugirError(f"{path}: file not found") from None
    except OSError as exc:
        raise AugirError(f"{path}: cannot read ({exc.strerror})") from None
    with handle:
        for lineno, raw in enumerate(handle, start=1):
            # Decode per line (not per file) so an encoding error can still name its line; the first line may
            # carry a BOM from Windows editors.
            try:
                line = raw.decode("utf-8-sig" if lineno == 1 else "utf-8")
            except UnicodeDecodeError:
                raise AugirError(f"{path}:{lineno}: not valid UTF-8") from None
            if not line.strip():
                continue  # a trailing blank line is common and harmless
            try:
                obj = json.loads(line)
            except json.JSONDecodeError as exc:
                raise AugirError(f"{path}:{lineno}: malformed JSON ({exc.msg})") from None
            if not isinstance(obj, dict):
                raise AugirError(f"{path}:{lineno}: expected a JSON object, got {type(obj).__name__}")
            yield lineno, obj


def _record_id(obj: Mapping[str, Any], key: str, where: str) -> str:
    """An id as a string: BEIR files mix JSON numbers and strings, and ids must compare equal across files."""
    if key not in obj or obj[key] is None:
        raise AugirError(f"{where}: missing {key!r}")
    return _normalise_id(obj[key], key, where)


def _normalise_id(value: Any, key: str, where: str) -> str:
    if isinstance(value, bool) or not isinstance(value, (str, int, float)):
        raise AugirError(f"{where}: {key!r} must be a string or a number, got {type(value).__name__}")
    ident = str(value)
    if not ident.strip():
        raise AugirError(f"{where}: empty {key!r}")
    # Tabs and newlines would corrupt the qrels TSV when the dataset is written back.
    if any(ch in ident for ch in "\t\r\n"):
        raise AugirError(f"{where}: {key!r} contains a tab or newline")
    return ident


def _optional_str(obj: Mapping[str, Any], key: str, where: str) -> str:
    value = obj.get(key)
    if value is None:
        return ""  # many BEIR corpora omit the title or set it to null
    if not isinstance(value, str):
        raise AugirError(f"{where}: {key!r} must be a string, got {type(value).__name__}")
    return value


def document_from_record(obj: Mapping[str, Any], where: str) -> Document:
    """Validate one corpus record; ``where`` names its origin (``file:line`` or a hub row)."""
    doc_id = _record_id(obj, "_id", where)
    if "text" not in obj:
        raise AugirError(f"{where}: document {doc_id!r} has no 'text'")
    # Empty text is accepted even without a title: real collections have such records (Cranfield 471 and 995,
    # and 995 is judged relevant), so rejecting or dropping them would make the qrels unloadable or wrong.
    # Readers count them and warn instead.
    return Document(id=doc_id, title=_optional_str(obj, "title", where), text=_optional_str(obj, "text", where))


def query_from_record(obj: Mapping[str, Any], where: str) -> tuple[str, str]:
    """Validate one query record; an empty query cannot be encoded meaningfully, so it is an error."""
    query_id = _record_id(obj, "_id", where)
    if "text" not in obj:
        raise AugirError(f"{where}: query {query_id!r} has no 'text'")
    text = _optional_str(obj, "text", where)
    if not text.strip():
        raise AugirError(f"{where}: query {query_id!r} has empty 'text'")
    return query_id, text


def read_corpus(path: Path) -> dict[str, Document]:
    path = Path(path)
    corpus: dict[str, Document] = {}
    first_line: dict[str, int] = {}
    empty: list[int] = []
    for lineno, obj in read_jsonl_lines(path):
        doc = document_from_record(obj, f"{path}:{lineno}")
        if doc.id in corpus:
            raise AugirError(f"{path}:{lineno}: duplicate document id {doc.id!r} (first on line {first_line[doc.id]})")
        corpus[doc.id] = doc
        first_line[doc.id] = lineno
        if not document_text(doc):
            empty.append(lineno)
    if not corpus:
        raise AugirError(f"{path}: the corpus has no documents")
    if empty:
        _log.warning("%s: %d documents have neither title nor text (first on line %d)", path, len(empty), empty[0])
    return corpus


def read_queries(path: Path) -> dict[str, str]:
    path = Path(path)
    queries: dict[str, str] = {}
    first_line: dict[str, int] = {}
    for lineno, obj in read_jsonl_lines(path):
        query_id, text = query_from_record(obj, f"{path}:{lineno}")
        if query_id in queries:
            raise AugirError(f"{path}:{lineno}: duplicate query id {query_id!r} (first on line {first_line[query_id]})")
        queries[query_id] = text
        first_line[query_id] = lineno
    if not queries:
        raise AugirError(f"{path}: no queries")
    return queries


def grade_from_value(value: Any, where: str) -> int:
    """A relevance grade as an int; hub qrels often store 1.0, which is accepted only when integral."""
    if isinstance(value, bool):
        raise AugirError(f"{where}: score must be an integer, got {value!r}")
    if isinstance(value, int):
        return value
    if isinstance(value, float) and value.is_integer():
        return int(value)
    if isinstance(value, str) and _INT_RE.fullmatch(value.strip()):
        return int(value.strip())
    raise AugirError(f"{where}: score must be an integer, got {value!r}")


def qrel_from_record(obj: Mapping[str, Any], where: str) -> tuple[str, str, int]:
    """Validate one judgment given as a mapping with BEIR's column names (hub rows use this form)."""
    for key in QRELS_HEADER:
        if key not in obj:
            raise AugirError(f"{where}: missing {key!r}")
    query_id = _normalise_id(obj["query-id"], "query-id", where)
    doc_id = _normalise_id(obj["corpus-id"], "corpus-id", where)
    return query_id, doc_id, grade_from_value(obj["score"], where)


def _iter_qrels_rows(path: Path) -> Iterator[tuple[int, tuple[str, str, int]]]:
    """Yield ``(line number, (query id, doc id, grade))``; line numbers let callers report bad references."""
    try:
        handle = path.open("r", encoding="utf-8-sig", newline="")
    except FileNotFoundError:
        raise AugirError(f"{path}: file not found") from None
    except OSError as exc:
        raise AugirError(f"{path}: cannot read ({exc.strerror})") from None
    with handle:
        try:
            lines = enumerate(handle, start=1)
            header = next(lines, None)
            if header is None or tuple(header[1].rstrip("\r\n").split("\t")) != QRELS_HEADER:
                raise AugirError(f"{path}:1: header must be 'query-id<TAB>corpus-id<TAB>score'")
            for lineno, line in lines:
                line = line.rstrip("\r\n")
                if not line.strip():
                    continue
                fields = line.split("\t")
                where = f"{path}:{lineno}"
                if len(fields) != 3:
                    raise AugirError(f"{where}: expected 3 tab-separated columns, got {len(fields)}")
                yield lineno, qrel_from_record(dict(zip(QRELS_HEADER, fields, strict=True)), where)
        except UnicodeDecodeError:
            raise AugirError(f"{path}: not valid UTF-8") from None


def add_judgment(
    qrels: dict[str, dict[str, int]],
    judgment: tuple[str, str, int],
    where: str,
    *,
    doc_ids: Container[str] | None = None,
    query_ids: Container[str] | None = None,
) -> None:
    """Add one judgment after checking its ids exist (when given) and the pair is not judged twice."""
    query_id, doc_id, grade = judgment
    if query_ids is not None and query_id not in query_ids:
        raise AugirError(f"{where}: query id {query_id!r} is not in the queries")
    if doc_ids is not None and doc_id not in doc_ids:
        raise AugirError(f"{where}: corpus id {doc_id!r} is not in the corpus")
    judged = qrels.setdefault(query_id, {})
    # Two grades for one pair would make the score depend on row order; refuse rather than guess.
    if doc_id in judged:
        raise AugirError(f"{where}: duplicate judgment for query {query_id!r} and document {doc_id!r}")
    judged[doc_id] = grade  # grade 0 is kept: it is a judgment (judged non-relevant), not a missing row


def read_qrels_checked(
    path: Path, doc_ids: Container[str] | None, query_ids: Container[str] | None
) -> dict[str, dict[str, int]]:
    qrels: dict[str, dict[str, int]] = {}
    for lineno, judgment in _iter_qrels_rows(path):
        add_judgment(qrels, judgment, f"{path}:{lineno}", doc_ids=doc_ids, query_ids=query_ids)
    if not qrels:
        raise AugirError(f"{path}: no judgments")
    return qrels


def read_qrels(path: Path) -> dict[str, dict[str, int]]:
    """Read one qrels TSV (query id -> doc id -> grade) without checking ids against a corpus."""
    return read_qrels_checked(Path(path), None, None)


def load_beir(folder: Path) -> BeirDataset:
    """Load and validate a BEIR folder with every qrels split it holds."""
    folder = Path(folder)
    if not folder.is_dir():
        raise AugirError(f"{folder}: not a folder (expected a BEIR folder with {CORPUS_FILE}, {QUERIES_FILE}, qrels/)")
    corpus = read_corpus(folder / CORPUS_FILE)
    queries = read_queries(folder / QUERIES_FILE)
    qrels_dir = folder / QRELS_DIR
    split_files = sorted(qrels_dir.glob("*.tsv")) if qrels_dir.is_dir() else []
    if not split_files:
        raise AugirError(f"{qrels_dir}: no qrels files (expected qrels/<split>.tsv)")
    qrels = {p.stem: read_qrels_checked(p, corpus, queries) for p in split_files}
    return BeirDataset(corpus=corpus, queries=queries, qrels=qrels)


# ---------------------------------------------------------------------------------------------- writing


def check_dataset(dataset: BeirDataset, origin: str) -> None:
    """Cross-check a dataset built in memory (hub rows, bundled data) before it is written.

    ``origin`` names where the data came from, so a message reads like the file-based ones.
    """
    if not dataset.corpus:
        raise AugirError(f"{origin}: the corpus has no documents")
    if not dataset.qrels:
        raise AugirError(f"{origin}: no qrels splits")
    for split, by_query in dataset.qrels.items():
        if not _SPLIT_RE.fullmatch(split):
            raise AugirError(f"{origin}: split name {split!r} is not usable as a file name")
        for query_id, judged in by_query.items():
            if query_id not in dataset.queries:
                raise AugirError(f"{origin}: qrels split {split!r}: query id {query_id!r} is not in the queries")
            for doc_id in judged:
                if doc_id not in dataset.corpus:
                    raise AugirError(f"{origin}: qrels split {split!r}: corpus id {doc_id!r} is not in the corpus")


def _write_lines(path: Path, lines: Iterator[str]) -> None:
    with path.open("w", encoding="utf-8", newline="\n") as handle:
        for line in lines:
            handle.write(line)
        handle.flush()
        # fsync before the rename: otherwise a crash could leave a renamed folder with empty files.
        os.fsync(handle.fileno())


def _corpus_lines(corpus: Mapping[str, Document]) -> Iterator[str]:
    for doc in corpus.values():
        record = {"_id": doc.id, "title": doc.title, "text": doc.text}
        yield json.dumps(record, ensure_ascii=False) + "\n"


def _query_lines(queries: Mapping[str, str]) -> Iterator[str]:
    for query_id, text in queries.items():
        yield json.dumps({"_id": query_id, "text": text}, ensure_ascii=False) + "\n"


def _qrels_lines(qrels: Mapping[str, Mapping[str, int]]) -> Iterator[str]:
    yield "\t".join(QRELS_HEADER) + "\n"
    for query_id, judged in qrels.items():
        for doc_id, grade in judged.items():
            yield f"{query_id}\t{doc_id}\t{grade}\n"


def _write_folder(dataset: BeirDataset, folder: Path) -> None:
    _write_lines(folder / CORPUS_FILE, _corpus_lines(dataset.corpus))
    _write_lines(folder / QUERIES_FILE, _query_lines(dataset.queries))
    (folder / QRELS_DIR).mkdir()
    for split, by_query in dataset.qrels.items():
        _write_lines(folder / QRELS_DIR / f"{split}.tsv", _qrels_lines(by_query))


def _check_replaceable(folder: Path) -> None:
    """Refuse to replace anything that is not an earlier output: a typo must not delete a user's folder."""
    if not folder.exists() and not folder.is_symlink():
        return
    if folder.is_symlink() or not folder.is_dir():
        raise AugirError(f"{folder}: exists and is not a folder; refusing to replace it")
    if any(folder.iterdir()) and not (folder / CORPUS_FILE).is_file():
        raise AugirError(f"{folder}: exists and is not a BEIR folder (no {CORPUS_FILE}); refusing to replace it")


def write_beir(dataset: BeirDataset, folder: Path) -> None:
    """Write ``dataset`` as a BEIR folder, atomically.

    Everything is written into a sibling temp folder (see `augir.fileio.atomic_folder`) and only then swapped
    in: readers never see a half-written folder, and a failure leaves an existing target as it was.
    """
    folder = Path(folder)
    check_dataset(dataset, str(folder))
    _check_replaceable(folder)
    with atomic_folder(folder) as staging:
        _write_folder(dataset, staging)


def read_generated_pairs(folder: Path) -> list[tuple[str, str, str]]:
    """(query id, query, passage id) of a generated-queries folder (`queries.jsonl`, `qrels/train.tsv`), in file order."""
    queries = read_queries(folder / QUERIES_FILE)
    qrels = read_qrels(folder / QRELS_DIR / "train.tsv")
    return [(query_id, text, doc_id) for query_id, text in queries.items() for doc_id in qrels.get(query_id, {})]
