"""Compact document ids: order, membership, saving and the duplicate check the id pass runs after reading."""

from array import array

import numpy as np
import pytest

from augir.data.beir import CORPUS_FILE, load_beir, read_corpus_ids
from augir.data.doc_ids import DocIds, check_unique
from augir.errors import AugirError


def test_ids_keep_corpus_order_and_answer_membership():
    ids = DocIds.from_strings(["d10", "d2", "é-ü", "d1"])
    assert list(ids) == ["d10", "d2", "é-ü", "d1"] and ids[2] == "é-ü" and len(ids) == 4 and ids[1:3] == ["d2", "é-ü"]
    assert "d2" in ids and "é-ü" in ids and "d1" in ids
    # Longer than the array's width: numpy would cut the needle to "d10" before searching.
    assert "d100" not in ids and "d" not in ids and "" not in ids and 10 not in ids
    assert ids.sorted_ids() == sorted(["d10", "d2", "é-ü", "d1"], key=lambda i: i.encode())


def test_ids_saved_and_read_back_memory_mapped(tmp_path):
    ids = DocIds.from_strings(f"doc{i}" for i in range(70_000))  # more than one batch of the reader
    ids.save(tmp_path / "ids.npy")
    loaded = DocIds.load(tmp_path / "ids.npy")
    assert isinstance(loaded._array, np.memmap)
    assert list(loaded) == list(ids) and "doc69999" in loaded and "doc70000" not in loaded


def test_the_first_repeat_in_file_order_is_named_with_both_lines():
    ids = DocIds.from_strings(["x", "y", "z", "y", "x", "y"])
    with pytest.raises(AugirError, match=r"^corpus.jsonl:40: duplicate document id 'y' \(first on line 20\)$"):
        check_unique(ids, array("q", [10, 20, 30, 40, 50, 60]), "corpus.jsonl")
    check_unique(DocIds.from_strings(["x", "y"]), [1, 2], "corpus.jsonl")  # no repeat: no error


def test_read_corpus_ids_validates_every_record(tmp_path):
    path = tmp_path / CORPUS_FILE
    path.write_text('{"_id": "a", "text": "x"}\n{"_id": 7, "title": "t", "text": "y"}\n{"text": "no id"}\n')
    with pytest.raises(AugirError, match=r"corpus.jsonl:3: .*_id"):
        read_corpus_ids(path)
    path.write_text('{"_id": "a", "text": "x"}\n{"_id": 7, "title": "t", "text": "y"}\n')
    assert list(read_corpus_ids(path)) == ["a", "7"]


def test_a_dataset_loaded_with_the_index_ids_reads_no_texts_and_counts_the_same(tiny_beir_dir):
    full = load_beir(tiny_beir_dir)
    judged = sorted({doc for docs in full.qrels["test"].values() for doc in docs})[0]
    ids = DocIds.from_strings(doc for doc in full.corpus if doc != judged)  # a judged document missing, as in ArguAna
    light = load_beir(tiny_beir_dir, doc_ids=ids)
    assert light.corpus == {} and light.queries == full.queries and light.qrels == full.qrels
    missing = sum(doc == judged for docs in full.qrels["test"].values() for doc in docs)
    assert missing > 0 and light.unknown_references("test") == {"qrels_unknown_documents": missing,
                                                               "qrels_unknown_queries": 0}
    with pytest.raises(AugirError, match=rf"test.tsv:\d+: corpus id '{judged}' is not in the corpus"):
        load_beir(tiny_beir_dir, doc_ids=ids, strict=True)
