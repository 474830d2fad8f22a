"""BEIR folders: reading, validation messages (file and line), atomic writing."""

from __future__ import annotations

import json
import math
import os
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from augir.data import beir
from augir.data.beir import (
    BeirDataset,
    Document,
    document_text,
    load_beir,
    read_corpus,
    read_jsonl_lines,
    read_qrels,
    read_queries,
    write_beir,
)
from augir.errors import AugirError

CORPUS: list[dict[str, Any]] = [
    {"_id": "d1", "title": "Alpha", "text": "alpha text"},
    {"_id": "d2", "title": "", "text": "beta text"},
    {"_id": 3, "title": "Only a title", "text": ""},  # numeric id, empty text allowed with a title
]
QUERIES: list[dict[str, Any]] = [{"_id": "q1", "text": "what is alpha"}, {"_id": 2, "text": "beta?"}]
QRELS = {
    "test": ["query-id\tcorpus-id\tscore", "q1\td1\t1", "2\t3\t0"],  # grade 0 is a judgment and must survive
    "train": ["query-id\tcorpus-id\tscore", "q1\td2\t2"],
}


def _jsonl(records: list[dict[str, Any]]) -> list[str]:
    return [json.dumps(r) for r in records]


def make_beir(
    folder: Path,
    corpus: list[str] | None = None,
    queries: list[str] | None = None,
    qrels: dict[str, list[str]] | None = None,
) -> Path:
    """A small valid BEIR folder; pass raw lines to replace one file with a broken version."""
    (folder / "qrels").mkdir(parents=True)
    (folder / "corpus.jsonl").write_text("\n".join(_jsonl(CORPUS) if corpus is None else corpus) + "\n")
    (folder / "queries.jsonl").write_text("\n".join(_jsonl(QUERIES) if queries is None else queries) + "\n")
    for split, lines in (QRELS if qrels is None else qrels).items():
        (folder / "qrels" / f"{split}.tsv").write_text("\n".join(lines) + "\n")
    return folder


def _replace(lines: list[str], lineno: int, new: str) -> list[str]:
    out = list(lines)
    out[lineno - 1] = new
    return out


def _load_error(folder: Path, strict: bool = False) -> str:
    with pytest.raises(AugirError) as info:
        load_beir(folder, strict=strict)
    message = str(info.value)
    assert "\n" not in message, "errors must be one line"
    return message


# ---------------------------------------------------------------------------------------------- reading


def test_load_valid_folder(tmp_path: Path) -> None:
    ds = load_beir(make_beir(tmp_path / "ds"))
    assert list(ds.corpus) == ["d1", "d2", "3"]
    assert ds.corpus["3"] == Document(id="3", title="Only a title", text="")
    assert ds.queries == {"q1": "what is alpha", "2": "beta?"}
    assert ds.qrels == {"test": {"q1": {"d1": 1}, "2": {"3": 0}}, "train": {"q1": {"d2": 2}}}


def test_document_text_joins_title_and_text() -> None:
    assert document_text(Document("a", "Title", "body ")) == "Title body"
    assert document_text(Document("a", "", "  body ")) == "body"
    assert document_text(Document("a", "Title", "")) == "Title"


def test_split_queries(tmp_path: Path) -> None:
    ds = load_beir(make_beir(tmp_path / "ds"))
    assert ds.split_queries("train") == {"q1": "what is alpha"}
    assert ds.split_queries("test") == {"q1": "what is alpha", "2": "beta?"}
    with pytest.raises(AugirError, match=r"'dev'.*available splits: test, train"):
        ds.split_queries("dev")


def test_jsonl_skips_blank_lines_but_counts_them(tmp_path: Path) -> None:
    path = tmp_path / "x.jsonl"
    path.write_text('{"a": 1}\n\n   \n{"a": 2}\n')
    assert list(read_jsonl_lines(path)) == [(1, {"a": 1}), (4, {"a": 2})]


def test_document_with_neither_title_nor_text_is_kept(tmp_path: Path) -> None:
    # Cranfield has such records and one is judged relevant: dropping it would corrupt the qrels.
    path = tmp_path / "corpus.jsonl"
    path.write_text('{"_id": "1", "title": "", "text": ""}\n{"_id": "2", "text": "x", "title": null}\n')
    assert read_corpus(path) == {"1": Document("1", "", ""), "2": Document("2", "", "x")}


CORPUS_LINES = _jsonl(CORPUS)
QUERY_LINES = _jsonl(QUERIES)


@pytest.mark.parametrize(
    ("lines", "line", "expected"),
    [
        (_replace(CORPUS_LINES, 2, '{"_id": "d2", "text": '), 2, "malformed JSON"),
        (_replace(CORPUS_LINES, 2, "[1, 2]"), 2, "expected a JSON object"),
        (_replace(CORPUS_LINES, 2, '{"title": "t", "text": "x"}'), 2, "missing '_id'"),
        (_replace(CORPUS_LINES, 2, '{"_id": "", "text": "x"}'), 2, "empty '_id'"),
        (_replace(CORPUS_LINES, 2, '{"_id": "  ", "text": "x"}'), 2, "empty '_id'"),
        (_replace(CORPUS_LINES, 2, '{"_id": ["d"], "text": "x"}'), 2, "must be a string or a number"),
        (_replace(CORPUS_LINES, 2, '{"_id": "a\\tb", "text": "x"}'), 2, "contains whitespace"),
        (_replace(CORPUS_LINES, 2, '{"_id": "d 2", "text": "x"}'), 2, "'_id' 'd 2' contains whitespace"),
        (_replace(CORPUS_LINES, 2, '{"_id": "d2", "title": "t"}'), 2, "has no 'text'"),
        (_replace(CORPUS_LINES, 2, '{"_id": "d2", "text": 5}'), 2, "'text' must be a string"),
        (_replace(CORPUS_LINES, 3, '{"_id": "d1", "text": "again"}'), 3, "duplicate document id 'd1' (first on line 1"),
    ],
)
def test_bad_corpus_names_file_and_line(tmp_path: Path, lines: list[str], line: int, expected: str) -> None:
    folder = make_beir(tmp_path / "ds", corpus=lines)
    message = _load_error(folder)
    assert message.startswith(f"{folder / 'corpus.jsonl'}:{line}: ")
    assert expected in message


@pytest.mark.parametrize(
    ("lines", "line", "expected"),
    [
        (_replace(QUERY_LINES, 2, "{not json"), 2, "malformed JSON"),
        (_replace(QUERY_LINES, 2, '{"text": "x"}'), 2, "missing '_id'"),
        (_replace(QUERY_LINES, 2, '{"_id": "q 2", "text": "x"}'), 2, "'_id' 'q 2' contains whitespace"),
        (_replace(QUERY_LINES, 2, '{"_id": "q2"}'), 2, "has no 'text'"),
        (_replace(QUERY_LINES, 2, '{"_id": "q2", "text": ""}'), 2, "empty 'text'"),
        (_replace(QUERY_LINES, 2, '{"_id": "q2", "text": "   "}'), 2, "empty 'text'"),
        (_replace(QUERY_LINES, 2, '{"_id": "q1", "text": "dup"}'), 2, "duplicate query id 'q1' (first on line 1)"),
    ],
)
def test_bad_queries_name_file_and_line(tmp_path: Path, lines: list[str], line: int, expected: str) -> None:
    folder = make_beir(tmp_path / "ds", queries=lines)
    message = _load_error(folder)
    assert message.startswith(f"{folder / 'queries.jsonl'}:{line}: ")
    assert expected in message


TEST_QRELS = QRELS["test"]


@pytest.mark.parametrize(
    ("lines", "line", "expected"),
    [
        (_replace(TEST_QRELS, 1, "query-id corpus-id score"), 1, "header must be"),
        (_replace(TEST_QRELS, 1, "qid\tdocid\tscore"), 1, "header must be"),
        (_replace(TEST_QRELS, 2, "q1\td1"), 2, "expected 3 tab-separated columns, got 2"),
        (_replace(TEST_QRELS, 2, "q1\td1\t1\textra"), 2, "expected 3 tab-separated columns, got 4"),
        (_replace(TEST_QRELS, 2, "q1\td1\t1.5"), 2, "score must be an integer"),
        (_replace(TEST_QRELS, 2, "q1\td1\thigh"), 2, "score must be an integer"),
        (_replace(TEST_QRELS, 3, "q1\td1\t2"), 3, "duplicate judgment"),
        (_replace(TEST_QRELS, 2, "\td1\t1"), 2, "empty 'query-id'"),
        (_replace(TEST_QRELS, 2, "q1\td 1\t1"), 2, "'corpus-id' 'd 1' contains whitespace"),
    ],
)
def test_bad_qrels_name_file_and_line(tmp_path: Path, lines: list[str], line: int, expected: str) -> None:
    folder = make_beir(tmp_path / "ds", qrels={"test": lines})
    message = _load_error(folder)
    assert message.startswith(f"{folder / 'qrels' / 'test.tsv'}:{line}: ")
    assert expected in message


def test_non_utf8_qrels_name_their_line(tmp_path: Path) -> None:
    folder = make_beir(tmp_path / "ds")
    path = folder / "qrels" / "test.tsv"
    path.write_bytes(b"query-id\tcorpus-id\tscore\nq1\td1\t1\n2\t\xff3\t0\n")
    assert _load_error(folder) == f"{path}:3: not valid UTF-8"


# ---------------------------------------------------------------------------------------------- releases as published


@pytest.mark.parametrize(
    ("line", "expected"),
    [("2\tnope\t1", "corpus id 'nope' is not in the corpus"), ("q9\td1\t1", "query id 'q9' is not in the queries")],
)
def test_strict_validation_refuses_unknown_ids_naming_file_and_line(tmp_path: Path, line: str, expected: str) -> None:
    folder = make_beir(tmp_path / "ds", qrels={"test": _replace(TEST_QRELS, 3, line)})
    assert _load_error(folder, strict=True) == f"{folder / 'qrels' / 'test.tsv'}:3: {expected}"


def test_judgments_naming_unknown_ids_are_kept_warned_once_and_counted(tmp_path: Path, caplog) -> None:
    """As ArguAna's test qrels: a judged document missing from the corpus stays a judgment (BEIR, MTEB, trec_eval)."""
    lines = [*TEST_QRELS, "q1\tghost-1\t1", "q1\tghost-2\t2", "2\tghost-3\t1", "2\tghost-4\t1", "q9\td1\t1"]
    folder = make_beir(tmp_path / "ds", qrels={"test": lines})
    with caplog.at_level("WARNING", logger="augir.data.beir"):
        ds = load_beir(folder)
    assert ds.qrels["test"] == {"q1": {"d1": 1, "ghost-1": 1, "ghost-2": 2}, "2": {"3": 0, "ghost-3": 1, "ghost-4": 1},
                                "q9": {"d1": 1}}
    warnings = [record.getMessage() for record in caplog.records]
    path = folder / "qrels" / "test.tsv"
    assert warnings == [
        f"{path}: 4 judgments name documents not in the corpus (first: 'ghost-1', 'ghost-2', 'ghost-3', ...); "
        "kept for scoring, they can never be retrieved (strict validation refuses them)",
        f"{path}: 1 judged queries are not in the queries (first: 'q9'); kept for scoring, each counts 0 "
        "(strict validation refuses them)",
    ]
    assert ds.unknown_references("test") == {"qrels_unknown_documents": 4, "qrels_unknown_queries": 1}
    assert ds.unknown_references("train") == {"qrels_unknown_documents": 0, "qrels_unknown_queries": 0}
    assert ds.split_queries("test") == {"q1": "what is alpha", "2": "beta?"}  # q9 has no text to search with
    assert ds.positives("test") == {"q1": ["d1"]}  # what training may use: known query, known document, grade > 0


def test_unknown_ids_count_in_the_ideal_ranking_and_in_recall(tmp_path: Path) -> None:
    """Scored as trec_eval -c does: ghost is relevant and unretrievable, q9 has no results."""
    from augir.retrieval.metrics import evaluate_run

    folder = make_beir(tmp_path / "ds", qrels={"test": ["query-id\tcorpus-id\tscore", "q1\td1\t1", "q1\tghost\t1",
                                                        "q9\td2\t1"]})
    ds = load_beir(folder)
    evaluation = evaluate_run(ds.qrels["test"], {"q1": {"d1": 2.0, "d2": 1.0}})
    assert evaluation.per_query["ndcg_at_10"]["q1"] == pytest.approx(1 / (1 + 1 / math.log2(3)))
    assert evaluation.per_query["recall_at_100"] == {"q1": 0.5, "q9": 0.0}
    assert evaluation.aggregate["num_queries"] == 2


def test_trec_qrels_read_like_beir_ones(tmp_path: Path) -> None:
    folder = make_beir(tmp_path / "ds", qrels={"train": QRELS["train"]})
    (folder / "qrels" / "test.txt").write_text("q1 0 d1 1\n2\tQ0\t3\t0\n\n")  # spaces or tabs, iteration ignored
    assert load_beir(folder).qrels == load_beir(make_beir(tmp_path / "beir")).qrels


@pytest.mark.parametrize(
    ("text", "line", "expected"),
    [("q1 0 d1 1\nq1 0 d2\n", 2, "expected 4 columns (query id, iteration, document id, grade), got 3"),
     ("q1 0 d1 1\nq1 0 d2 yes\n", 2, "score must be an integer"),
     ("q1 0 d1 1\nq1 0 d1 2\n", 2, "duplicate judgment"),
     ("q1 d1 1\n", 1, "header must be")],
)
def test_bad_trec_qrels_name_file_and_line(tmp_path: Path, text: str, line: int, expected: str) -> None:
    folder = make_beir(tmp_path / "ds", qrels={})
    (folder / "qrels" / "test.qrels").write_text(text)
    message = _load_error(folder)
    assert message.startswith(f"{folder / 'qrels' / 'test.qrels'}:{line}: ") and expected in message


def test_a_split_with_two_qrels_files_is_refused(tmp_path: Path) -> None:
    folder = make_beir(tmp_path / "ds")
    (folder / "qrels" / "test.txt").write_text("q1 0 d1 1\n")
    assert _load_error(folder) == f"{folder / 'qrels'}: split 'test' has two qrels files (test.tsv, test.txt)"


def test_empty_corpus(tmp_path: Path) -> None:
    folder = make_beir(tmp_path / "ds", corpus=[""])
    assert _load_error(folder) == f"{folder / 'corpus.jsonl'}: the corpus has no documents"


def test_empty_qrels_file(tmp_path: Path) -> None:
    folder = make_beir(tmp_path / "ds", qrels={"test": []})
    assert "header must be" in _load_error(folder)
    folder = make_beir(tmp_path / "ds2", qrels={"test": ["query-id\tcorpus-id\tscore"]})
    assert _load_error(folder) == f"{folder / 'qrels' / 'test.tsv'}: no judgments"


def test_missing_parts(tmp_path: Path) -> None:
    assert "not a folder" in _load_error(tmp_path / "absent")
    folder = make_beir(tmp_path / "ds")
    (folder / "queries.jsonl").unlink()
    assert _load_error(folder) == f"{folder / 'queries.jsonl'}: file not found"
    folder = make_beir(tmp_path / "ds2", qrels={})
    assert "no qrels files" in _load_error(folder)


def test_invalid_utf8_names_line(tmp_path: Path) -> None:
    path = tmp_path / "corpus.jsonl"
    path.write_bytes(b'{"_id": "1", "text": "ok"}\n{"_id": "2", "text": "\xff"}\n')
    with pytest.raises(AugirError, match=rf"^{re.escape(str(path))}:2: not valid UTF-8$"):
        read_corpus(path)


def test_readers_accept_numeric_ids_and_crlf(tmp_path: Path) -> None:
    queries = tmp_path / "queries.jsonl"
    queries.write_text('{"_id": 7, "text": "seven"}\r\n')
    assert read_queries(queries) == {"7": "seven"}
    qrels = tmp_path / "test.tsv"
    qrels.write_bytes(b"query-id\tcorpus-id\tscore\r\n7\t1\t-1\r\n")
    assert read_qrels(qrels) == {"7": {"1": -1}}


# ---------------------------------------------------------------------------------------------- writing


def _dataset() -> BeirDataset:
    return BeirDataset(
        corpus={"d1": Document("d1", "Tïtle ✓", 'text with "quotes"\nand a newline'), "d2": Document("d2", "", "x")},
        queries={"q1": "où est le café ?"},
        qrels={"test": {"q1": {"d1": 2, "d2": 0}}},
    )


def test_round_trip(tmp_path: Path) -> None:
    ds = _dataset()
    write_beir(ds, tmp_path / "out")
    assert load_beir(tmp_path / "out") == ds
    # and a folder read from disk survives a second write unchanged, byte for byte
    first = {p.name: p.read_bytes() for p in (tmp_path / "out").rglob("*") if p.is_file()}
    write_beir(load_beir(tmp_path / "out"), tmp_path / "again")
    again = {p.name: p.read_bytes() for p in (tmp_path / "again").rglob("*") if p.is_file()}
    assert first == again


def test_round_trip_from_files(tmp_path: Path) -> None:
    ds = load_beir(make_beir(tmp_path / "src"))
    write_beir(ds, tmp_path / "nested" / "out")
    assert load_beir(tmp_path / "nested" / "out") == ds


def test_write_replaces_previous_output(tmp_path: Path) -> None:
    write_beir(load_beir(make_beir(tmp_path / "src")), tmp_path / "out")
    (tmp_path / "out" / "qrels" / "stale.tsv").write_text("query-id\tcorpus-id\tscore\n")
    write_beir(_dataset(), tmp_path / "out")
    assert load_beir(tmp_path / "out") == _dataset()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out", "src"]  # no temp or backup folders left


def test_write_refuses_to_replace_other_folders(tmp_path: Path) -> None:
    precious = tmp_path / "home"
    precious.mkdir()
    (precious / "notes.txt").write_text("keep me")
    with pytest.raises(AugirError, match="not a BEIR folder"):
        write_beir(_dataset(), precious)
    assert (precious / "notes.txt").read_text() == "keep me"


def test_write_keeps_unknown_ids_unless_strict(tmp_path: Path) -> None:
    ds = _dataset()
    ds.qrels["test"]["q1"]["ghost"] = 1
    with pytest.raises(AugirError, match="corpus id 'ghost' is not in the corpus"):
        write_beir(ds, tmp_path / "strict", strict=True)
    assert not (tmp_path / "strict").exists()
    write_beir(ds, tmp_path / "out")
    assert load_beir(tmp_path / "out").qrels["test"]["q1"]["ghost"] == 1


def _fail_on_qrels(monkeypatch: pytest.MonkeyPatch) -> None:
    """Make the write fail midway: corpus and queries written, qrels not."""
    real = beir._write_lines

    def failing(path: Path, lines: Iterator[str]) -> None:
        if path.suffix == ".tsv":
            raise OSError("disk full")
        real(path, lines)

    monkeypatch.setattr(beir, "_write_lines", failing)


def test_failed_write_leaves_no_folder(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    _fail_on_qrels(monkeypatch)
    with pytest.raises(OSError, match="disk full"):
        write_beir(_dataset(), tmp_path / "out")
    assert list(tmp_path.iterdir()) == []


def test_failed_write_keeps_previous_output(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    old = load_beir(make_beir(tmp_path / "src"))
    write_beir(old, tmp_path / "out")
    _fail_on_qrels(monkeypatch)
    with pytest.raises(OSError, match="disk full"):
        write_beir(_dataset(), tmp_path / "out")
    assert load_beir(tmp_path / "out") == old
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out", "src"]


def test_failed_swap_restores_previous_output(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    old = load_beir(make_beir(tmp_path / "src"))
    write_beir(old, tmp_path / "out")
    real_rename = os.rename

    def rename(src: Path, dst: Path) -> None:
        if ".tmp-" in str(src):  # the step that moves the new folder in
            raise OSError("rename failed")
        real_rename(src, dst)

    monkeypatch.setattr(os, "rename", rename)
    with pytest.raises(OSError, match="rename failed"):
        write_beir(_dataset(), tmp_path / "out")
    monkeypatch.undo()
    assert load_beir(tmp_path / "out") == old
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out", "src"]


def test_non_utf8_bytes_in_generated_qrels_name_their_line(tmp_path: Path) -> None:
    """The augmented set's qrels (read by filter and train) are read like any qrels: file and line (issue 10)."""
    from augir.data.beir import read_generated_pairs

    folder = tmp_path / "augmented"
    (folder / "qrels").mkdir(parents=True)
    (folder / "queries.jsonl").write_text('{"_id": "g1", "text": "x"}\n')
    (folder / "qrels" / "train.tsv").write_bytes(b"query-id\tcorpus-id\tscore\n\xfeg1\td1\t1\n")
    with pytest.raises(AugirError) as caught:
        read_generated_pairs(folder)
    assert str(caught.value) == f"{folder / 'qrels' / 'train.tsv'}:2: not valid UTF-8"
