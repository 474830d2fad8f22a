import numpy as np

from augir.retrieval.encoders import load_encoder
from augir.retrieval.index import build_index, encode_corpus, load_index, save_index, search


def test_search_returns_top_k_by_inner_product():
    doc_ids = ["a", "b", "c"]
    embeddings = np.array([[1, 0], [0.6, 0.8], [0, 1]], dtype=np.float32)
    dense = build_index(doc_ids, embeddings)
    run = search(dense, ["q"], np.array([[0, 1]], dtype=np.float32), top_k=2)
    assert list(run["q"]) == ["c", "b"]
    assert run["q"]["c"] == 1.0 and abs(run["q"]["b"] - 0.8) < 1e-6


def test_top_k_larger_than_corpus_returns_every_document():
    dense = build_index(["a", "b"], np.eye(2, dtype=np.float32))
    run = search(dense, ["q"], np.array([[1, 0]], dtype=np.float32), top_k=1000)
    assert set(run["q"]) == {"a", "b"}


def test_index_round_trip(tmp_path, tiny_dataset, tiny_encoder_dir):
    encoder = load_encoder(str(tiny_encoder_dir))
    doc_ids, embeddings = encode_corpus(encoder, tiny_dataset, batch_size=4)
    assert embeddings.dtype == np.float32 and embeddings.shape == (8, 32)
    assert np.allclose(np.linalg.norm(embeddings, axis=1), 1.0, atol=1e-5)
    save_index(build_index(doc_ids, embeddings), embeddings, tmp_path / "index")
    loaded = load_index(tmp_path / "index")
    assert list(loaded.doc_ids) == doc_ids and loaded.index.ntotal == 8
    assert np.array_equal(np.load(tmp_path / "index" / "embeddings.npy"), embeddings)
