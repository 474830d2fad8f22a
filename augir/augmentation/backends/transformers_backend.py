"""Generation with transformers: CPU or one GPU, batched with left padding, greedy or seeded sampling.

Sampling is seeded per prompt, not per batch: each row draws Gumbel noise from its own generator, and
argmax(logits / T + Gumbel) is an exact sample from softmax(logits / T). A passage therefore gets the same
query whatever else is in its batch, which keeps small runs equal to the start of larger ones.
"""

from __future__ import annotations

from typing import Any

from augir.augmentation.backends.base import Completion, Sampling
from augir.augmentation.generators import Generator, load_generator
from augir.augmentation.prompts import Prompt


class SeededGumbelSampler:
    """A logits processor that turns greedy search into sampling with one random generator per row."""

    def __init__(self, seeds: list[int], temperature: float, top_p: float) -> None:
        import torch

        self.generators = [torch.Generator().manual_seed(seed) for seed in seeds]
        self.temperature = temperature
        self.top_p = top_p

    def __call__(self, input_ids: Any, scores: Any) -> Any:
        import torch

        scores = scores.float() / self.temperature
        if self.top_p < 1.0:
            scores = _top_p_filtered(scores, self.top_p)
        noise = torch.stack(
            [torch.rand(scores.shape[1], generator=generator) for generator in self.generators]
        ).clamp_(min=1e-20, max=1.0 - 1e-7)
        return scores - torch.log(-torch.log(noise)).to(scores.device)


def _top_p_filtered(scores: Any, top_p: float) -> Any:
    import torch

    sorted_scores, order = torch.sort(scores, descending=True, dim=-1)
    cumulative = torch.softmax(sorted_scores, dim=-1).cumsum(dim=-1)
    remove = cumulative - torch.softmax(sorted_scores, dim=-1) >= top_p  # keep the token that crosses top_p
    sorted_scores = sorted_scores.masked_fill(remove, float("-inf"))
    return torch.empty_like(scores).scatter_(-1, order, sorted_scores)


class TransformersBackend:
    name = "transformers"

    def __init__(self, generator: Generator) -> None:
        self.generator = generator

    @classmethod
    def load(cls, name: str, device: str | None = None) -> TransformersBackend:
        return cls(load_generator(name, device))

    def render(self, prompt: Prompt) -> str:
        if prompt.messages is None:
            return prompt.text or ""
        from augir.augmentation.backends.base import chat_messages

        return self.generator.tokenizer.apply_chat_template(
            chat_messages(prompt), tokenize=False, add_generation_prompt=True
        )

    def complete(self, prompts: list[Prompt], seeds: list[int], sampling: Sampling) -> list[Completion]:
        import torch
        from transformers import LogitsProcessorList

        tokenizer, model = self.generator.tokenizer, self.generator.model
        encoded = tokenizer([self.render(p) for p in prompts], return_tensors="pt", padding=True).to(model.device)
        options: dict[str, Any] = {}
        if sampling.temperature > 0:
            options["logits_processor"] = LogitsProcessorList(
                [SeededGumbelSampler(seeds, sampling.temperature, sampling.top_p)]
            )
        stop = self.generator.stop_token_ids if sampling.stop_at_newline else [tokenizer.eos_token_id]
        with torch.inference_mode():
            output = model.generate(
                **encoded,
                max_new_tokens=sampling.max_new_tokens,
                do_sample=False,  # sampling, when asked for, is done by the seeded processor above
                pad_token_id=tokenizer.pad_token_id,
                eos_token_id=stop,
                **options,
            )
        new_tokens = output[:, encoded["input_ids"].shape[1] :]
        texts = tokenizer.batch_decode(new_tokens, skip_special_tokens=True)
        counts = (new_tokens != tokenizer.pad_token_id).sum(dim=1).tolist()
        return [Completion(text, int(count)) for text, count in zip(texts, counts)]
