"""Indexes kept on disk: Flat streamed block by block and IVF merged from shards give what faiss gives in memory."""

import os
import shutil

import faiss
import numpy as np
import pytest

from augir.retrieval.index import INDEX_FILE, IndexOptions, build_on_disk, load_index
from augir.retrieval.on_disk import IVFDATA_FILE, EmbeddingsFile, StreamedFlat, fill_ivf_on_disk, read_ivf_on_disk

DIM = 16


def _unit_vectors(rows: int, seed: int) -> np.ndarray:
    vectors = np.random.default_rng(seed).standard_normal((rows, DIM)).astype(np.float32)
    return vectors / np.linalg.norm(vectors, axis=1, keepdims=True)


@pytest.fixture
def embeddings(tmp_path) -> tuple[np.ndarray, EmbeddingsFile]:
    vectors = _unit_vectors(1000, seed=1)
    np.save(tmp_path / "embeddings.npy", vectors)
    return vectors, EmbeddingsFile.open(tmp_path / "embeddings.npy")


def test_the_file_reads_as_numpy_reads_it(embeddings):
    vectors, file = embeddings
    assert (file.rows, file.dim) == vectors.shape
    blocks = list(file.blocks(300))
    assert [start for start, _ in blocks] == [0, 300, 600, 900] and len(blocks[-1][1]) == 100
    assert np.array_equal(np.concatenate([block for _, block in blocks]), vectors)
    rows = np.array([0, 5, 999])
    assert np.array_equal(file[rows], vectors[rows])


@pytest.mark.parametrize("block_rows", [1, 7, 250, 5000])
def test_streamed_flat_equals_faiss_flat(embeddings, block_rows):
    vectors, file = embeddings
    queries = _unit_vectors(30, seed=2)
    flat = faiss.IndexFlatIP(DIM)
    flat.add(vectors)
    expected_scores, expected_rows = flat.search(queries, 100)  # k larger than most blocks
    scores, rows = StreamedFlat(file, block_rows=block_rows).search(queries, 100)
    assert np.array_equal(rows, expected_rows)
    np.testing.assert_allclose(scores, expected_scores, rtol=0, atol=1e-6)


@pytest.mark.parametrize("factory", ["IVF8,Flat", "IVF8,PQ4"])
def test_ivf_merged_on_disk_equals_the_index_built_in_memory_after_the_folder_moves(tmp_path, embeddings, factory):
    vectors, file = embeddings
    trained = faiss.index_factory(DIM, factory, faiss.METRIC_INNER_PRODUCT)
    trained.train(vectors)
    in_memory = faiss.clone_index(trained)
    in_memory.add(vectors)
    built = tmp_path / "built"
    built.mkdir()
    fill_ivf_on_disk(faiss.clone_index(trained), EmbeddingsFile(file.path, file.rows, file.dim, file.offset), built,
                     INDEX_FILE)
    assert sorted(os.listdir(built)) == [INDEX_FILE, IVFDATA_FILE]  # no shard left behind
    moved = tmp_path / "elsewhere" / "index"
    shutil.move(built, moved)
    for name in (INDEX_FILE, IVFDATA_FILE):
        (moved / name).chmod(0o444)  # DVC's cache keeps files read-only
    on_disk = read_ivf_on_disk(moved / INDEX_FILE)
    for index in (in_memory, on_disk):
        faiss.extract_index_ivf(index).nprobe = 3
    queries = _unit_vectors(20, seed=3)
    assert on_disk.ntotal == 1000
    expected, got = in_memory.search(queries, 50), on_disk.search(queries, 50)
    assert np.array_equal(got[1], expected[1]) and np.array_equal(got[0], expected[0])


def test_an_ivf_index_file_does_not_depend_on_the_folder_it_was_built_in(tmp_path, embeddings):
    _, file = embeddings
    options = IndexOptions(factory="IVF8,Flat", train_sample=500)
    files = []
    for name in ("one", "two-with-a-longer-name"):
        (tmp_path / name).mkdir()
        build_on_disk(file, options, tmp_path / name)
        files.append(((tmp_path / name / INDEX_FILE).read_bytes(), (tmp_path / name / IVFDATA_FILE).read_bytes()))
    assert files[0] == files[1]


def test_flat_builds_nothing_and_is_searched_from_the_embeddings(tmp_path, embeddings):
    vectors, file = embeddings
    record = build_on_disk(file, IndexOptions(), tmp_path)
    assert record == {"index": "Flat", "rows": 1000, "dim": DIM, "exact": True, "train_rows": 0,
                      "index_mmap": "streamed"}
    assert not (tmp_path / INDEX_FILE).exists()


@pytest.mark.parametrize(("factory", "mode"), [("Flat", "streamed"), ("IVF8,Flat", "ondisk"), ("HNSW8", "partial")])
def test_every_kind_round_trips_through_an_index_folder(tmp_path, embeddings, factory, mode):
    import json

    from augir.data.doc_ids import DocIds
    from augir.retrieval.index import IDS_FILE, INFO_FILE, search

    vectors, file = embeddings
    folder = tmp_path / "index"
    folder.mkdir()
    record = build_on_disk(file, IndexOptions(factory=factory, train_sample=500, nprobe=8), folder)
    (folder / INFO_FILE).write_text(json.dumps(record))
    DocIds.from_strings(f"d{i}" for i in range(1000)).save(folder / IDS_FILE)
    shutil.copy(file.path, folder / "embeddings.npy")
    dense = load_index(folder)
    assert dense.info["index_mmap"] == mode and dense.index.ntotal == 1000
    run = search(dense, ["q"], vectors[[42]], top_k=5)
    assert next(iter(run["q"])) == "d42"  # a vector's nearest neighbour is itself, on every kind
