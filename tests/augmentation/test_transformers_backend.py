"""The transformers backend's shared prefix: computed once, reused per batch, same queries as without reuse."""

import pytest

from augir.augmentation.backends import Sampling
from augir.augmentation.backends.transformers_backend import TransformersBackend
from augir.augmentation.prompts import FewShotExample, Prompt, build_prompt

EXAMPLES = [
    FewShotExample("q1", "how do plants make sugar", "d1", "Plants turn light, water and carbon dioxide into sugar."),
    FewShotExample("q2", "what is a black hole", "d2", "A region of spacetime where gravity is so strong."),
]
PASSAGES = [
    "The gravitational pull of the moon raises the tides of the oceans.",
    "Insulin is a hormone that lets cells take up glucose from the blood.",
    "Magma rises through the crust and erupts as lava and ash.",
    "Antibiotics kill bacteria.",
    "Iron oxide forms when iron reacts with oxygen in the presence of water.",
]


def prompts_for(strategy: str = "question") -> list[Prompt]:
    return [build_prompt(passage, EXAMPLES, strategy, "completion") for passage in PASSAGES]


def texts(backend: TransformersBackend, prompts: list[Prompt], sampling: Sampling, batch_size: int) -> list[str]:
    done = []
    for start in range(0, len(prompts), batch_size):
        batch = prompts[start : start + batch_size]
        done += backend.complete(batch, list(range(start, start + len(batch))), sampling)
    return [completion.text for completion in done]


def test_prompt_prefix_is_the_instruction_and_few_shot_block():
    first, second = prompts_for()[:2]
    assert first.prefix == second.prefix and first.text.startswith(first.prefix)
    assert first.text[len(first.prefix) :].startswith("Document: The gravitational pull")
    assert first.prefix.endswith("what is a black hole\n\n")
    assert build_prompt("x y z", EXAMPLES, "question", "chat").prefix is None


def test_prefix_must_start_the_text():
    with pytest.raises(ValueError, match="start of Prompt.text"):
        Prompt(text="Document: a", prefix="Instruction")


def test_prefix_ids_are_the_first_ids_of_the_whole_prompt(tiny_generator):
    backend = TransformersBackend(tiny_generator)
    prompt = prompts_for()[0]
    row = backend.tokenized(prompt)
    whole = tiny_generator.tokenizer(prompt.text)["input_ids"]
    assert row.prefix == prompt.prefix and len(row.prefix_ids) > 0
    assert row.prefix_ids + row.rest_ids == whole


@pytest.mark.parametrize("batch_size", [1, 2, 5])
def test_greedy_queries_equal_the_no_reuse_path(tiny_generator, batch_size):
    sampling = Sampling(max_new_tokens=8, stop_at_newline=False)
    reused = TransformersBackend(tiny_generator, reuse_prefix=True)
    plain = TransformersBackend(tiny_generator, reuse_prefix=False)
    expected = texts(plain, prompts_for(), sampling, batch_size)
    assert texts(reused, prompts_for(), sampling, batch_size) == expected
    assert len(reused.prefixes) == 1 and not plain.prefixes  # one prefix computed for the strategy, none without reuse
    assert len(set(expected)) > 1  # the random model writes different text for different passages


def test_seeded_sampling_equals_the_no_reuse_path(tiny_generator):
    sampling = Sampling(temperature=0.8, top_p=0.9, max_new_tokens=8, stop_at_newline=False)
    reused = TransformersBackend(tiny_generator, reuse_prefix=True)
    plain = TransformersBackend(tiny_generator, reuse_prefix=False)
    assert texts(reused, prompts_for(), sampling, 2) == texts(plain, prompts_for(), sampling, 2)


def test_mixed_strategies_in_one_batch_keep_their_order(tiny_generator):
    prompts = [p for pair in zip(prompts_for("question"), prompts_for("claim")) for p in pair]
    sampling = Sampling(max_new_tokens=6, stop_at_newline=False)
    reused = TransformersBackend(tiny_generator, reuse_prefix=True)
    plain = TransformersBackend(tiny_generator, reuse_prefix=False)
    assert texts(reused, prompts, sampling, 4) == texts(plain, prompts, sampling, 4)
    assert len(reused.prefixes) == 2


def test_prompts_without_prefix_and_the_shared_cache_stays_intact(tiny_generator):
    backend = TransformersBackend(tiny_generator)
    sampling = Sampling(max_new_tokens=6, stop_at_newline=False)
    with_prefix = prompts_for()
    no_prefix = [Prompt(text=p.text) for p in with_prefix]
    first = texts(backend, with_prefix, sampling, 2)
    cached = backend.prefixes[with_prefix[0].prefix]
    length = cached.cache.get_seq_length()
    assert texts(backend, no_prefix + with_prefix, sampling, 3) == first + first
    assert cached.cache.get_seq_length() == length == len(cached.ids)  # generation never extended the shared cache


def test_token_accounting_per_completion(tiny_generator):
    backend = TransformersBackend(tiny_generator)
    prompt = prompts_for()[0]
    [completion] = backend.complete([prompt], [0], Sampling(max_new_tokens=5, stop_at_newline=False))
    whole = len(tiny_generator.tokenizer(prompt.text)["input_ids"])
    prefix = len(tiny_generator.tokenizer(prompt.prefix)["input_ids"])
    assert (completion.prompt_tokens, completion.cached_prompt_tokens) == (whole, prefix)
    assert 0 < completion.new_tokens <= 5
    [plain] = TransformersBackend(tiny_generator, reuse_prefix=False).complete([prompt], [0], Sampling(max_new_tokens=5))
    assert (plain.prompt_tokens, plain.cached_prompt_tokens) == (whole, 0)


@pytest.fixture(scope="module")
def bpe_generator():
    """A tiny random Llama with a byte-level BPE tokenizer that merges "\\n\\n" into one token, as SmolLM2's does."""
    import torch
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers
    from transformers import LlamaConfig, LlamaForCausalLM, PreTrainedTokenizerFast

    from augir.augmentation.generators import Generator

    bpe = Tokenizer(models.BPE())
    bpe.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    bpe.decoder = decoders.ByteLevel()
    corpus = [p.text for p in prompts_for()] * 20 + [p.prefix for p in prompts_for()] * 20
    bpe.train_from_iterator(corpus, trainers.BpeTrainer(vocab_size=400, special_tokens=["<pad>", "<eos>"],
                                                        initial_alphabet=pre_tokenizers.ByteLevel.alphabet()))
    tokenizer = PreTrainedTokenizerFast(tokenizer_object=bpe, pad_token="<pad>", eos_token="<eos>", padding_side="left")
    torch.manual_seed(0)
    config = LlamaConfig(vocab_size=bpe.get_vocab_size(), hidden_size=32, intermediate_size=64, num_hidden_layers=2,
                         num_attention_heads=2, num_key_value_heads=2, max_position_embeddings=1024, pad_token_id=0,
                         eos_token_id=1, bos_token_id=1)
    return Generator(name="tiny-bpe", model=LlamaForCausalLM(config).eval(), tokenizer=tokenizer)


def test_prefix_boundary_where_bpe_merges_the_blank_line(bpe_generator):
    """Regression: SmolLM2 tokenizes the prefix's closing "\\n\\n" as one token alone, as two before "Document"."""
    prompt = prompts_for()[0]
    tokenizer = bpe_generator.tokenizer
    own, whole = tokenizer(prompt.prefix)["input_ids"], tokenizer(prompt.text)["input_ids"]
    assert whole[: len(own)] != own  # the merge this test is about happens with this tokenizer
    backend = TransformersBackend(bpe_generator)
    row = backend.tokenized(prompt)
    assert row.prefix == prompt.prefix and len(row.prefix_ids) == len(own) - 1
    assert row.prefix_ids + row.rest_ids == whole
    sampling = Sampling(max_new_tokens=6, stop_at_newline=False)
    plain = TransformersBackend(bpe_generator, reuse_prefix=False)
    assert texts(backend, prompts_for(), sampling, 3) == texts(plain, prompts_for(), sampling, 3)
