"""The CTranslate2 backend on the tiny random Llama, against the transformers backend on the same weights."""

import copy
from pathlib import Path

import pytest

pytest.importorskip("ctranslate2", reason='the ctranslate2 extra is not installed (pip install -e ".[ctranslate2]")')

from augir.augmentation.augment import PromptBuilder, choose_passages, plan_jobs  # noqa: E402
from augir.augmentation.backends import Sampling, make_backend  # noqa: E402
from augir.augmentation.backends.ctranslate2_backend import CTranslate2Backend  # noqa: E402
from augir.augmentation.backends.transformers_backend import TransformersBackend  # noqa: E402
from augir.weights_cache import CACHE_ENV  # noqa: E402
from augir.params import AugmentParams, RuntimeParams  # noqa: E402


@pytest.fixture(scope="module")
def generator_dir(tmp_path_factory, tiny_generator) -> Path:
    folder = tmp_path_factory.mktemp("generator") / "tiny-llama"
    tiny_generator.model.save_pretrained(folder)
    tokenizer = copy.deepcopy(tiny_generator.tokenizer)
    tokenizer.bos_token = "<eos>"  # CTranslate2's converter needs one; the model's config says bos is eos (id 2)
    tokenizer.save_pretrained(folder)
    return folder


@pytest.fixture(scope="module")
def cache_dir(tmp_path_factory) -> Path:
    return tmp_path_factory.mktemp("weights-cache")


@pytest.fixture
def in_cache(cache_dir, monkeypatch):
    monkeypatch.setenv(CACHE_ENV, str(cache_dir))
    return cache_dir


@pytest.fixture
def prompts(tiny_dataset):
    params = AugmentParams(dataset="tiny", generator="tiny-llama", num_passages=6, num_examples=2, seed=3,
                           strategy="diverse")
    jobs = plan_jobs(choose_passages(tiny_dataset, 6, params.seed), params)
    builder = PromptBuilder(tiny_dataset, params)
    return [builder.prompt(job) for job in jobs]


def _texts(backend, prompts, batch_size, sampling, seeds=None):
    seeds = seeds or list(range(len(prompts)))
    out = []
    for start in range(0, len(prompts), batch_size):
        out += backend.complete(prompts[start : start + batch_size], seeds[start : start + batch_size], sampling)
    return out


@pytest.mark.parametrize("batch_size", [1, 2, 5])
@pytest.mark.parametrize("reuse_prefix", [True, False])
def test_float32_greedy_queries_equal_the_transformers_backend(generator_dir, in_cache, tiny_generator, prompts,
                                                               batch_size, reuse_prefix):
    sampling = Sampling(max_new_tokens=6)
    expected = _texts(TransformersBackend(tiny_generator), prompts, 3, sampling)
    backend = CTranslate2Backend.load(str(generator_dir), reuse_prefix=reuse_prefix)
    got = _texts(backend, prompts, batch_size, sampling)
    assert [c.text for c in got] == [c.text for c in expected]
    assert [c.new_tokens for c in got] == [c.new_tokens for c in expected]
    assert [c.prompt_tokens for c in got] == [c.prompt_tokens for c in expected]
    if reuse_prefix:  # every prompt of the tiny corpus shares its strategy's prefix
        assert all(0 < c.cached_prompt_tokens < c.prompt_tokens for c in got)
    else:
        assert all(c.cached_prompt_tokens == 0 for c in got)


def test_the_model_is_converted_once_and_kept(generator_dir, in_cache):
    CTranslate2Backend.load(str(generator_dir))
    [entry] = (in_cache / "ctranslate2").iterdir()
    stamp = (entry / "model.bin").stat().st_mtime_ns
    CTranslate2Backend.load(str(generator_dir), compute_type="int8")  # one conversion serves every compute type
    assert [p.name for p in (in_cache / "ctranslate2").iterdir()] == [entry.name]
    assert (entry / "model.bin").stat().st_mtime_ns == stamp


def test_sampling_is_refused_in_params_and_in_the_backend(generator_dir, in_cache, prompts):
    from pydantic import ValidationError

    from augir.errors import AugirError

    with pytest.raises(ValidationError, match="augment.backend ctranslate2 decodes greedily only"):
        AugmentParams(dataset="tiny", backend="ctranslate2", temperature=0.7)
    backend = CTranslate2Backend.load(str(generator_dir))
    with pytest.raises(AugirError, match="greedily only"):
        backend.complete(prompts[:2], [0, 1], Sampling(temperature=1.0, max_new_tokens=6))


def test_int8_runs_through_make_backend_and_stays_within_the_token_budget(generator_dir, in_cache, prompts):
    params = AugmentParams(dataset="tiny", generator=str(generator_dir), backend="ctranslate2",
                           ctranslate2={"compute_type": "int8"})
    backend = make_backend(params, RuntimeParams(threads=1))
    assert isinstance(backend, CTranslate2Backend)
    completions = _texts(backend, prompts, 3, Sampling(max_new_tokens=4))
    assert len(completions) == len(prompts) and all(0 < c.new_tokens <= 4 for c in completions)


def test_a_cache_that_is_off_is_a_one_line_error(generator_dir, monkeypatch):
    from augir.errors import AugirError

    monkeypatch.setenv(CACHE_ENV, "off")
    with pytest.raises(AugirError, match=f"set {CACHE_ENV} to a writable folder"):
        CTranslate2Backend.load(str(generator_dir))


def test_a_cache_that_cannot_be_written_is_a_one_line_error(generator_dir, tmp_path, monkeypatch):
    from augir.errors import AugirError

    not_a_folder = tmp_path / "cache"
    not_a_folder.write_text("")
    monkeypatch.setenv(CACHE_ENV, str(not_a_folder))
    with pytest.warns(UserWarning, match=f"^{CACHE_ENV}: could not keep the ctranslate2 conversion"):
        with pytest.raises(AugirError, match=f"could not keep its converted model .* set {CACHE_ENV} to a writable"):
            CTranslate2Backend.load(str(generator_dir))
