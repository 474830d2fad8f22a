"""`encode.backend: openvino`: the same retriever run by OpenVINO gives torch's embeddings, rankings and metrics; the
converted model is kept in the weights cache, once per model."""

import numpy as np
import pytest

from augir.errors import AugirError
from augir.retrieval.encoders import load_encoder
from augir.retrieval.evaluate import evaluate_model
from augir.weights_cache import CACHE_ENV, SOURCE_FILE

openvino = pytest.importorskip("openvino")


@pytest.fixture(autouse=True)
def cache_dir(tmp_path, monkeypatch):
    """A weights cache of the test's own, never ~/.cache."""
    folder = tmp_path / "weights-cache"
    monkeypatch.setenv(CACHE_ENV, str(folder))
    return folder


TEXTS = ["Plants turn light into sugar.", "Iron oxide forms when iron reacts with oxygen and water, slowly.", "moon"]


def test_openvino_embeddings_equal_torch_within_float_error(tiny_encoder_dir):
    torch_encoder = load_encoder(str(tiny_encoder_dir))
    openvino_encoder = load_encoder(str(tiny_encoder_dir), backend="openvino")
    for encode in ("encode_document", "encode_query"):
        expected = getattr(torch_encoder, encode)(TEXTS, batch_size=2, normalize_embeddings=True)
        got = getattr(openvino_encoder, encode)(TEXTS, batch_size=2, normalize_embeddings=True)
        assert got.shape == expected.shape  # batches of different lengths: the converted model's shapes are dynamic
        assert np.abs(got - expected).max() < 1e-4
        assert (got * expected).sum(axis=1).min() > 0.9999


def test_openvino_metrics_equal_torch(tiny_encoder_dir, tiny_dataset):
    options = dict(split="test", top_k=10, remove_self_hits=True, batch_size=4)
    _, with_torch = evaluate_model(load_encoder(str(tiny_encoder_dir)), tiny_dataset, **options)
    _, with_openvino = evaluate_model(load_encoder(str(tiny_encoder_dir), backend="openvino"), tiny_dataset, **options)
    assert with_openvino.aggregate == pytest.approx(with_torch.aggregate, abs=1e-6)


def test_an_unknown_backend_names_the_param(tiny_encoder_dir):
    with pytest.raises(AugirError, match="^encode.backend: unknown backend 'tensorrt'"):
        load_encoder(str(tiny_encoder_dir), backend="tensorrt")


def test_the_converted_model_is_kept_and_the_next_load_reads_it(tiny_encoder_dir, cache_dir, monkeypatch):
    conversions = []
    convert = openvino.convert_model
    monkeypatch.setattr(openvino, "convert_model",
                        lambda *args, **kwargs: conversions.append(1) or convert(*args, **kwargs))
    expected = load_encoder(str(tiny_encoder_dir)).encode_document(TEXTS, normalize_embeddings=True)
    for _ in range(2):
        encoder = load_encoder(str(tiny_encoder_dir), backend="openvino")
        assert np.abs(encoder.encode_document(TEXTS, normalize_embeddings=True) - expected).max() < 1e-4
    assert len(conversions) == 1  # the second load read the cache
    (entry,) = (cache_dir / "openvino").iterdir()
    assert (entry / SOURCE_FILE).is_file() and (entry / "model.xml").is_file()
