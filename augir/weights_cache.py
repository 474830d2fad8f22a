"""Converted weights, kept on disk so that only the first load pays for the conversion.

transformers de-quantizes a GGUF file at every load (SmolLM2-135M: about 26 s here, Gemma 3 270M: about 74 s);
the float32 model it makes loads from a saved folder in under a second. The folder is content-addressed: its
name is a hash of the GGUF file's bytes and of the versions of the libraries that convert it, so a new model file
or a new transformers gets a new folder and an old one is never read by mistake. It lives outside the repository
(`AUGIR_CACHE_DIR`, else `$XDG_CACHE_HOME/augir`, else `~/.cache/augir`; `AUGIR_CACHE_DIR=off` turns it off)
and is a speed knob only: the weights are the same tensors, bit for bit (tests/test_weights_cache.py).

The same cache keeps the other conversions augir makes at load time, each under a folder named by a hash of what
it converts and of the converting libraries' versions: CTranslate2 models (augment.backend ctranslate2), and the
retriever exported to ONNX or OpenVINO for `encode.backend` (`cached_conversion`, keyed by `module_digest`).
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import warnings
from collections.abc import Callable
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path
from typing import Any

from augir.errors import first_line

CACHE_ENV = "AUGIR_CACHE_DIR"
SOURCE_FILE = "source.json"  # written last: a folder without it is incomplete, never read
GGUF_CONVERTERS = ("transformers", "gguf", "torch")  # the libraries whose versions are part of a GGUF key

# Loads a GGUF file as (model, tokenizer); the cache saves what it returns.
GgufLoader = Callable[[Path], tuple[Any, Any]]


def cache_root() -> Path | None:
    """Where converted weights are kept, or None when the cache is off."""
    value = os.environ.get(CACHE_ENV)
    if value is not None and value.strip().lower() in {"", "0", "off", "false", "none"}:
        return None
    if value:
        return Path(value).expanduser()
    base = os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache"
    return Path(base) / "augir"


def library_versions(names: tuple[str, ...]) -> dict[str, str | None]:
    found: dict[str, str | None] = {}
    for name in names:
        try:
            found[name] = version(name)
        except PackageNotFoundError:
            found[name] = None
    return found


def _file_sha256(path: Path) -> Any:
    digest = hashlib.sha256()  # hashlib.file_digest is Python 3.11+; augir supports 3.10
    with path.open("rb") as stream:
        for block in iter(lambda: stream.read(1 << 20), b""):
            digest.update(block)
    return digest


def conversion_key(gguf_file: Path) -> str:
    """A hash of the file's bytes and of the converting libraries' versions."""
    digest = _file_sha256(gguf_file)
    digest.update(json.dumps(library_versions(GGUF_CONVERTERS), sort_keys=True).encode())
    return digest.hexdigest()[:32]


def folder_digest(folder: Path) -> str:
    """A hash of every file's name and bytes under `folder` (a model folder: its key in the cache)."""
    digest = hashlib.sha256()
    for path in sorted(p for p in folder.rglob("*") if p.is_file()):
        digest.update(str(path.relative_to(folder)).encode() + b"\0")
        digest.update(_file_sha256(path).digest())
    return digest.hexdigest()


def module_digest(model: Any) -> str:
    """A hash of a torch module's config and of every tensor of its state: names, dtypes, shapes and bytes."""
    import torch

    digest = hashlib.sha256()
    config = getattr(model, "config", None)
    if config is not None:
        settings = {k: v for k, v in config.to_dict().items() if k != "_name_or_path"}  # content, not where it was read
        digest.update(json.dumps(settings, sort_keys=True, default=str).encode())
    for name, tensor in sorted(model.state_dict().items()):
        digest.update(f"{name}\0{tensor.dtype}\0{tuple(tensor.shape)}\0".encode())
        digest.update(tensor.detach().cpu().contiguous().reshape(-1).view(torch.uint8).numpy().tobytes())
    return digest.hexdigest()


def cached_conversion(kind: str, key_parts: dict[str, Any], write: Callable[[Path], None]) -> Path | None:
    """The folder `kind/<hash of key_parts>` in the cache, made by `write(folder)` on the first call, or None when
    the cache is off or cannot be written (a warning says why): then the caller converts into a folder of its own."""
    root = cache_root()
    if root is None:
        return None
    key = hashlib.sha256(json.dumps(key_parts, sort_keys=True).encode()).hexdigest()[:32]
    target = root / kind / key
    if (target / SOURCE_FILE).is_file():
        return target
    try:
        keep(target, write, key_parts)
    except OSError as error:
        warnings.warn(f"{CACHE_ENV}: could not keep the {kind} conversion under {target.parent} "
                      f"({first_line(error)}); the next load converts it again", stacklevel=2)
        return None
    return target


def keep(target: Path, write: Callable[[Path], None], record: dict[str, Any]) -> None:
    """Make the cache entry `target` with `write(folder)`, whole or not at all: written beside it, then renamed."""
    target.parent.mkdir(parents=True, exist_ok=True)
    partial = target.with_name(f".{target.name}.tmp-{os.getpid()}")
    shutil.rmtree(partial, ignore_errors=True)
    try:
        write(partial)
        (partial / SOURCE_FILE).write_text(json.dumps(record, indent=2) + "\n")
        if target.exists() and not (target / SOURCE_FILE).is_file():  # damaged (copies are renamed whole): replace
            shutil.rmtree(target)
        try:
            partial.rename(target)
        except OSError:
            if not (target / SOURCE_FILE).is_file():  # not another process's finished copy: a real failure
                raise
    finally:
        shutil.rmtree(partial, ignore_errors=True)


def _save_converted(model: Any, tokenizer: Any, partial: Path) -> None:
    # The GGUF loader leaves a quantizer on the de-quantized model, which makes save_pretrained refuse.
    model.hf_quantizer = None
    if hasattr(model.config, "quantization_config"):
        del model.config.quantization_config
    model.save_pretrained(partial)
    tokenizer.save_pretrained(partial)


def converted_weights(gguf_file: Path, load_gguf: GgufLoader) -> tuple[Path | None, Any, Any]:
    """(folder, model, tokenizer): the converted folder when the cache has it (model and tokenizer None: load the
    folder), else the GGUF loaded by `load_gguf` and saved into the cache for next time (folder None when the
    cache is off or could not be written; a warning says why, and the model loaded is used as it is)."""
    root = cache_root()
    if root is None:
        return (None, *load_gguf(gguf_file))
    target = root / "converted" / conversion_key(gguf_file)  # hashes the whole file: once per load
    if (target / SOURCE_FILE).is_file():
        return target, None, None
    model, tokenizer = load_gguf(gguf_file)
    try:
        keep(target, lambda partial: _save_converted(model, tokenizer, partial),
             {"gguf_file": str(gguf_file), "size": gguf_file.stat().st_size,
              "versions": library_versions(GGUF_CONVERTERS)})
    except OSError as error:
        warnings.warn(f"{CACHE_ENV}: could not keep the converted {gguf_file.name} under {target.parent} "
                      f"({first_line(error)}); the next load converts it again", stacklevel=2)
        return None, model, tokenizer
    return target, model, tokenizer
