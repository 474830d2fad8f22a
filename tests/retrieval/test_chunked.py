"""Streaming, chunked, resumable encoding into a memory-mapped embeddings.npy, and the index built from it."""

import json

import numpy as np
import pytest

from augir.data.beir import CORPUS_FILE, document_text, iter_corpus, read_corpus, read_corpus_ids
from augir.errors import AugirError
from augir.retrieval.chunked import PROGRESS_FILE, ChunkPlan, encode_chunks, work_folder
from augir.retrieval.encoders import load_encoder
from augir.retrieval.evaluate import evaluate_split, metrics_record
from augir.retrieval.index import (INFO_FILE, IndexOptions, encode_corpus, index_corpus, load_index)


class Interrupted(Exception):
    pass


class CountingEncoder:
    """Encodes each text to a fixed vector of its own (its length, its first letter), counting calls and texts."""

    def __init__(self, fail_on_call: int | None = None):
        self.calls, self.texts, self.fail_on_call = 0, [], fail_on_call

    def __call__(self, texts: list[str]) -> np.ndarray:
        self.calls += 1
        if self.calls == self.fail_on_call:
            raise Interrupted
        self.texts.extend(texts)
        return np.array([[len(t), ord(t[0]), 1.0] for t in texts], dtype=np.float32)


def _plan(rows: int, chunk_size: int = 3) -> ChunkPlan:
    return ChunkPlan(rows=rows, dim=3, chunk_size=chunk_size, fingerprint="test")


def test_iter_corpus_streams_what_read_corpus_reads(tiny_beir_dir):
    path = tiny_beir_dir / CORPUS_FILE
    corpus = read_corpus(path)
    assert list(iter_corpus(path)) == [(doc_id, document_text(doc)) for doc_id, doc in corpus.items()]


@pytest.mark.parametrize("reader", [read_corpus, read_corpus_ids])
def test_the_id_pass_refuses_duplicates_like_read_corpus(tmp_path, reader):
    path = tmp_path / CORPUS_FILE
    path.write_text('{"_id": "b", "text": "w"}\n{"_id": "a", "text": "x"}\n\n{"_id": "c", "text": "y"}\n'
                    '{"_id": "a", "text": "z"}\n{"_id": "b", "text": "v"}\n')
    with pytest.raises(AugirError, match=r"corpus.jsonl:5: duplicate document id 'a' \(first on line 2\)$"):
        reader(path)


def test_resume_after_interruption_encodes_only_missing_chunks(tmp_path):
    texts = [f"text number {i}" for i in range(10)]  # 4 chunks of 3, 3, 3, 1
    folder = tmp_path / ".index.partial"
    broken = CountingEncoder(fail_on_call=3)
    with pytest.raises(Interrupted):
        encode_chunks(broken, iter(texts), _plan(10), folder)
    assert json.loads((folder / PROGRESS_FILE).read_text())["done"] == [0, 1]

    resumed = CountingEncoder()
    path = encode_chunks(resumed, iter(texts), _plan(10), folder)
    assert resumed.calls == 2 and resumed.texts == texts[6:]  # chunks 2 and 3 only
    assert np.array_equal(np.load(path), CountingEncoder()(texts))


def test_a_different_plan_starts_over(tmp_path):
    texts = [f"t{i}" for i in range(5)]
    folder = tmp_path / ".index.partial"
    encode_chunks(CountingEncoder(), iter(texts), _plan(5), folder)
    again = CountingEncoder()
    encode_chunks(again, iter(texts), ChunkPlan(rows=5, dim=3, chunk_size=3, fingerprint="another model"), folder)
    assert again.texts == texts


def test_a_foreign_work_folder_is_refused(tmp_path):
    folder = tmp_path / ".index.partial"
    folder.mkdir()
    (folder / "notes.txt").write_text("mine")
    with pytest.raises(AugirError, match="refusing to replace it"):
        encode_chunks(CountingEncoder(), iter(["a"]), _plan(1), folder)
    assert (folder / "notes.txt").read_text() == "mine"


def test_mmap_encode_equals_in_memory_encode(tmp_path, tiny_beir_dir, tiny_dataset, tiny_encoder_dir):
    encoder = load_encoder(str(tiny_encoder_dir))
    doc_ids, in_memory = encode_corpus(encoder, tiny_dataset, batch_size=4)
    dense = index_corpus(str(tiny_encoder_dir), tiny_beir_dir, tmp_path / "index", batch_size=4, max_seq_length=None,
                         options=IndexOptions(chunk_size=3))
    streamed = np.load(tmp_path / "index" / "embeddings.npy", mmap_mode="r")
    by_id = {doc_id: row for row, doc_id in enumerate(dense.doc_ids)}
    assert sorted(dense.doc_ids) == doc_ids
    assert np.allclose(streamed[[by_id[d] for d in doc_ids]], in_memory, atol=1e-6)
    assert not work_folder(tmp_path / "index").exists()  # the work folder is gone once the index is saved
    assert json.loads((tmp_path / "index" / INFO_FILE).read_text())["exact"] is True


def test_index_corpus_resumes_an_interrupted_encode(tmp_path, tiny_beir_dir, tiny_encoder_dir, monkeypatch):
    import augir.retrieval.index as index_module

    calls = []
    real = index_module._encode_documents

    def counting(encoder, texts, batch_size, progress, pool=None):
        calls.append(list(texts))
        if len(calls) == 2 and not hasattr(counting, "resumed"):
            raise Interrupted
        return real(encoder, texts, batch_size, progress, pool)

    monkeypatch.setattr(index_module, "_encode_documents", counting)
    options = IndexOptions(chunk_size=3)  # 8 documents: chunks of 3, 3, 2
    with pytest.raises(Interrupted):
        index_corpus(str(tiny_encoder_dir), tiny_beir_dir, tmp_path / "index", batch_size=4, max_seq_length=None,
                     options=options)
    assert not (tmp_path / "index").exists()
    counting.resumed, calls[:] = True, []
    dense = index_corpus(str(tiny_encoder_dir), tiny_beir_dir, tmp_path / "index", batch_size=4, max_seq_length=None,
                         options=options)
    assert [len(chunk) for chunk in calls] == [3, 2]  # the first chunk was not encoded again
    assert dense.index.ntotal == 8


@pytest.mark.parametrize(("factory", "exact", "mmap"), [
    ("flat_ip", True, "streamed"), ("IVF2,Flat", False, "ondisk"), ("HNSW8", False, "partial")])
def test_metrics_say_whether_the_search_was_exact(tmp_path, tiny_beir_dir, tiny_dataset, tiny_encoder_dir, factory,
                                                  exact, mmap):
    index_corpus(str(tiny_encoder_dir), tiny_beir_dir, tmp_path / "index", batch_size=4, max_seq_length=None,
                 options=IndexOptions(factory=factory.replace("flat_ip", "Flat"), train_sample=8))
    dense = load_index(tmp_path / "index", nprobe=2, ef_search=16)
    encoder = load_encoder(str(tiny_encoder_dir))
    _, evaluation = evaluate_split(encoder, dense, tiny_dataset, split="test", top_k=5, remove_self_hits=True)
    record = metrics_record(evaluation, tiny_dataset, split="test", top_k=5, search=dense.search_record())
    assert record["exact"] is exact and record["index"] == factory.replace("flat_ip", "Flat")
    assert record["index_mmap"] == mmap
    assert record.get("nprobe") == (2 if factory.startswith("IVF") else None)
    assert record.get("ef_search") == (16 if factory.startswith("HNSW") else None)


def test_a_metrics_record_must_say_whether_the_search_was_exact(tiny_dataset):
    with pytest.raises(ValueError, match="exact"):
        metrics_record(None, tiny_dataset, split="test", top_k=5, search={"index": "Flat"})


def test_an_index_folder_from_before_factory_strings_still_loads(tmp_path):
    import faiss

    folder = tmp_path / "index"
    folder.mkdir()
    flat = faiss.IndexFlatIP(2)
    flat.add(np.eye(2, dtype=np.float32))
    faiss.write_index(flat, str(folder / "index.faiss"))
    (folder / "doc_ids.json").write_text('["a", "b"]')
    dense = load_index(folder)
    assert dense.search_record() == {"index": "Flat", "exact": True, "index_mmap": "full"}
    assert dense.index.search(np.array([[0, 1]], dtype=np.float32), 1)[1][0][0] == 1


def test_encoding_on_two_processes_gives_one_process_embeddings(tmp_path, tiny_beir_dir, tiny_encoder_dir,
                                                                monkeypatch):
    """runtime.encode_devices: two CPU worker processes (sentence-transformers' pool, spawned) give the embeddings
    and the document order one process gives, chunk by chunk."""
    from sentence_transformers import SentenceTransformer

    pools, start = [], SentenceTransformer.start_multi_process_pool

    def recording_start(self, target_devices=None):
        pool = start(self, target_devices=target_devices)
        pools.append((target_devices, len(pool["processes"])))
        return pool

    monkeypatch.setattr(SentenceTransformer, "start_multi_process_pool", recording_start)
    options = IndexOptions(chunk_size=3)
    single = index_corpus(str(tiny_encoder_dir), tiny_beir_dir, tmp_path / "one", batch_size=2, max_seq_length=None,
                          options=options)
    double = index_corpus(str(tiny_encoder_dir), tiny_beir_dir, tmp_path / "two", batch_size=2, max_seq_length=None,
                          options=options, devices=["cpu", "cpu"])
    one = np.load(tmp_path / "one" / "embeddings.npy")
    two = np.load(tmp_path / "two" / "embeddings.npy")
    assert list(double.doc_ids) == list(single.doc_ids) and one.shape == two.shape == (8, one.shape[1])
    assert np.abs(one - two).max() < 1e-6 and np.abs(one).max() > 0.01
    assert pools == [(["cpu", "cpu"], 2)]  # one pool for the three chunks, two worker processes


@pytest.mark.parametrize("backend", ["openvino", "onnx", "onnx-int8"])
def test_several_devices_with_another_backend_is_a_one_line_error(backend, tmp_path, tiny_beir_dir, tiny_encoder_dir):
    with pytest.raises(AugirError, match="runtime.encode_devices: several devices need encode.backend torch"):
        index_corpus(str(tiny_encoder_dir), tiny_beir_dir, tmp_path / "index", batch_size=2, max_seq_length=None,
                     backend=backend, devices=["cpu", "cpu"])
    assert not (tmp_path / "index").exists()
