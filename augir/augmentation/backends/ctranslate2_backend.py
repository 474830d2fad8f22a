"""Generation with CTranslate2 (`augment.backend: ctranslate2`, extra "ctranslate2"): a C++ engine for CPUs and
CUDA, from a wheel, with the shared prefix as its cached static prompt.

The generator is converted once from its transformers folder (a built-in GGUF's converted copy, a local folder, a
hub snapshot) into CTranslate2's format, kept in augir's weights cache under a hash of the folder's bytes and
CTranslate2's version. `augment.ctranslate2.compute_type` chooses the arithmetic at load time (float32: the same
model as transformers'; int8 and the like quantize the weights when loading, and change queries: an augment param).
Prompts are tokenized by the model's own tokenizer, split after the shared prefix exactly as the transformers
backend splits them (both are `PrefixSplit`s), and each group of prompts with one prefix is one `generate_batch` with
that prefix as `static_prompt`, whose model state CTranslate2 computes once and keeps.

Greedy only, batched: CTranslate2's random generator lives in its worker threads, and `set_random_seed` before a
call did not make a passage's draw the same across batches (tried), so seeded sampling per passage, which
augir's resumable shards need, is refused (augment.temperature > 0 is a params error with this backend).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from augir.augmentation.backends.base import Completion, Sampling
from augir.augmentation.backends.transformers_backend import PrefixSplit
from augir.augmentation.generators import Generator, transformers_folder
from augir.augmentation.prompts import Prompt
from augir.errors import AugirError

CTRANSLATE2_LIBRARIES = ("ctranslate2", "transformers")


def converted_model(folder: Path) -> Path:
    """The CTranslate2 copy of a transformers model folder, converted on first use and kept in the weights cache."""
    from augir.weights_cache import CACHE_ENV, cache_root, cached_conversion, folder_digest, library_versions

    try:
        from ctranslate2.converters import TransformersConverter
    except ImportError as error:
        raise AugirError('augment.backend: ctranslate2 needs its extra: pip install -e ".[ctranslate2]"') from error
    if cache_root() is None:
        raise AugirError(f"augment.backend: ctranslate2 keeps its converted model in the weights cache, which is off: "
                         f"set {CACHE_ENV} to a writable folder")

    def convert(partial: Path) -> None:
        # float32 weights: compute_type quantizes at load, so one conversion serves every compute type
        TransformersConverter(str(folder), low_cpu_mem_usage=True).convert(str(partial), force=True)

    key = {"source": folder_digest(folder), "versions": library_versions(CTRANSLATE2_LIBRARIES)}
    target = cached_conversion("ctranslate2", key, convert)
    if target is None:  # cached_conversion has warned why
        raise AugirError(f"augment.backend: ctranslate2 could not keep its converted model in the weights cache: "
                         f"set {CACHE_ENV} to a writable folder")
    return target


class CTranslate2Backend(PrefixSplit):
    name = "ctranslate2"

    def __init__(self, engine: Any, generator: Generator, reuse_prefix: bool = True) -> None:
        super().__init__(generator, reuse_prefix)  # the generator's tokenizer and stop tokens; no torch model
        self.engine = engine  # a ctranslate2.Generator

    @classmethod
    def load(cls, name: str, compute_type: str = "float32", device: str = "cpu", threads: int | None = None,
             reuse_prefix: bool = True) -> CTranslate2Backend:
        import ctranslate2
        from transformers import AutoTokenizer

        folder = transformers_folder(name)
        model = converted_model(folder)
        try:
            engine = ctranslate2.Generator(str(model), device=device, compute_type=compute_type,
                                           intra_threads=threads or 0)
        except (RuntimeError, ValueError) as error:
            raise AugirError(f"augment.ctranslate2: cannot run {name!r} with compute_type {compute_type!r} on "
                             f"{device!r} ({error})") from error
        tokenizer = AutoTokenizer.from_pretrained(str(folder))
        if tokenizer.pad_token is None:
            tokenizer.pad_token = tokenizer.eos_token
        return cls(engine, Generator(name=name, model=None, tokenizer=tokenizer, weights="ctranslate2"), reuse_prefix)

    def complete(self, prompts: list[Prompt], seeds: list[int], sampling: Sampling) -> list[Completion]:
        rows = [self.tokenized(prompt) for prompt in prompts]
        groups: dict[str | None, list[int]] = {}
        for index, row in enumerate(rows):
            groups.setdefault(row.prefix, []).append(index)
        completions: list[Completion | None] = [None] * len(prompts)
        for indices in groups.values():
            prefix_ids = rows[indices[0]].prefix_ids
            done = self._generate(prefix_ids, [rows[i].rest_ids for i in indices], sampling)
            for index, completion in zip(indices, done):
                completions[index] = completion
        return [c for c in completions if c is not None]

    def _generate(self, prefix: list[int], rests: list[list[int]], sampling: Sampling) -> list[Completion]:
        if sampling.temperature > 0:
            raise AugirError("augment.backend ctranslate2 decodes greedily only (augment.temperature: 0)")
        tokenizer = self.generator.tokenizer
        stop = self.generator.stop_token_ids if sampling.stop_at_newline else [tokenizer.eos_token_id]
        options: dict[str, Any] = dict(max_length=sampling.max_new_tokens, end_token=stop, return_end_token=True,
                                       include_prompt_in_result=False)
        if prefix:
            options["static_prompt"] = tokenizer.convert_ids_to_tokens(prefix)
        tokens = [tokenizer.convert_ids_to_tokens(rest) for rest in rests]
        results = self.engine.generate_batch(tokens, sampling_topk=1, **options)
        completions = []
        for result, rest in zip(results, rests):
            ids = result.sequences_ids[0]
            # counted as the transformers backend counts: every new token but the padding (SmolLM2's pad is its eos)
            new_tokens = sum(token != tokenizer.pad_token_id for token in ids)
            completions.append(Completion(tokenizer.decode(ids, skip_special_tokens=True), new_tokens,
                                          prompt_tokens=len(prefix) + len(rest), cached_prompt_tokens=len(prefix)))
        return completions
