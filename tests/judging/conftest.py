"""A tiny random causal LM whose word-level tokenizer knows the judge prompt's words and the grade digits."""

from __future__ import annotations

import pytest

WORDS = "plants make sugar light water black hole gravity vaccine immune iron rust oxygen tides moon"
PROMPT_WORDS = "Query: Document: How relevant is the document to query, from (not relevant) (highly relevant)? Grade:"


@pytest.fixture(scope="session")
def judge_tokenizer():
    from tokenizers import Tokenizer, models, pre_tokenizers
    from transformers import PreTrainedTokenizerFast

    texts = [PROMPT_WORDS, WORDS]
    words = sorted({w for text in texts for w in text.split()} - set("0123456789"))
    vocab = {token: i for i, token in enumerate(["<pad>", "<unk>", "<eos>"] + list("0123456789") + words)}
    backend = Tokenizer(models.WordLevel(vocab=vocab, unk_token="<unk>"))
    backend.pre_tokenizer = pre_tokenizers.WhitespaceSplit()
    return PreTrainedTokenizerFast(tokenizer_object=backend, pad_token="<pad>", unk_token="<unk>", eos_token="<eos>")


@pytest.fixture
def judge_model(judge_tokenizer):
    """A fresh 2-layer random Llama for each test (tuning changes it)."""
    import torch
    from transformers import LlamaConfig, LlamaForCausalLM

    torch.manual_seed(0)
    config = LlamaConfig(
        vocab_size=len(judge_tokenizer), hidden_size=32, intermediate_size=64, num_hidden_layers=2,
        num_attention_heads=2, num_key_value_heads=2, max_position_embeddings=256, pad_token_id=0, eos_token_id=2,
        bos_token_id=2,
    )
    return LlamaForCausalLM(config).eval()
