"""`encode.backend: onnx | onnx-int8`: the retriever exported to ONNX gives torch's embeddings and metrics; int8 is
quantized and close; the export is kept in the weights cache, once per model."""

import numpy as np
import pytest

from augir.retrieval import onnx
from augir.retrieval.encoders import load_encoder
from augir.retrieval.evaluate import evaluate_model
from augir.retrieval.index import EMBEDDINGS_FILE, index_corpus
from augir.weights_cache import CACHE_ENV, SOURCE_FILE

pytest.importorskip("onnxruntime")
pytest.importorskip("onnxscript")  # torch's torch.export-based ONNX exporter

TEXTS = ["Plants turn light into sugar.", "Iron oxide forms when iron reacts with oxygen and water, slowly.", "moon"]


@pytest.fixture(autouse=True)
def cache_dir(tmp_path, monkeypatch):
    """A weights cache of the test's own: every test exports (or finds) what it needs there, never in ~/.cache."""
    folder = tmp_path / "weights-cache"
    monkeypatch.setenv(CACHE_ENV, str(folder))
    return folder


@pytest.fixture
def exports(monkeypatch) -> list[str]:
    """Counts the ONNX exports."""
    calls: list[str] = []
    export = onnx.export_onnx

    def counting(transformer, folder):
        calls.append(folder.name)
        return export(transformer, folder)

    monkeypatch.setattr(onnx, "export_onnx", counting)
    return calls


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


def test_the_export_is_kept_and_the_next_load_reads_it(tiny_encoder_dir, cache_dir, exports):
    expected = _embeddings(load_encoder(str(tiny_encoder_dir)), "encode_document")
    first = load_encoder(str(tiny_encoder_dir), backend="onnx")
    second = load_encoder(str(tiny_encoder_dir), backend="onnx")
    assert len(exports) == 1
    (entry,) = (cache_dir / "onnx").iterdir()
    assert (entry / SOURCE_FILE).is_file() and (entry / "model.onnx").is_file()
    for encoder in (first, second):
        assert np.abs(_embeddings(encoder, "encode_document") - expected).max() < 1e-4
    load_encoder(str(tiny_encoder_dir), backend="onnx-int8")  # quantized: an entry of its own
    assert len(exports) == 2 and len(list((cache_dir / "onnx").iterdir())) == 2


def test_other_weights_are_exported_again_not_read_from_the_cache(tiny_encoder_dir, cache_dir, exports):
    import copy

    import torch

    load_encoder(str(tiny_encoder_dir), backend="onnx")
    changed = load_encoder(str(tiny_encoder_dir))  # the same config and path: only the tensors tell them apart
    with torch.no_grad():
        changed[0].model.encoder.layer[0].output.dense.bias[0] += 0.5  # one number of one tensor
    expected = _embeddings(copy.deepcopy(changed), "encode_document")
    onnx.use_onnx(changed)
    assert len(exports) == 2 and len(list((cache_dir / "onnx").iterdir())) == 2
    assert np.abs(_embeddings(changed, "encode_document") - expected).max() < 1e-4


def test_the_same_weights_read_from_another_folder_find_the_export(tiny_encoder_dir, tmp_path, exports):
    import shutil

    shutil.copytree(tiny_encoder_dir, tmp_path / "copy")
    load_encoder(str(tiny_encoder_dir), backend="onnx")
    load_encoder(str(tmp_path / "copy"), backend="onnx")
    assert len(exports) == 1  # the key is the content, not the path (dvc exp runs in temporary copies)


def test_with_the_cache_off_it_exports_at_every_load_and_keeps_nothing(tiny_encoder_dir, tmp_path, monkeypatch,
                                                                          exports):
    monkeypatch.setenv(CACHE_ENV, "off")
    monkeypatch.setattr(onnx.tempfile, "tempdir", str(tmp_path))  # where the scratch export goes
    for _ in range(2):
        encoder = load_encoder(str(tiny_encoder_dir), backend="onnx")
    assert len(exports) == 2 and list(tmp_path.iterdir()) == []
    expected = _embeddings(load_encoder(str(tiny_encoder_dir)), "encode_document")
    assert np.abs(_embeddings(encoder, "encode_document") - expected).max() < 1e-4
