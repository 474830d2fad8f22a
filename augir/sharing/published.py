"""Existing augmented sets: load one (`augment.source`) instead of generating, in any of the common layouts.

A source is a local path (by convention `data/published/<name>`, where `dvc import` puts a registry's set) or
`hf:<repo>` on the Hugging Face hub. Layouts, tried in this order on a folder:

- augir's own: `queries.jsonl` + `qrels/train.tsv`, with or without `provenance.jsonl` (also what
  `augir publish` writes beside its Parquet files);
- BEIR GenQ / GPL: `<prefix>-queries.jsonl` + `<prefix>-qrels/train.tsv` (`gen-` for BEIR, `qgen-` for GPL),
  possibly beside a `corpus.jsonl`;
- Parquet files as written by `augir publish` (one row per pair: `query_id`, `query`, `doc_id`, provenance);
- InPars: one JSON object per line with `query` (`question` in InPars v1) and `doc_id`; InPars also stores
  the passage (`text`/`doc_text`), `log_probs`, `prompt_text` and `fewshot_examples`.

Every judged document must be in the corpus of `augment.dataset`; every problem is one `AugirError` line naming
the file and line (or row), and the output folder is written only once the whole set has been validated.
"""

from __future__ import annotations

import json
import os
from collections.abc import Container, Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from augir.data.beir import (
    QRELS_DIR,
    QUERIES_FILE,
    UnknownReferences,
    add_judgment,
    read_jsonl_lines,
    read_qrels_checked,
    read_queries,
)
from augir.errors import AugirError, described
from augir.fileio import atomic_folder, write_jsonl

PROVENANCE_FILE = "provenance.jsonl"
TRAIN_QRELS = Path(QRELS_DIR) / "train.tsv"
GENQ_PREFIXES = ("gen", "qgen")  # BEIR's QueryGenerator default and GPL's `--qgen_prefix` default
QUERY_KEYS = ("query", "question")  # InPars' generate.py writes `query`; its filter.py still reads `question`
# Passage text that InPars copies into every record: the corpus holds it already, and it would bloat provenance.
PASSAGE_KEYS = frozenset({"text", "doc_text"})
LAYOUTS = "queries.jsonl + qrels/train.tsv, gen-queries.jsonl + gen-qrels/train.tsv, *.parquet, or an InPars .jsonl"


@dataclass
class SyntheticSet:
    """A validated augmented set, in the order its source lists it (train takes the first N pairs)."""

    source: str
    layout: str
    queries: dict[str, str] = field(default_factory=dict)
    qrels: dict[str, dict[str, int]] = field(default_factory=dict)  # query id -> doc id -> grade
    provenance: list[dict[str, Any]] = field(default_factory=list)

    def stats(self) -> dict[str, Any]:
        """What metrics/augment.json says for a set that was loaded, not generated."""
        doc_ids = {doc_id for judged in self.qrels.values() for doc_id in judged}
        return {
            "source": self.source,
            "layout": self.layout,
            "generated": 0,
            "passages": len(doc_ids),
            "queries": len(self.queries),
            "pairs": sum(len(judged) for judged in self.qrels.values()),
        }


def import_augmented(source: str, doc_ids: Container[str], out_dir: Path) -> dict[str, Any]:
    """Load `source`, check it against the corpus `doc_ids`, write it at `out_dir` in augir's layout."""
    synthetic = load_synthetic_set(source, doc_ids)
    write_synthetic_set(synthetic, out_dir)
    return synthetic.stats()


def load_synthetic_set(source: str, doc_ids: Container[str] | None = None) -> SyntheticSet:
    """Load an augmented set from a local path or `hf:<repo>`; `doc_ids`, when given, must hold every judged doc."""
    if not source.strip():
        raise AugirError("augment.source: empty (use a folder such as data/published/<name>, or hf:<repo>)")
    if source.startswith("hf:"):
        return _load_hf(source, source.removeprefix("hf:").strip(), doc_ids)
    path = Path(source).expanduser()
    if not path.exists():
        raise AugirError(f"augment.source: {path} does not exist (expected a folder with {LAYOUTS}, or hf:<repo>)")
    if path.is_file():
        return _load_file(source, path, doc_ids)
    return _load_folder(source, path, doc_ids)


def write_synthetic_set(synthetic: SyntheticSet, out_dir: Path) -> None:
    """augir's layout at `out_dir`, replacing it only once complete, and only if it is an earlier augmented set."""
    with atomic_folder(out_dir, signature=PROVENANCE_FILE) as staging:
        write_layout(synthetic, staging)


def write_layout(synthetic: SyntheticSet, folder: Path) -> None:
    """`queries.jsonl`, `qrels/train.tsv`, `provenance.jsonl` into `folder`, formatted as the augment stage does."""
    write_jsonl(folder / QUERIES_FILE, ({"_id": qid, "text": text} for qid, text in synthetic.queries.items()))
    (folder / QRELS_DIR).mkdir()
    lines = ["query-id\tcorpus-id\tscore\n"]
    lines += [f"{qid}\t{doc}\t{grade}\n" for qid, judged in synthetic.qrels.items() for doc, grade in judged.items()]
    (folder / TRAIN_QRELS).write_text("".join(lines), encoding="utf-8")
    write_jsonl(folder / PROVENANCE_FILE, synthetic.provenance)


# ---------------------------------------------------------------------------------------------- local layouts


def _load_file(source: str, path: Path, doc_ids: Container[str] | None) -> SyntheticSet:
    if path.suffix == ".parquet":
        return _load_parquet(source, [path], doc_ids)
    if path.suffix == ".jsonl":
        return _from_rows(source, "inpars", _jsonl_rows(path), doc_ids)
    raise AugirError(f"augment.source: {path} is a file but neither .jsonl (InPars) nor .parquet (augir publish)")


def _load_folder(source: str, folder: Path, doc_ids: Container[str] | None) -> SyntheticSet:
    if (folder / QUERIES_FILE).is_file():
        return _load_beir_layout(source, "augir", folder / QUERIES_FILE, folder / TRAIN_QRELS, doc_ids, folder)
    for prefix in GENQ_PREFIXES:
        if (folder / f"{prefix}-{QUERIES_FILE}").is_file():
            queries, qrels = folder / f"{prefix}-{QUERIES_FILE}", folder / f"{prefix}-{QRELS_DIR}" / "train.tsv"
            return _load_beir_layout(source, "beir-genq", queries, qrels, doc_ids, None)
    parquet = sorted(folder.rglob("*.parquet"))
    if parquet:
        return _load_parquet(source, parquet, doc_ids)
    jsonl = [p for p in sorted(folder.glob("*.jsonl")) if p.name != "corpus.jsonl"]
    if len(jsonl) == 1:
        return _from_rows(source, "inpars", _jsonl_rows(jsonl[0]), doc_ids)
    if jsonl:
        names = ", ".join(p.name for p in jsonl)
        raise AugirError(f"augment.source: {folder} holds several .jsonl files ({names}); name the one to use")
    raise AugirError(f"augment.source: no augmented set in {folder} (expected {LAYOUTS})")


def _load_beir_layout(
    source: str, layout: str, queries_file: Path, qrels_file: Path, doc_ids: Container[str] | None, folder: Path | None
) -> SyntheticSet:
    """Queries + train qrels; augir's own folders may carry provenance.jsonl, which is kept as it is."""
    queries = read_queries(queries_file)
    qrels = read_qrels_checked(qrels_file, doc_ids, queries)
    # Only judged queries are training pairs; keep the queries file's order, which train's first-N relies on.
    synthetic = SyntheticSet(source, layout, {qid: text for qid, text in queries.items() if qid in qrels})
    synthetic.qrels = {qid: qrels[qid] for qid in synthetic.queries}
    provenance_file = folder / PROVENANCE_FILE if folder is not None else None
    if provenance_file is not None and provenance_file.is_file():
        synthetic.provenance = _checked_provenance(provenance_file, synthetic.qrels)
    else:
        synthetic.provenance = [
            {"query_id": qid, "doc_id": doc_id, "query": synthetic.queries[qid], "source": source, "layout": layout}
            for qid, judged in synthetic.qrels.items()
            for doc_id in judged
        ]
    return synthetic


def _checked_provenance(path: Path, qrels: Mapping[str, Mapping[str, int]]) -> list[dict[str, Any]]:
    """The records as they are (they already name their generator), after checking they describe these pairs."""
    records: list[dict[str, Any]] = []
    recorded: set[str] = set()
    for lineno, record in read_jsonl_lines(path):
        if record.get("query_id") is None or record.get("doc_id") is None:
            raise AugirError(f"{path}:{lineno}: record lacks 'query_id' or 'doc_id'")
        query_id, doc_id = str(record["query_id"]), str(record["doc_id"])
        if query_id in qrels and doc_id not in qrels[query_id]:
            raise AugirError(f"{path}:{lineno}: doc_id {doc_id!r} is not judged for query {query_id!r} in the qrels")
        recorded.add(query_id)
        records.append(record)
    missing = [qid for qid in qrels if qid not in recorded]
    if missing:
        raise AugirError(f"{path}: no record for query {missing[0]!r} ({len(missing)} queries undescribed)")
    return records


def _jsonl_rows(path: Path) -> Iterable[tuple[str, dict[str, Any]]]:
    return ((f"{path}:{lineno}", record) for lineno, record in read_jsonl_lines(path))


def _load_parquet(source: str, files: list[Path], doc_ids: Container[str] | None) -> SyntheticSet:
    # pyarrow (what `datasets` itself reads Parquet with) rather than datasets.load_dataset: the latter writes
    # an Arrow copy into ~/.cache on every call, which a pipeline stage has no business doing.
    import pyarrow.parquet as pq

    def rows() -> Iterable[tuple[str, dict[str, Any]]]:
        for path in files:
            try:
                table = pq.read_table(path)
            except Exception as exc:  # pyarrow raises several types for a damaged or foreign file
                raise AugirError(f"{path}: not a readable Parquet file ({described(exc)})") from None
            for row_no, row in enumerate(table.to_pylist(), start=1):
                yield f"{path} row {row_no}", row

    return _from_rows(source, "parquet", rows(), doc_ids)


# ---------------------------------------------------------------------------------------------- the hub


def _load_hf(source: str, repo: str, doc_ids: Container[str] | None) -> SyntheticSet:
    from augir.data import sources  # its network probe: fail in seconds offline, not after a minute of retries

    if not repo:
        raise AugirError(f"augment.source {source!r}: missing the repository after 'hf:'")
    endpoint = os.environ.get("HF_ENDPOINT", sources.HF_ENDPOINT_DEFAULT).rstrip("/")
    try:
        sources.require_network(source, f"{endpoint}/api/datasets/{repo}")
    except AugirError as error:
        raise AugirError(f"augment.source: {error}") from None
    import datasets

    try:
        splits = datasets.load_dataset(repo)
    except Exception as exc:  # the hub client raises many types; one line naming the source is what helps
        message = f"augment.source {source!r}: loading from the Hugging Face hub failed ({described(exc)})"
        raise AugirError(message) from None
    if "train" in splits:
        table = splits["train"]
    elif len(splits) == 1:
        table = next(iter(splits.values()))
    else:
        raise AugirError(f"augment.source {source!r}: several splits ({', '.join(splits)}) and none is 'train'")
    return _from_rows(source, "hf", ((f"{source} row {n}", row) for n, row in enumerate(table, start=1)), doc_ids)


# ---------------------------------------------------------------------------------------------- rows


def _from_rows(
    source: str, layout: str, rows: Iterable[tuple[str, Mapping[str, Any]]], doc_ids: Container[str] | None
) -> SyntheticSet:
    """One (query, document) pair per row; rows without a `query_id` (InPars) get augir-style ids."""
    synthetic = SyntheticSet(source, layout)
    per_doc: dict[str, int] = {}
    for where, row in rows:
        doc_id = _row_id(row, "doc_id", where)
        text = _row_query(row, where)
        query_id = _row_id(row, "query_id", where) if row.get("query_id") is not None else None
        if query_id is None:
            query_id = f"gen-{doc_id}-{per_doc.get(doc_id, 0)}"
            per_doc[doc_id] = per_doc.get(doc_id, 0) + 1
        if synthetic.queries.get(query_id, text) != text:
            raise AugirError(f"{where}: query id {query_id!r} was given another text before")
        synthetic.queries[query_id] = text
        UnknownReferences(source, strict=True).check((query_id, doc_id, 1), where, doc_ids, None)
        add_judgment(synthetic.qrels, (query_id, doc_id, 1), where)
        synthetic.provenance.append(_row_provenance(row, query_id, doc_id, text, source, layout))
    if not synthetic.queries:
        raise AugirError(f"augment.source {source!r}: the set holds no queries")
    return synthetic


def _row_id(row: Mapping[str, Any], key: str, where: str) -> str:
    value = row.get(key)
    if value is None or isinstance(value, bool) or not isinstance(value, (str, int)) or not str(value).strip():
        raise AugirError(f"{where}: missing or invalid {key!r}")
    ident = str(value)
    if any(ch in ident for ch in "\t\r\n"):  # would corrupt qrels/train.tsv
        raise AugirError(f"{where}: {key!r} contains a tab or newline")
    return ident


def _row_query(row: Mapping[str, Any], where: str) -> str:
    for key in QUERY_KEYS:
        if key in row:
            value = row[key]
            if not isinstance(value, str) or not value.strip():
                raise AugirError(f"{where}: {key!r} must be a non-empty string")
            return value
    raise AugirError(f"{where}: missing 'query' (the generated query text)")


def _row_provenance(
    row: Mapping[str, Any], query_id: str, doc_id: str, text: str, source: str, layout: str
) -> dict[str, Any]:
    """The row's own fields (InPars' log_probs and prompt, or augir publish's generator, prompt, seed...)."""
    record: dict[str, Any] = {"query_id": query_id, "doc_id": doc_id, "query": text}
    for key, value in row.items():
        if key in record or key in QUERY_KEYS or key in PASSAGE_KEYS or key == "extra":
            continue
        record[key] = _json_object(value) if key == "sampling" else value
    # `augir publish` puts the fields without a column of their own into `extra` (JSON): restore them.
    extra = _json_object(row.get("extra"))
    if isinstance(extra, dict):
        record.update(extra)
    record.update(source=source, layout=layout)
    return record


def _json_object(value: Any) -> Any:
    """A JSON object stored as a string (augir publish's `sampling` and `extra`), decoded; anything else as it is."""
    if isinstance(value, str):
        try:
            decoded = json.loads(value)
        except json.JSONDecodeError:
            return value
        return decoded if isinstance(decoded, dict) else value
    return value

