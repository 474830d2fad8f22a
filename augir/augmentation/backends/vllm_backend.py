"""In-process vLLM for GPU machines (the optional `gpu` extra). vLLM is imported only when this backend is used.

Written against vLLM's offline API (`vllm.LLM`, `vllm.SamplingParams`): one `SamplingParams` per prompt
carries that prompt's seed, so sampling is seeded per passage as with the transformers backend. It cannot run on
CPU-only machines; `sampling_params_for` and `completions_from` are plain functions tested without a GPU.
"""

from __future__ import annotations

from typing import Any

from augir.augmentation.backends.base import Completion, Sampling, chat_messages
from augir.augmentation.prompts import Prompt
from augir.errors import AugirError


def sampling_params_for(sampling: Sampling, seed: int) -> dict[str, Any]:
    """Keyword arguments of `vllm.SamplingParams` for one prompt."""
    return {
        "temperature": sampling.temperature,
        "top_p": sampling.top_p,
        "max_tokens": sampling.max_new_tokens,
        "seed": seed,
        "stop": ["\n"] if sampling.stop_at_newline else None,
    }


def completions_from(outputs: list[Any]) -> list[Completion]:
    """`vllm.RequestOutput`s (same order as the prompts) to completions."""
    completions = []
    for output in outputs:
        first = output.outputs[0]
        completions.append(Completion(text=first.text, new_tokens=len(first.token_ids)))
    return completions


class VllmBackend:
    name = "vllm"

    def __init__(self, llm: Any) -> None:
        self.llm = llm

    @classmethod
    def load(cls, model: str, *, tensor_parallel_size: int, data_parallel_size: int,
             gpu_memory_utilization: float, dtype: str, seed: int, enable_prefix_caching: bool = True) -> VllmBackend:
        try:
            from vllm import LLM
        except ImportError as error:
            raise AugirError('augment.backend: vllm is not installed; pip install -e ".[gpu]" on a GPU machine') from error
        llm = LLM(
            model=model,
            tensor_parallel_size=tensor_parallel_size,
            data_parallel_size=data_parallel_size,
            gpu_memory_utilization=gpu_memory_utilization,
            # the few-shot prefix every prompt of a strategy shares is computed once; prompts stay in passage order
            enable_prefix_caching=enable_prefix_caching,
            dtype=dtype,
            seed=seed,
        )
        return cls(llm)

    def render(self, prompt: Prompt) -> str:
        if prompt.messages is None:
            return prompt.text or ""
        return self.llm.get_tokenizer().apply_chat_template(
            chat_messages(prompt), tokenize=False, add_generation_prompt=True
        )

    def complete(self, prompts: list[Prompt], seeds: list[int], sampling: Sampling) -> list[Completion]:
        from vllm import SamplingParams

        params = [SamplingParams(**sampling_params_for(sampling, seed)) for seed in seeds]
        outputs = self.llm.generate([self.render(p) for p in prompts], params, use_tqdm=False)
        return completions_from(outputs)
