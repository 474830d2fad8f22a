"""`encode.backend: openvino`: the encoder's transformer run by OpenVINO on CPUs, everything else sentence-transformers'.

sentence-transformers' own `backend="openvino"` needs optimum-intel, whose releases pin transformers below the
version augir is locked to; so the transformer is converted with OpenVINO's own `convert_model` (from the torch
module in memory, dynamic batch and length) and put in the SentenceTransformer's Transformer module in place of
the torch model. Tokenization, prompts, batching, pooling and normalization stay the library's.
"""

from __future__ import annotations

from typing import Any

import torch

from augir.errors import AugirError
from augir.retrieval.encoders import example_inputs, transformer_module


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
    with torch.no_grad():
        converted = ov.convert_model(model, example_input=example)
    compiled = ov.Core().compile_model(converted, "CPU")
    transformer.model = OpenVinoModel(compiled, model.config, list(example))
    return encoder


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
