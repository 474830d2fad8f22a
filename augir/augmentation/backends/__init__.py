"""Generation backends by name: `transformers` (default), `ctranslate2` (CPU or CUDA, optional), `vllm` (GPU,
optional), `openai` (any compatible server)."""

from __future__ import annotations

from augir.augmentation.backends.base import Backend, Completion, Sampling
from augir.params import AugmentParams, RuntimeParams

__all__ = ["Backend", "Completion", "Sampling", "make_backend"]


def make_backend(params: AugmentParams, runtime: RuntimeParams | None = None) -> Backend:
    """The backend `params` names, with the speed knobs of `runtime` (defaults when None)."""
    runtime = runtime or RuntimeParams()
    if params.backend == "vllm":
        from augir.augmentation.backends.vllm_backend import VllmBackend

        options = runtime.vllm
        return VllmBackend.load(
            params.generator,
            tensor_parallel_size=options.tensor_parallel_size,
            data_parallel_size=options.data_parallel_size,
            gpu_memory_utilization=options.gpu_memory_utilization,
            enable_prefix_caching=options.enable_prefix_caching,
            dtype=params.vllm.dtype,
            seed=params.seed,
        )
    if params.backend == "openai":
        from augir.augmentation.backends.openai_backend import OpenAIBackend

        options = params.openai
        return OpenAIBackend(
            base_url=options.base_url,
            model=options.model or params.generator,
            api_key_env=options.api_key_env,
            concurrency=runtime.openai.concurrency,
            cache_prompt=runtime.openai.cache_prompt,
            timeout_s=options.timeout_s,
            max_retries=options.max_retries,
        )
    if params.backend == "ctranslate2":
        from augir.augmentation.backends.ctranslate2_backend import CTranslate2Backend

        return CTranslate2Backend.load(params.generator, compute_type=params.ctranslate2.compute_type,
                                       device=params.ctranslate2.device, threads=runtime.threads,
                                       reuse_prefix=runtime.prefix_cache)
    from augir.augmentation.backends.transformers_backend import TransformersBackend

    if runtime.threads is not None:
        import torch

        torch.set_num_threads(runtime.threads)
    return TransformersBackend.load(params.generator, reuse_prefix=runtime.prefix_cache,
                                    prefill_tokens=runtime.prefill_tokens)
