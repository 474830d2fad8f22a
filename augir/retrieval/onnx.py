"""`encode.backend: onnx | onnx-int8`: the encoder's transformer exported to ONNX and run by ONNX Runtime on CPUs.

sentence-transformers' own `backend="onnx"` needs optimum-onnx, whose releases pin transformers below the version
augir is locked to; so the transformer is exported by torch's own exporter (`torch.onnx.export`, the
torch.export-based one, batch and length dynamic), for `onnx-int8` quantized by ONNX Runtime's dynamic
quantization (int8 weights, activations quantized per batch), and run by an `InferenceSession` in place of the
torch module. Tokenization, prompts, batching, pooling and normalization stay the library's.

The export costs about 4 s of every load of the default run's MiniLM-L2 here (benchmarks/encoder_load.py), so it
is kept in the weights cache (augir.weights_cache) under a hash of the transformer's config and tensors and of the
exporting libraries' versions: encode and evaluate (and a grid's cells evaluating the same model) export it once.
"""

from __future__ import annotations

import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import torch

from augir.errors import AugirError
from augir.retrieval.encoders import example_inputs, transformer_module
from augir.weights_cache import cached_conversion, library_versions, module_digest

EXPORTERS = ("torch", "transformers", "onnx", "onnxscript", "onnxruntime")  # their versions are part of the key


def _onnxruntime() -> Any:
    try:
        import onnxruntime
        import onnxscript  # noqa: F401  (torch's exporter needs it)
    except ImportError as error:
        raise AugirError("encode.backend: onnx needs onnxruntime, onnx and onnxscript: "
                         "pip install -e \".[onnx]\"") from error
    return onnxruntime


class _LastHiddenState(torch.nn.Module):
    """The transformer with named tensor inputs and one tensor out, as the exporter wants it."""

    def __init__(self, model: torch.nn.Module, input_names: list[str]):
        super().__init__()
        self.model = model
        self.input_names = input_names

    def forward(self, *inputs: torch.Tensor) -> torch.Tensor:
        return self.model(**dict(zip(self.input_names, inputs, strict=True))).last_hidden_state


def export_onnx(transformer: Any, folder: Path) -> tuple[Path, list[str]]:
    """The transformer as `folder/model.onnx` (weights beside it), batch and sequence length dynamic."""
    example = example_inputs(transformer)
    names = list(example)
    batch, length = torch.export.Dim("batch"), torch.export.Dim("sequence")
    path = folder / "model.onnx"
    with torch.no_grad():
        torch.onnx.export(_LastHiddenState(transformer.model, names).eval(), tuple(example.values()), str(path),
                          dynamo=True, input_names=names, output_names=["last_hidden_state"],
                          dynamic_shapes=(tuple({0: batch, 1: length} for _ in names),))  # one entry: *inputs
    return path, names


def quantize_int8(path: Path) -> Path:
    """ONNX Runtime's dynamic int8 quantization of the model at `path` (weights int8; activations per batch)."""
    from onnxruntime.quantization import QuantType, quantize_dynamic

    quantized = path.with_name("model_int8.onnx")
    quantize_dynamic(str(path), str(quantized), weight_type=QuantType.QInt8)
    return quantized


def use_onnx(encoder: Any, *, int8: bool = False) -> Any:
    """`encoder` with its transformer run by ONNX Runtime on the CPU (int8 weights if `int8`)."""
    ort = _onnxruntime()
    transformer = transformer_module(encoder, "onnx")
    config = transformer.model.config
    names = list(example_inputs(transformer))
    with onnx_files(transformer, int8=int8) as path:
        options = ort.SessionOptions()
        options.intra_op_num_threads = torch.get_num_threads()
        session = ort.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])
        operators = _operators(path)
    transformer.model = OnnxModel(session, config, names, operators)
    return encoder


@contextmanager
def onnx_files(transformer: Any, *, int8: bool) -> Iterator[Path]:
    """The transformer's ONNX file (quantized if `int8`): from the weights cache, exported into it on first use, or,
    with the cache off, exported into a temporary folder that lasts as long as the `with` block."""
    file_name = "model_int8.onnx" if int8 else "model.onnx"

    def write(folder: Path) -> None:
        folder.mkdir(parents=True)
        path, _ = export_onnx(transformer, folder)
        if int8:
            quantize_int8(path)

    key = {"model": module_digest(transformer.model), "inputs": list(example_inputs(transformer)), "int8": int8,
           "versions": library_versions(EXPORTERS)}
    cached = cached_conversion("onnx", key, write)
    if cached is not None:
        yield cached / file_name
        return
    with tempfile.TemporaryDirectory(prefix="augir-onnx-") as scratch:
        write(Path(scratch) / "model")
        yield Path(scratch) / "model" / file_name


def _operators(path: Path) -> frozenset[str]:
    """The operator types of the model's graph: says whether it is the quantized one."""
    import onnx

    return frozenset(node.op_type for node in onnx.load(str(path), load_external_data=False).graph.node)


class OnnxModel(torch.nn.Module):  # a Module, so that the SentenceTransformer holding it still works
    """Stands for the torch transformer: same inputs, `last_hidden_state` out, computed by ONNX Runtime."""

    def __init__(self, session: Any, config: Any, input_names: list[str], operators: frozenset[str]):
        super().__init__()
        self.session = session
        self.config = config
        self.input_names = input_names
        self.operators = operators

    def forward(self, **inputs: Any) -> dict[str, Any]:
        feed = {name: inputs[name].numpy() for name in self.input_names}
        (hidden,) = self.session.run(["last_hidden_state"], feed)
        return {"last_hidden_state": torch.from_numpy(hidden)}
