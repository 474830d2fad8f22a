"""`encode.backend: openvino`: the same retriever run by OpenVINO gives torch's embeddings, rankings and metrics."""

import numpy as np
import pytest

from augir.errors import AugirError
from augir.retrieval.encoders import load_encoder
from augir.retrieval.evaluate import evaluate_model

pytest.importorskip("openvino")

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
