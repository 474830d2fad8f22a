"""The BEIR folder layout: read and validated line by line, written atomically.

A BEIR folder holds ``corpus.jsonl`` (``_id``, ``title``, ``text``), ``queries.jsonl`` (``_id``, ``text``) and
``qrels/<split>.tsv`` (header ``query-id<TAB>corpus-id<TAB>score``; TREC qrels ``qid 0 docid grade`` without a
header are read too, as ir_datasets and trec_eval users have them). Every problem in user files is an
:class:`AugirError` whose one-line message starts with ``<file>:<line>:`` so the user can open the spot directly.

Published releases are not all tidy: ArguAna's test qrels judge documents its corpus lacks. BEIR, MTEB and
trec_eval evaluate such sets as they are (a missing relevant document can never be retrieved, but it counts in the
ideal ranking and in recall), so by default such judgments are kept, reported once as a warning and counted in
the metrics; ``strict`` validation refuses them. Everything else (malformed lines, duplicates, bad grades) is
always an error.
"""

from __future__ import annotations

import dataclasses
import itertools
import json
import logging
import os
import re
from array import array
from collections.abc import Collection, Container, Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from augir.data.doc_ids import DocIds, check_unique
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
QRELS_SUFFIXES = (".tsv", ".txt", ".qrels")  # BEIR writes .tsv; TREC qrels often come as .txt or .qrels
SHOWN_IDS = 3  # how many unknown ids a warning names


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
    # The corpus's ids when its texts were not read (`load_beir(..., doc_ids=...)`: evaluate needs ids, not texts).
    known_ids: Collection[str] | None = None

    @property
    def document_ids(self) -> Collection[str]:
        return self.corpus if self.known_ids is None else self.known_ids

    def split_queries(self, split: str) -> dict[str, str]:
        """The queries judged in ``split`` that can be asked (BEIR convention: a split's queries come from its qrels).

        A judged query without text cannot be searched; its judgments stay in the qrels, so with trec_eval ``-c``
        semantics it scores 0 (see `unknown_references`).
        """
        if split not in self.qrels:
            available = ", ".join(sorted(self.qrels)) or "none"
            raise AugirError(f"split {split!r} is not in the dataset; available splits: {available}")
        return {qid: self.queries[qid] for qid in self.qrels[split] if qid in self.queries}

    def positives(self, split: str) -> dict[str, list[str]]:
        """Query id -> its relevant documents (grade > 0, sorted), for the queries and documents the dataset has.

        What training and few-shot examples may use: a judgment naming an unknown id has no text to learn from.
        """
        found: dict[str, list[str]] = {}
        for query_id, judged in sorted(self.qrels.get(split, {}).items()):
            docs = sorted(doc for doc, grade in judged.items() if grade > 0 and doc in self.document_ids)
            if docs and query_id in self.queries:
                found[query_id] = docs
        return found

    def unknown_references(self, split: str) -> dict[str, int]:
        """How many of the split's judgments name a document not in the corpus, and how many judged queries lack text."""
        judged = self.qrels.get(split, {})
        return {
            "qrels_unknown_documents": sum(doc not in self.document_ids for docs in judged.values() for doc in docs),
            "qrels_unknown_queries": sum(query_id not in self.queries for query_id in judged),
        }


@dataclass
class UnknownReferences:
    """Judgments of one qrels file or split that name ids the dataset does not have: refused when strict, else counted.

    They are kept either way unless refused: a relevant document missing from the corpus still counts in the ideal
    ranking and in recall (BEIR, MTEB and trec_eval all score it so), and a query missing from the queries scores 0.
    """

    origin: str
    strict: bool = False
    documents: list[str] = field(default_factory=list)  # one entry per judgment naming an unknown document
    queries: dict[str, None] = field(default_factory=dict)  # unknown query ids, in order of appearance

    def check(self, judgment: tuple[str, str, int], where: str, doc_ids: Container[str] | None,
              query_ids: Container[str] | None) -> None:
        query_id, doc_id, _ = judgment
        if query_ids is not None and query_id not in query_ids:
            if self.strict:
                raise AugirError(f"{where}: query id {query_id!r} is not in the queries")
            self.queries[query_id] = None
        if doc_ids is not None and doc_id not in doc_ids:
            if self.strict:
                raise AugirError(f"{where}: corpus id {doc_id!r} is not in the corpus")
            self.documents.append(doc_id)

    def warn(self) -> None:
        """One warning per file, naming the count and the first few ids."""
        if self.documents:
            _log.warning("%s: %d judgments name documents not in the corpus (%s); kept for scoring, they can never be "
                         "retrieved (strict validation refuses them)", self.origin, len(self.documents),
                         _first_ids(self.documents))
        if self.queries:
            _log.warning("%s: %d judged queries are not in the queries (%s); kept for scoring, each counts 0 "
                         "(strict validation refuses them)", self.origin, len(self.queries), _first_ids(self.queries))


def _first_ids(ids: Iterable[str]) -> str:
    listed = list(dict.fromkeys(ids))
    shown = ", ".join(repr(i) for i in listed[:SHOWN_IDS])
    return f"first: {shown}" + (", ..." if len(listed) > SHOWN_IDS else "")


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
        for lineno, line in _decoded_lines(path, handle):
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
    # Tabs and newlines would corrupt the qrels TSV when the dataset is written back, and a space the TREC run
    # (space-separated) that evaluate writes, long after the corpus was encoded: refuse them when reading.
    if any(ch.isspace() for ch in ident):
        raise AugirError(f"{where}: {key!r} {ident!r} contains whitespace (qrels TSV and TREC run files cannot hold it)")
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
    for lineno, doc in _validated_documents(path):
        if doc.id in first_line:
            raise AugirError(f"{path}:{lineno}: duplicate document id {doc.id!r} (first on line {first_line[doc.id]})")
        first_line[doc.id] = lineno
        corpus[doc.id] = doc
    return corpus


def read_corpus_ids(path: Path) -> DocIds:
    """Pass one over a corpus: every record validated, duplicates refused as `read_corpus` refuses them, only the
    ids kept (compact, in file order; see `augir.data.doc_ids`). Memory: the ids' bytes and a line number each."""
    path = Path(path)
    lines = array("q")

    def ids() -> Iterator[str]:
        for lineno, doc in _validated_documents(path):
            lines.append(lineno)
            yield doc.id

    found = DocIds.from_strings(ids())
    check_unique(found, lines, str(path))
    return found


def with_texts(dataset: BeirDataset, corpus_path: Path, doc_ids: Container[str]) -> BeirDataset:
    """`dataset` (loaded with `doc_ids=`) with the texts of `doc_ids` read in one pass over its corpus file."""
    corpus = {doc.id: doc for _, doc in _validated_documents(Path(corpus_path)) if doc.id in doc_ids}
    return dataclasses.replace(dataset, corpus=corpus)


def iter_corpus(path: Path) -> Iterator[tuple[str, str]]:
    """Yield ``(document id, passage text)`` in file order, validating each record, without holding the texts.

    Repeated ids are not checked here (that would mean holding every id): read the ids with `read_corpus_ids`
    first, as the encode stage does. Stages that need documents by id use `read_corpus`.
    """
    for _, doc in _validated_documents(Path(path)):
        yield doc.id, document_text(doc)


def _validated_documents(path: Path) -> Iterator[tuple[int, Document]]:
    """The corpus's documents in file order with their line numbers: an empty corpus is an error, empty texts a
    warning. Keeps nothing per document (the callers that need unique ids check them)."""
    count, empty, first_empty = 0, 0, 0
    for lineno, obj in read_jsonl_lines(path):
        doc = document_from_record(obj, f"{path}:{lineno}")
        count += 1
        if not document_text(doc):
            empty += 1
            first_empty = first_empty or lineno
        yield lineno, doc
    if not count:
        raise AugirError(f"{path}: the corpus has no documents")
    if empty:
        _log.warning("%s: %d documents have neither title nor text (first on line %d)", path, empty, first_empty)


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
    """Yield ``(line number, (query id, doc id, grade))``; line numbers let callers report bad references.

    The format is read off the first line: BEIR's header, or a TREC line (``qid iteration docid grade``).
    """
    try:
        handle = path.open("rb")
    except FileNotFoundError:
        raise AugirError(f"{path}: file not found") from None
    except OSError as exc:
        raise AugirError(f"{path}: cannot read ({exc.strerror})") from None
    with handle:
        lines = _decoded_lines(path, handle)
        first = next(lines, None)
        if first is None:
            raise AugirError(f"{path}:1: header must be 'query-id<TAB>corpus-id<TAB>score' (or TREC qrels lines)")
        if tuple(first[1].split("\t")) == QRELS_HEADER:
            parse = _beir_row
        elif len(first[1].split()) == 4:
            parse = _trec_row
            lines = itertools.chain([first], lines)
        else:
            raise AugirError(f"{path}:1: header must be 'query-id<TAB>corpus-id<TAB>score' (or TREC qrels lines "
                             "'qid 0 docid grade')")
        for lineno, line in lines:
            if line.strip():
                yield lineno, parse(line, f"{path}:{lineno}")


def _decoded_lines(path: Path, handle: Any) -> Iterator[tuple[int, str]]:
    """Numbered lines without their line break, decoded one by one so an encoding error can name its line.

    The first line may carry a BOM from Windows editors.
    """
    for lineno, raw in enumerate(handle, start=1):
        try:
            line = raw.decode("utf-8-sig" if lineno == 1 else "utf-8")
        except UnicodeDecodeError:
            raise AugirError(f"{path}:{lineno}: not valid UTF-8") from None
        yield lineno, line.rstrip("\r\n")


def _beir_row(line: str, where: str) -> tuple[str, str, int]:
    fields = line.split("\t")
    if len(fields) != 3:
        raise AugirError(f"{where}: expected 3 tab-separated columns, got {len(fields)}")
    return qrel_from_record(dict(zip(QRELS_HEADER, fields, strict=True)), where)


def _trec_row(line: str, where: str) -> tuple[str, str, int]:
    fields = line.split()
    if len(fields) != 4:
        raise AugirError(f"{where}: expected 4 columns (query id, iteration, document id, grade), got {len(fields)}")
    query_id, _, doc_id, grade = fields
    return qrel_from_record({"query-id": query_id, "corpus-id": doc_id, "score": grade}, where)


def add_judgment(qrels: dict[str, dict[str, int]], judgment: tuple[str, str, int], where: str) -> None:
    """Add one judgment after checking the pair is not judged twice."""
    query_id, doc_id, grade = judgment
    judged = qrels.setdefault(query_id, {})
    # Two grades for one pair would make the score depend on row order; refuse rather than guess.
    if doc_id in judged:
        raise AugirError(f"{where}: duplicate judgment for query {query_id!r} and document {doc_id!r}")
    judged[doc_id] = grade  # grade 0 is kept: it is a judgment (judged non-relevant), not a missing row


def read_qrels_checked(
    path: Path, doc_ids: Container[str] | None, query_ids: Container[str] | None, *, strict: bool = True
) -> dict[str, dict[str, int]]:
    """Read one qrels file, checking its ids against the given corpus and queries (refused when strict, else warned)."""
    qrels: dict[str, dict[str, int]] = {}
    unknown = UnknownReferences(str(path), strict=strict)
    for lineno, judgment in _iter_qrels_rows(path):
        where = f"{path}:{lineno}"
        unknown.check(judgment, where, doc_ids, query_ids)
        add_judgment(qrels, judgment, where)
    if not qrels:
        raise AugirError(f"{path}: no judgments")
    unknown.warn()
    return qrels


def read_qrels(path: Path) -> dict[str, dict[str, int]]:
    """Read one qrels file (query id -> doc id -> grade) without checking ids against a corpus."""
    return read_qrels_checked(Path(path), None, None)


def qrels_files(folder: Path) -> dict[str, Path]:
    """Split name -> qrels file in ``folder/qrels``: ``<split>.tsv`` (BEIR), ``.txt`` or ``.qrels`` (TREC)."""
    qrels_dir = folder / QRELS_DIR
    found: dict[str, Path] = {}
    for path in sorted(qrels_dir.iterdir()) if qrels_dir.is_dir() else []:
        if path.suffix not in QRELS_SUFFIXES or not path.is_file():
            continue
        if path.stem in found:
            raise AugirError(f"{qrels_dir}: split {path.stem!r} has two qrels files ({found[path.stem].name}, {path.name})")
        found[path.stem] = path
    if not found:
        raise AugirError(f"{qrels_dir}: no qrels files (expected qrels/<split>.tsv)")
    return found


def load_beir(folder: Path, *, strict: bool = False, doc_ids: Collection[str] | None = None) -> BeirDataset:
    """Load and validate a BEIR folder with every qrels split it holds.

    Judgments naming documents or queries the folder lacks are kept and warned about, or refused when ``strict``.
    Given the corpus's `doc_ids` (the encode stage's), the corpus file is not read: the dataset has queries and
    qrels checked against those ids and an empty `corpus`, so memory does not grow with the corpus.
    """
    folder = _beir_folder(folder)
    corpus = read_corpus(folder / CORPUS_FILE) if doc_ids is None else {}
    known = corpus if doc_ids is None else doc_ids
    queries = read_queries(folder / QUERIES_FILE)
    qrels = {split: read_qrels_checked(path, known, queries, strict=strict) for split, path in qrels_files(folder).items()}
    return BeirDataset(corpus=corpus, queries=queries, qrels=qrels, known_ids=doc_ids)


def _beir_folder(folder: Path) -> Path:
    folder = Path(folder)
    if not folder.is_dir():
        raise AugirError(f"{folder}: not a folder (expected a BEIR folder with {CORPUS_FILE}, {QUERIES_FILE}, qrels/)")
    return folder


# ---------------------------------------------------------------------------------------------- writing


def check_dataset(dataset: BeirDataset, origin: str, *, strict: bool = False) -> None:
    """Cross-check a dataset built in memory (hub rows, bundled data) before it is written.

    ``origin`` names where the data came from, so a message reads like the file-based ones. Judgments naming
    unknown ids are refused only when ``strict`` (the readers have already warned about them).
    """
    if not dataset.document_ids:
        raise AugirError(f"{origin}: the corpus has no documents")
    if not dataset.qrels:
        raise AugirError(f"{origin}: no qrels splits")
    for split, by_query in dataset.qrels.items():
        if not _SPLIT_RE.fullmatch(split):
            raise AugirError(f"{origin}: split name {split!r} is not usable as a file name")
        if strict:
            unknown = UnknownReferences(origin, strict=True)
            for query_id, judged in by_query.items():
                for doc_id, grade in judged.items():
                    unknown.check((query_id, doc_id, grade), f"{origin}: qrels split {split!r}",
                                  dataset.document_ids, dataset.queries)


def _write_lines(path: Path, lines: Iterator[str]) -> None:
    with path.open("w", encoding="utf-8", newline="\n") as handle:
        for line in lines:
            handle.write(line)
        handle.flush()
        # fsync before the rename: otherwise a crash could leave a renamed folder with empty files.
        os.fsync(handle.fileno())


def _corpus_lines(documents: Iterable[Document]) -> Iterator[str]:
    for doc in documents:
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
    _write_lines(folder / CORPUS_FILE, _corpus_lines(dataset.corpus.values()))
    _write_queries_and_qrels(dataset, folder)


def _write_queries_and_qrels(dataset: BeirDataset, folder: Path) -> None:
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


def write_beir(dataset: BeirDataset, folder: Path, *, strict: bool = False) -> None:
    """Write ``dataset`` as a BEIR folder, atomically.

    Everything is written into a sibling temp folder (see `augir.fileio.atomic_folder`) and only then swapped
    in: readers never see a half-written folder, and a failure leaves an existing target as it was.
    """
    folder = Path(folder)
    check_dataset(dataset, str(folder), strict=strict)
    _check_replaceable(folder)
    with atomic_folder(folder) as staging:
        _write_folder(dataset, staging)


def copy_beir(source: Path, folder: Path, *, strict: bool = False) -> BeirDataset:
    """Validate the BEIR folder `source` and write it at `folder`, atomically, byte for byte what
    `write_beir(load_beir(source), folder)` writes, streaming the corpus: memory holds its ids (compact), the
    queries and the qrels, never the texts. Returns the dataset without texts (`corpus` empty, `document_ids` set)."""
    source, folder = _beir_folder(source), Path(folder)
    dataset = load_beir(source, strict=strict, doc_ids=read_corpus_ids(source / CORPUS_FILE))
    check_dataset(dataset, str(folder), strict=strict)
    _check_replaceable(folder)
    with atomic_folder(folder) as staging:
        _write_lines(staging / CORPUS_FILE, _corpus_lines(doc for _, doc in _validated_documents(source / CORPUS_FILE)))
        _write_queries_and_qrels(dataset, staging)
    return dataset


def read_generated_pairs(folder: Path) -> list[tuple[str, str, str]]:
    """(query id, query, passage id) of a generated-queries folder (`queries.jsonl`, `qrels/train.tsv`), in file order."""
    queries = read_queries(folder / QUERIES_FILE)
    qrels = read_qrels(folder / QRELS_DIR / "train.tsv")
    return [(query_id, text, doc_id) for query_id, text in queries.items() for doc_id in qrels.get(query_id, {})]
