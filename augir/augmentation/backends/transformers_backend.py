"""Generation with transformers: CPU or one GPU, batched, greedy or seeded sampling, the shared prefix computed once.

Every completion prompt of a strategy starts with the same instruction and few-shot block (`Prompt.prefix`, about
three quarters of its tokens). The backend runs the model over that prefix once, keeps its key/value cache, and for
each batch reads only the passages: rows are laid out as [prefix][padding][passage] with the padding masked, so
positions and attention are those of the whole prompt. Reuse happens only where the prefix's token ids are exactly
the first ids of the whole prompt (tokenizers may merge across the boundary); other prompts go the plain way.
A call's prompts are read in chunks of similar length and decoded as one pool that drops rows as they stop
(`pooled_decoding`): the tokens are those of `model.generate` on the same rows.

Sampling is seeded per prompt, not per batch: each row draws Gumbel noise from its own generator, and
argmax(logits / T + Gumbel) is an exact sample from softmax(logits / T). A passage therefore gets the same
query whatever else is in its batch, which keeps small runs equal to the start of larger ones.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from augir.augmentation.backends.base import Completion, Sampling
from augir.augmentation.generators import Generator, load_generator
from augir.augmentation.prompts import Prompt


class SeededGumbelSampler:
    """Chooses each row's next token by sampling, with one random generator per row (`rows`: the live rows)."""

    def __init__(self, seeds: list[int], temperature: float, top_p: float) -> None:
        import torch

        self.generators = [torch.Generator().manual_seed(seed) for seed in seeds]
        self.temperature = temperature
        self.top_p = top_p

    def __call__(self, logits: Any, rows: Any) -> Any:
        import torch

        scores = logits.float() / self.temperature
        if self.top_p < 1.0:
            scores = _top_p_filtered(scores, self.top_p)
        noise = torch.stack(
            [torch.rand(scores.shape[1], generator=self.generators[row]) for row in rows.tolist()]
        ).clamp_(min=1e-20, max=1.0 - 1e-7)
        return (scores - torch.log(-torch.log(noise)).to(scores.device)).argmax(-1)


def _top_p_filtered(scores: Any, top_p: float) -> Any:
    import torch

    sorted_scores, order = torch.sort(scores, descending=True, dim=-1)
    cumulative = torch.softmax(sorted_scores, dim=-1).cumsum(dim=-1)
    remove = cumulative - torch.softmax(sorted_scores, dim=-1) >= top_p  # keep the token that crosses top_p
    sorted_scores = sorted_scores.masked_fill(remove, float("-inf"))
    return torch.empty_like(scores).scatter_(-1, order, sorted_scores)


@dataclass
class SharedPrefix:
    ids: list[int]
    cache: Any  # a transformers DynamicCache over `ids`, batch of one; copied per batch, never extended


@dataclass(frozen=True)
class Tokenized:
    prefix: str | None  # the shared prefix reused for this prompt, None: the whole prompt is computed
    prefix_ids: list[int]
    rest_ids: list[int]  # prefix_ids + rest_ids are the whole prompt's ids


class PrefixSplit:
    """Renders prompts and splits completion prompts after their shared prefix: the base of the backends that
    compute the prefix once (transformers, CTranslate2), so that both split every prompt at the same token.

    Byte-level BPE tokenizes the prefix's closing blank line ("\n\n") as one token alone but as two before
    "Document:", so the shared ids are those the prefix's own ids have in common with a whole prompt's (every
    prompt continues the prefix with the same "Document:"): the boundary falls where both tokenizations agree.
    """

    def __init__(self, generator: Generator, reuse_prefix: bool = True) -> None:
        self.generator = generator
        self.reuse_prefix = reuse_prefix
        self.prefix_ids: dict[str, list[int]] = {}  # prefix text -> its shared ids, computed on first use

    def render(self, prompt: Prompt) -> str:
        if prompt.messages is None:
            return prompt.text or ""
        from augir.augmentation.backends.base import chat_messages

        return self.generator.tokenizer.apply_chat_template(
            chat_messages(prompt), tokenize=False, add_generation_prompt=True
        )

    def tokenized(self, prompt: Prompt) -> Tokenized:
        """The prompt's ids, split after its shared prefix where the prefix's ids start the whole prompt's."""
        tokenizer = self.generator.tokenizer
        whole = tokenizer(self.render(prompt))["input_ids"]
        if self.reuse_prefix and prompt.messages is None and prompt.prefix:
            if prompt.prefix not in self.prefix_ids:
                own = tokenizer(prompt.prefix)["input_ids"]
                common = next((i for i, (a, b) in enumerate(zip(own, whole)) if a != b), min(len(own), len(whole)))
                self.prefix_ids[prompt.prefix] = own[:common]
            prefix_ids = self.prefix_ids[prompt.prefix]
            if 0 < len(prefix_ids) < len(whole) and whole[: len(prefix_ids)] == prefix_ids:
                return Tokenized(prompt.prefix, prefix_ids, whole[len(prefix_ids) :])
        return Tokenized(None, [], whole)


class TransformersBackend(PrefixSplit):
    name = "transformers"

    def __init__(self, generator: Generator, reuse_prefix: bool = True, prefill_tokens: int = 1024) -> None:
        super().__init__(generator, reuse_prefix)
        self.prefill_tokens = prefill_tokens
        self.prefixes: dict[str, SharedPrefix] = {}

    @classmethod
    def load(cls, name: str, device: str | None = None, reuse_prefix: bool = True,
             prefill_tokens: int = 1024) -> TransformersBackend:
        return cls(load_generator(name, device), reuse_prefix=reuse_prefix, prefill_tokens=prefill_tokens)

    def _prefix(self, text: str) -> SharedPrefix:
        """The prefix's key/value cache over its shared ids (`PrefixSplit.tokenized`), computed on first use."""
        if text not in self.prefixes:
            import torch
            from transformers import DynamicCache

            ids = self.prefix_ids[text]
            model = self.generator.model
            with torch.inference_mode():
                output = model(
                    input_ids=torch.tensor([ids], device=model.device),
                    cache=DynamicCache(config=model.config),
                    use_cache=True,
                )
            self.prefixes[text] = SharedPrefix(ids=ids, cache=output.cache)
        return self.prefixes[text]

    def complete(self, prompts: list[Prompt], seeds: list[int], sampling: Sampling) -> list[Completion]:
        rows = [self.tokenized(prompt) for prompt in prompts]
        groups: dict[str | None, list[int]] = {}
        for index, row in enumerate(rows):
            groups.setdefault(row.prefix, []).append(index)
        completions: list[Completion | None] = [None] * len(prompts)
        for prefix, indices in groups.items():
            shared = self._prefix(prefix) if prefix is not None else None
            done = self._generate([rows[i].rest_ids for i in indices], shared, [seeds[i] for i in indices], sampling)
            for index, completion in zip(indices, done):
                completions[index] = completion
        return [c for c in completions if c is not None]

    def _generate(
        self, rests: list[list[int]], shared: SharedPrefix | None, seeds: list[int], sampling: Sampling
    ) -> list[Completion]:
        """Rows sharing one prefix (or none): prefilled in chunks of similar length, decoded as one pool."""
        import torch

        from augir.augmentation.backends.pooled_decoding import decode, pool, poolable, prefill

        tokenizer, model = self.generator.tokenizer, self.generator.model
        prefix_ids = shared.ids if shared is not None else []
        order = sorted(range(len(rests)), key=lambda i: len(rests[i]))
        budget = self.prefill_tokens if poolable(model) else len(rests) * max(len(rest) for rest in rests)
        chunks = prefill_chunks([len(rests[i]) for i in order], budget)
        with torch.inference_mode():
            prefilled = [
                prefill(model, [rests[i] for i in order[start:end]], prefix_ids,
                        shared.cache if shared is not None else None, tokenizer.pad_token_id)
                for start, end in chunks
            ]
            cache, mask, logits = pool(prefilled, room=sampling.max_new_tokens)
            choose = (SeededGumbelSampler([seeds[i] for i in order], sampling.temperature, sampling.top_p)
                      if sampling.temperature > 0 else greedy)
            stop = self.generator.stop_token_ids if sampling.stop_at_newline else [tokenizer.eos_token_id]
            tokens = decode(model, cache, mask, logits, sampling.max_new_tokens, stop, choose)
        row_of = {index: row for row, index in enumerate(order)}  # a prompt's row in the pool
        return [
            Completion(
                tokenizer.decode(tokens[row_of[index]], skip_special_tokens=True),
                sum(token != tokenizer.pad_token_id for token in tokens[row_of[index]]),
                prompt_tokens=len(prefix_ids) + len(rests[index]),
                cached_prompt_tokens=len(prefix_ids),
            )
            for index in range(len(rests))
        ]


def greedy(logits: Any, rows: Any) -> Any:
    return logits.argmax(-1)


def prefill_chunks(lengths: list[int], budget: int) -> list[tuple[int, int]]:
    """(start, end) of consecutive rows, ordered by length, read together: as many as fit `budget` tokens, padding
    included (at least one)."""
    chunks: list[tuple[int, int]] = []
    start = 0
    for end in range(1, len(lengths) + 1):
        if end - start > 1 and (end - start) * max(lengths[start:end]) > budget:
            chunks.append((start, end - 1))
            start = end - 1
    return chunks + [(start, len(lengths))] if lengths else chunks
