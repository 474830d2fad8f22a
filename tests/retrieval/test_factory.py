"""encode.index as a faiss index-factory string: parsing, errors, exactness, seeded training, search depth."""

import faiss
import numpy as np
import pytest

from augir.errors import AugirError
from augir.params import EncodeParams
from augir.retrieval.factory import apply_search_params, canonical_factory, is_exact, make_index, training_rows
from augir.retrieval.index import IndexOptions, build_index, search


def _vectors(rows: int = 400, dim: int = 16, seed: int = 0) -> np.ndarray:
    vectors = np.random.default_rng(seed).standard_normal((rows, dim)).astype(np.float32)
    return vectors / np.linalg.norm(vectors, axis=1, keepdims=True)


@pytest.mark.parametrize("value", ["Flat", "HNSW32", "IVF256,Flat", "IVF256,PQ16", "IVF4,PQ7"])
def test_factory_strings_are_accepted(value):
    # IVF4,PQ7 parses; whether 7 divides the model's dimension is only known at encode time
    assert canonical_factory(value) == value
    assert EncodeParams(index=value).index == value


def test_flat_ip_is_the_old_name_of_flat():
    assert canonical_factory("flat_ip") == "Flat"
    assert EncodeParams(index="flat_ip").index == "Flat"
    assert EncodeParams().index == "Flat"


@pytest.mark.parametrize("value", ["flat", "bogus", "IVF,Flat", "Flat,Flat", ""])
def test_bad_string_is_one_line_naming_encode_index(value):
    with pytest.raises(AugirError, match=r"^encode\.index: .* is not a faiss index-factory string") as caught:
        canonical_factory(value)
    assert "\n" not in str(caught.value)


def test_bad_string_in_params_yaml_names_the_key(tmp_path):
    import yaml

    from augir.params import load_params

    params = yaml.safe_load(open("params.yaml"))
    params["encode"]["index"] = "IVF,Flat"
    path = tmp_path / "params.yaml"
    path.write_text(yaml.safe_dump(params))
    with pytest.raises(AugirError, match=r"encode\.index: 'IVF,Flat' is not a faiss index-factory string") as caught:
        load_params(path)
    assert "\n" not in str(caught.value)


def test_dimension_problem_at_build_time_is_one_line():
    with pytest.raises(AugirError, match=r"^encode\.index: 'IVF4,PQ7' .* dimension 16") as caught:
        make_index("IVF4,PQ7", 16)
    assert "\n" not in str(caught.value)


def test_only_flat_is_exact():
    assert is_exact(make_index("Flat", 8))
    for factory in ("HNSW32", "IVF4,Flat", "IVF4,PQ4", "PQ4"):
        assert not is_exact(make_index(factory, 8)), factory


def test_flat_ip_alias_gives_identical_scores_to_flat():
    vectors, queries = _vectors(), _vectors(20, seed=1)
    ids = [f"d{i}" for i in range(len(vectors))]
    old = search(build_index(ids, vectors, "flat_ip"), [f"q{i}" for i in range(20)], queries, top_k=50)
    new = search(build_index(ids, vectors, "Flat"), [f"q{i}" for i in range(20)], queries, top_k=50)
    assert old == new  # same documents, same order, bit-identical scores


def test_training_sample_is_seeded_and_without_replacement():
    first, again, other = training_rows(1000, 100, 0), training_rows(1000, 100, 0), training_rows(1000, 100, 1)
    assert np.array_equal(first, again) and not np.array_equal(first, other)
    assert len(set(first.tolist())) == 100 and np.all(np.diff(first) > 0)
    assert np.array_equal(training_rows(50, 100, 0), np.arange(50))  # a sample larger than the corpus: every row


@pytest.mark.parametrize("factory", ["IVF8,Flat", "IVF8,PQ4", "HNSW16"])
def test_training_on_a_seeded_sample_is_deterministic(factory):
    vectors = _vectors()
    options = IndexOptions(factory=factory, train_sample=300, seed=3, chunk_size=64)
    ids = [str(i) for i in range(len(vectors))]
    first, again = build_index(ids, vectors, options=options), build_index(ids, vectors, options=options)
    if factory.startswith("IVF"):
        assert first.info["train_rows"] == 300
        assert np.array_equal(faiss.serialize_index(first.index), faiss.serialize_index(again.index))
    queries = _vectors(10, seed=2)
    assert np.array_equal(first.index.search(queries, 5)[1], again.index.search(queries, 5)[1])


def test_search_depth_is_applied_where_the_index_has_one():
    ivf, hnsw, flat = make_index("IVF4,Flat", 8), make_index("HNSW32", 8), make_index("Flat", 8)
    assert apply_search_params(ivf, nprobe=3, ef_search=40) == {"nprobe": 3}
    assert faiss.extract_index_ivf(ivf).nprobe == 3
    assert apply_search_params(hnsw, nprobe=3, ef_search=40) == {"ef_search": 40}
    assert faiss.downcast_index(hnsw).hnsw.efSearch == 40
    assert apply_search_params(flat, nprobe=3, ef_search=40) == {}


def test_ivf_with_every_list_probed_finds_the_exact_top_k():
    vectors, queries = _vectors(), _vectors(10, seed=5)
    ids = [str(i) for i in range(len(vectors))]
    exact = build_index(ids, vectors)
    ivf = build_index(ids, vectors, options=IndexOptions(factory="IVF4,Flat", nprobe=4, train_sample=300))
    assert exact.info["exact"] and not ivf.info["exact"]
    assert np.array_equal(exact.index.search(queries, 10)[1], ivf.index.search(queries, 10)[1])
