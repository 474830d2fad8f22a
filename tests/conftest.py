"""Shared pytest fixtures. Add new fixtures under a section header of their own."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

# ------------------------------------------------------------------------------------------ offline by default
# A stray hub id must fail at once instead of retrying for about a minute (see shared/notes/offline-models.md).
# setdefault: run `HF_HUB_OFFLINE=0 pytest ...` to allow network tests on a connected machine.
for _var in ("HF_HUB_OFFLINE", "HF_DATASETS_OFFLINE", "TRANSFORMERS_OFFLINE"):
    os.environ.setdefault(_var, "1")

# ------------------------------------------------------------------------------------------ shared datasets
# The test collections live beside the repository (../shared/datasets), not inside it.
SHARED_DATASETS = Path(__file__).resolve().parents[1].parent / "shared" / "datasets"


@pytest.fixture(scope="session")
def shared_datasets() -> Path:
    """Folder holding scifact/ and cranfield/ in BEIR layout; skips the test when it is absent."""
    if not SHARED_DATASETS.is_dir():
        reason = f"shared test collections not found at {SHARED_DATASETS}"
        print(reason)
        pytest.skip(reason)
    return SHARED_DATASETS


# ------------------------------------------------------------------------------------------ tiny data and models
# Unit tests use models built here in seconds: the real tokenizers, tiny random weights.
TINY_DOCS = {
    "d1": ("Photosynthesis", "Plants turn light, water and carbon dioxide into sugar and oxygen."),
    "d2": ("Black holes", "A region of spacetime where gravity is so strong that nothing escapes."),
    "d3": ("Vaccines", "A vaccine trains the immune system to recognise a pathogen."),
    "d4": ("Rust", "Iron oxide forms when iron reacts with oxygen in the presence of water."),
    "d5": ("Tides", "The gravitational pull of the moon raises the tides of the oceans."),
    "d6": ("Insulin", "Insulin is a hormone that lets cells take up glucose from the blood."),
    "d7": ("Volcanoes", "Magma rises through the crust and erupts as lava and ash."),
    "d8": ("Antibiotics", "Antibiotics kill bacteria or stop them from multiplying."),
}
TINY_QUERIES = {
    "q1": "how do plants make sugar",
    "q2": "what is a black hole",
    "q3": "how does a vaccine work",
    "q4": "why does iron rust",
    "t1": "what causes ocean tides",
    "t2": "what does insulin do",
}
TINY_QRELS = {
    "train": {"q1": {"d1": 1}, "q2": {"d2": 1}, "q3": {"d3": 1}, "q4": {"d4": 2}},
    "test": {"t1": {"d5": 1}, "t2": {"d6": 2, "d8": 0}},
}


@pytest.fixture
def tiny_dataset():
    from augir.data.beir import BeirDataset, Document

    corpus = {doc_id: Document(doc_id, title, text) for doc_id, (title, text) in TINY_DOCS.items()}
    qrels = {split: {q: dict(docs) for q, docs in judged.items()} for split, judged in TINY_QRELS.items()}
    return BeirDataset(corpus=corpus, queries=dict(TINY_QUERIES), qrels=qrels)


@pytest.fixture
def tiny_beir_dir(tmp_path, tiny_dataset) -> Path:
    from augir.data.beir import write_beir

    folder = tmp_path / "tiny"
    write_beir(tiny_dataset, folder)
    return folder


@pytest.fixture(scope="session")
def tiny_encoder_dir(tmp_path_factory) -> Path:
    """A 2-layer, 32-wide BERT sentence encoder with MiniLM's tokenizer, saved as a SentenceTransformer folder."""
    import torch
    from sentence_transformers import SentenceTransformer
    from sentence_transformers.sentence_transformer.modules import Normalize, Pooling, Transformer
    from transformers import BertConfig, BertModel

    from augir.retrieval.encoders import minilm_path

    torch.manual_seed(0)
    transformer = Transformer(str(minilm_path()), max_seq_length=64)
    config = BertConfig(
        vocab_size=transformer.model.config.vocab_size, hidden_size=32, num_hidden_layers=2,
        num_attention_heads=2, intermediate_size=64,
    )
    transformer.model = BertModel(config)
    model = SentenceTransformer(modules=[transformer, Pooling(32, "mean"), Normalize()], device="cpu")
    folder = tmp_path_factory.mktemp("encoder") / "tiny-encoder"
    model.save(str(folder))
    return folder


@pytest.fixture(scope="session")
def tiny_generator():
    """A 2-layer random Llama with a word-level tokenizer over the tiny corpus: generates nonsense, quickly."""
    import torch
    from tokenizers import Tokenizer, models, pre_tokenizers
    from transformers import LlamaConfig, LlamaForCausalLM, PreTrainedTokenizerFast

    from augir.augmentation.generators import Generator

    words = sorted({w for title, text in TINY_DOCS.values() for w in f"{title} {text}".split()})
    vocab = {token: i for i, token in enumerate(["<pad>", "<unk>", "<eos>", "\n", "Document:", "Relevant", "query:"] + words)}
    backend = Tokenizer(models.WordLevel(vocab=vocab, unk_token="<unk>"))
    backend.pre_tokenizer = pre_tokenizers.WhitespaceSplit()
    tokenizer = PreTrainedTokenizerFast(
        tokenizer_object=backend, pad_token="<pad>", unk_token="<unk>", eos_token="<eos>", padding_side="left"
    )
    torch.manual_seed(0)
    config = LlamaConfig(
        vocab_size=len(vocab), hidden_size=32, intermediate_size=64, num_hidden_layers=2, num_attention_heads=2,
        num_key_value_heads=2, max_position_embeddings=512, pad_token_id=0, eos_token_id=2, bos_token_id=2,
    )
    model = LlamaForCausalLM(config).eval()
    return Generator(name="tiny-llama", model=model, tokenizer=tokenizer)


@pytest.fixture(scope="session")
def tiny_backend(tiny_generator):
    from augir.augmentation.backends.transformers_backend import TransformersBackend

    return TransformersBackend(tiny_generator)


# ------------------------------------------------------------------------------------------ shared DVC repositories
# Module-scoped fixtures that build one real DVC repository for several tests need data that outlives a test.


@pytest.fixture(scope="session")
def tiny_beir_session_dir(tmp_path_factory) -> Path:
    """The tiny BEIR folder (same content as `tiny_beir_dir`), once per session."""
    from augir.data.beir import BeirDataset, Document, write_beir

    corpus = {doc_id: Document(doc_id, title, text) for doc_id, (title, text) in TINY_DOCS.items()}
    qrels = {split: {q: dict(docs) for q, docs in judged.items()} for split, judged in TINY_QRELS.items()}
    folder = tmp_path_factory.mktemp("tiny-session") / "tiny"
    write_beir(BeirDataset(corpus=corpus, queries=dict(TINY_QUERIES), qrels=qrels), folder)
    return folder
