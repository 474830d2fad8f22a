"""`encode.backend: openvino`: the encoder's transformer run by OpenVINO on CPUs, everything else sentence-transformers'.

sentence-transformers' own `backend="openvino"` needs optimum-intel, whose releases pin transformers below the
version augir is locked to; so the transformer is converted with OpenVINO's own `convert_model` (from the torch
module in memory, dynamic batch and length) and put in the SentenceTransformer's Transformer module in place of
the torch model. Tokenization, prompts, batching, pooling and normalization stay the library's.

The converted model is kept in the weights cache (augir.weights_cache) as OpenVINO IR, float32 as converted, under a
hash of the transformer's config and tensors and of the converting libraries' versions: later loads of the same
model read it instead of converting again.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import torch

from augir.errors import AugirError
from augir.retrieval.encoders import example_inputs, transformer_module
from augir.weights_cache import cached_conversion, library_versions, module_digest

CONVERTERS = ("torch", "transformers", "openvino")  # their versions are part of the key
IR_FILE = "model.xml"  # OpenVINO's intermediate representation (weights in model.bin beside it)


def _openvino() -> Any:
    try:
        import openvino
    except ImportError as error:
        raise AugirError("encode.backend: openvino needs the openvino package: pip install -e \".[openvino]\"") from error
    return openvino


def use_openvino(encoder: Any) -> Any:
    """`encoder` with its transformer compiled by OpenVINO for the CPU."""
    ov = _openvino()
    transformer = transformer_module(encoder, "openvino")
    model = transformer.model.eval()
    example = example_inputs(transformer)
    compiled = ov.Core().compile_model(converted_model(ov, model, example), "CPU")
    transformer.model = OpenVinoModel(compiled, model.config, list(example))
    return encoder


def converted_model(ov: Any, model: torch.nn.Module, example: dict[str, Any]) -> Any:
    """The transformer as an OpenVINO model: read from the weights cache, or converted (and kept there)."""
    def convert() -> Any:
        with torch.no_grad():
            return ov.convert_model(model, example_input=example)

    def write(folder: Path) -> None:
        folder.mkdir(parents=True)
        ov.save_model(convert(), str(folder / IR_FILE), compress_to_fp16=False)  # the weights as they are

    key = {"model": module_digest(model), "inputs": list(example), "versions": library_versions(CONVERTERS)}
    cached = cached_conversion("openvino", key, write)
    return ov.Core().read_model(str(cached / IR_FILE)) if cached is not None else convert()


class OpenVinoModel(torch.nn.Module):  # a Module, so that the SentenceTransformer holding it still works
    """Stands for the torch transformer: same inputs, `last_hidden_state` out, computed by OpenVINO."""

    def __init__(self, compiled: Any, config: Any, input_names: list[str]):
        super().__init__()
        self.compiled = compiled
        self.config = config
        self.input_names = input_names
        self.output = compiled.output(0)

    def forward(self, **inputs: Any) -> dict[str, Any]:
        feed = {name: inputs[name].numpy() for name in self.input_names if name in inputs}
        hidden = self.compiled(feed)[self.output]
        return {"last_hidden_state": torch.from_numpy(hidden.copy())}
