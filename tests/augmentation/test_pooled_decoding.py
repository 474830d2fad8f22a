"""Pooled decoding: chunked prefill, one decoding pool that drops stopped rows, the tokens of `model.generate`."""

import pytest

from augir.augmentation.backends import Sampling
from augir.augmentation.backends.pooled_decoding import RoomyLayer, decode, pool, prefill
from augir.augmentation.backends.transformers_backend import TransformersBackend, greedy, prefill_chunks

from test_transformers_backend import prompts_for, texts


def test_prefill_chunks_fill_the_budget_with_rows_in_order():
    assert prefill_chunks([3, 3, 4, 10], budget=8) == [(0, 2), (2, 3), (3, 4)]
    assert prefill_chunks([3, 3, 4, 10], budget=40) == [(0, 4)]
    assert prefill_chunks([3, 3, 4, 10], budget=1) == [(0, 1), (1, 2), (2, 3), (3, 4)]  # a row too long goes alone
    assert prefill_chunks([], budget=8) == []


def generate_tokens(generator, rows: list[list[int]], max_new_tokens: int, stop_ids: list[int]) -> list[list[int]]:
    """What augir's transformers path did before pooled decoding: the rows left-padded, one `model.generate`."""
    import torch

    pad = generator.tokenizer.pad_token_id
    width = max(len(row) for row in rows)
    ids = torch.tensor([[pad] * (width - len(row)) + row for row in rows])
    mask = torch.tensor([[0] * (width - len(row)) + [1] * len(row) for row in rows])
    with torch.inference_mode():
        output = generator.model.generate(input_ids=ids, attention_mask=mask, max_new_tokens=max_new_tokens,
                                          do_sample=False, pad_token_id=pad, eos_token_id=stop_ids)
    new = output[:, width:].tolist()
    return [row[: next((i + 1 for i, t in enumerate(row) if t in stop_ids), len(row))] for row in new]


def pooled_tokens(generator, rows: list[list[int]], max_new_tokens: int, stop_ids: list[int],
                  chunk_rows: int) -> list[list[int]]:
    import torch

    pad = generator.tokenizer.pad_token_id
    with torch.inference_mode():
        chunks = [prefill(generator.model, rows[start : start + chunk_rows], [], None, pad)
                  for start in range(0, len(rows), chunk_rows)]
        cache, mask, logits = pool(chunks, room=max_new_tokens)
        return decode(generator.model, cache, mask, logits, max_new_tokens, stop_ids, greedy)


@pytest.mark.parametrize("chunk_rows", [1, 2, 5])
def test_pooled_tokens_equal_generate_with_rows_stopping_at_different_steps(tiny_generator, chunk_rows):
    tokenizer = tiny_generator.tokenizer
    rows = [tokenizer(prompt.text)["input_ids"] for prompt in prompts_for()]
    eos = tokenizer.eos_token_id
    unstopped = generate_tokens(tiny_generator, rows, 8, [eos])
    stop_ids = sorted({unstopped[0][2], unstopped[1][3]} - {eos})  # tokens the random model writes mid-query
    expected = generate_tokens(tiny_generator, rows, 8, stop_ids)
    assert len({len(tokens) for tokens in expected}) > 1  # rows leave the pool at different steps
    assert pooled_tokens(tiny_generator, rows, 8, stop_ids, chunk_rows) == expected


@pytest.mark.parametrize("prefill_tokens", [1, 60, 100_000])
def test_greedy_and_sampled_queries_do_not_depend_on_prefill_chunks_or_batches(tiny_generator, prefill_tokens):
    for sampling in (Sampling(max_new_tokens=8, stop_at_newline=False),
                     Sampling(temperature=0.8, top_p=0.9, max_new_tokens=8, stop_at_newline=False)):
        one_by_one = texts(TransformersBackend(tiny_generator, prefill_tokens=100_000), prompts_for(), sampling, 1)
        pooled = texts(TransformersBackend(tiny_generator, prefill_tokens=prefill_tokens), prompts_for(), sampling, 5)
        assert pooled == one_by_one


def test_the_pooled_cache_refuses_more_tokens_than_its_room():
    import torch

    keys = torch.zeros((1, 1, 3, 2))
    layer = RoomyLayer(keys, keys.clone(), used=2)
    layer.update(torch.ones((1, 1, 1, 2)), torch.ones((1, 1, 1, 2)))
    assert layer.get_seq_length() == 3 and layer.keys[0, 0, 2].tolist() == [1.0, 1.0]
    with pytest.raises(ValueError, match="room for 0 more tokens, not 1"):
        layer.update(torch.ones((1, 1, 1, 2)), torch.ones((1, 1, 1, 2)))


def test_a_sliding_window_model_is_read_as_one_chunk_and_writes_what_generate_writes(tiny_generator):
    """Sliding-window layers keep only their window of keys, so their rows cannot be widened into a pool."""
    import torch
    from transformers import MistralConfig, MistralForCausalLM

    from augir.augmentation.backends.pooled_decoding import poolable
    from augir.augmentation.generators import Generator

    torch.manual_seed(0)
    config = MistralConfig(vocab_size=len(tiny_generator.tokenizer), hidden_size=32, intermediate_size=64,
                           num_hidden_layers=2, num_attention_heads=2, num_key_value_heads=2, sliding_window=8,
                           pad_token_id=0, eos_token_id=2, bos_token_id=2)
    sliding = Generator(name="tiny-mistral", model=MistralForCausalLM(config).eval(), tokenizer=tiny_generator.tokenizer)
    assert not poolable(sliding.model) and poolable(tiny_generator.model)
    rows = [tiny_generator.tokenizer(prompt.text)["input_ids"] for prompt in prompts_for()]
    expected = generate_tokens(sliding, rows, 8, [2])
    sampling = Sampling(max_new_tokens=8, stop_at_newline=False)
    backend = TransformersBackend(sliding, reuse_prefix=False, prefill_tokens=1)
    assert texts(backend, prompts_for(), sampling, 5) == sliding.tokenizer.batch_decode(expected, skip_special_tokens=True)
