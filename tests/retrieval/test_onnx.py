"""`encode.backend: onnx | onnx-int8`: the retriever exported to ONNX gives torch's embeddings and metrics; int8 is
quantized and close."""

import numpy as np
import pytest

from augir.retrieval.encoders import load_encoder
from augir.retrieval.evaluate import evaluate_model
from augir.retrieval.index import EMBEDDINGS_FILE, index_corpus

pytest.importorskip("onnxruntime")
pytest.importorskip("onnxscript")  # torch's torch.export-based ONNX exporter

TEXTS = ["Plants turn light into sugar.", "Iron oxide forms when iron reacts with oxygen and water, slowly.", "moon"]


def _embeddings(encoder, encode: str) -> np.ndarray:
    return getattr(encoder, encode)(TEXTS, batch_size=2, normalize_embeddings=True)


def test_onnx_embeddings_equal_torch_within_float_error(tiny_encoder_dir):
    torch_encoder = load_encoder(str(tiny_encoder_dir))
    onnx_encoder = load_encoder(str(tiny_encoder_dir), backend="onnx")
    assert "MatMulInteger" not in onnx_encoder[0].model.operators
    for encode in ("encode_document", "encode_query"):
        expected, got = _embeddings(torch_encoder, encode), _embeddings(onnx_encoder, encode)
        assert got.shape == expected.shape  # batches of different lengths: the exported shapes are dynamic
        assert np.abs(got - expected).max() < 1e-4


def test_onnx_metrics_equal_torch(tiny_encoder_dir, tiny_dataset):
    options = dict(split="test", top_k=10, remove_self_hits=True, batch_size=4)
    _, with_torch = evaluate_model(load_encoder(str(tiny_encoder_dir)), tiny_dataset, **options)
    _, with_onnx = evaluate_model(load_encoder(str(tiny_encoder_dir), backend="onnx"), tiny_dataset, **options)
    assert with_onnx.aggregate == pytest.approx(with_torch.aggregate, abs=1e-6)


def test_the_encode_stage_path_with_onnx_writes_torchs_embeddings(tmp_path, tiny_beir_dir, tiny_encoder_dir):
    for backend in ("torch", "onnx"):
        index_corpus(str(tiny_encoder_dir), tiny_beir_dir, tmp_path / backend, batch_size=2, max_seq_length=None,
                     backend=backend)
    expected, got = (np.load(tmp_path / backend / EMBEDDINGS_FILE) for backend in ("torch", "onnx"))
    assert got.shape == expected.shape and np.abs(got - expected).max() < 1e-4


def test_onnx_int8_runs_quantized_matrix_products_and_stays_close(tiny_encoder_dir):
    int8_encoder = load_encoder(str(tiny_encoder_dir), backend="onnx-int8")
    operators = int8_encoder[0].model.operators
    assert "MatMulInteger" in operators or "DynamicQuantizeMatMul" in operators  # not the float model renamed
    expected = _embeddings(load_encoder(str(tiny_encoder_dir)), "encode_document")
    got = _embeddings(int8_encoder, "encode_document")
    assert not np.array_equal(got, expected)
    assert (got * expected).sum(axis=1).min() > 0.9
