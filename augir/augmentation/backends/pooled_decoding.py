"""Decoding a pool of prompts together, dropping each row from the batch when it stops.

`model.generate` keeps every row of a batch until the longest has stopped, and decodes only the rows it read
together. Queries are short (8.3 new tokens on average over the default run's 200 passages, 24 at most), so most
of a batch's decoding steps ran for rows that were done, and each step read all the weights for a batch's rows
only. Here reading and decoding are apart:

- **prefill** reads the prompts in small chunks of similar length (little padding), each chunk laid out as
  [prefix][padding][rest] over a copy of the shared prefix's key/value cache (no prefix: left padding);
- **pool** puts the chunks' caches side by side, widening each chunk's padding to the widest chunk: keys carry their
  rotary positions, so a masked gap changes no score;
- **decode** steps the whole pool one token at a time and removes the rows that produced a stop token. The cache
  keeps room for the new tokens, so a step writes in place instead of copying the whole cache (DynamicLayer
  concatenates).

Models with sliding-window layers (Gemma 3, Mistral) keep only a window of keys there, so their rows cannot be
widened: they are prefilled as one chunk and decoded in their own cache (`poolable`).

Inputs, positions and masks are those `model.generate` builds for the same rows, and greedy choice is the same
argmax over float32 logits, so the tokens are the same (tests compare the two on a tiny model; the benchmark on the
default run's prompts).
"""

from __future__ import annotations

import copy
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from transformers import DynamicCache
from transformers.cache_utils import DynamicLayer

# Chooses the next token of each live row from its float32 logits; `rows` are the live rows' indices in the pool.
Chooser = Callable[[Any, Any], Any]


class RoomyLayer(DynamicLayer):
    """A DynamicLayer whose keys and values are views of buffers with room for `room` more tokens."""

    def __init__(self, keys: Any, values: Any, used: int) -> None:
        super().__init__()
        self.buffers = (keys, values)
        self.keys, self.values = keys[:, :, :used], values[:, :, :used]
        self.is_initialized, self.device = True, keys.device

    def update(self, key_states: Any, value_states: Any, *args: Any, **kwargs: Any) -> tuple[Any, Any]:
        used, new = self.keys.shape[-2], key_states.shape[-2]
        keys, values = self.buffers
        if used + new > keys.shape[-2]:
            raise ValueError(f"the decoding cache has room for {keys.shape[-2] - used} more tokens, not {new}")
        keys[:, :, used : used + new] = key_states
        values[:, :, used : used + new] = value_states
        self.keys, self.values = keys[:, :, : used + new], values[:, :, : used + new]
        return self.keys, self.values

    def batch_select_indices(self, indices: Any) -> None:
        used = self.keys.shape[-2]
        self.buffers = (self.buffers[0][indices], self.buffers[1][indices])
        self.keys, self.values = self.buffers[0][:, :, :used], self.buffers[1][:, :, :used]


def keeps_all_keys(cache: Any) -> bool:
    """Whether every layer of `cache` is a plain DynamicLayer (no sliding window), so its rows can be widened."""
    return all(type(layer) is DynamicLayer for layer in cache.layers)


def poolable(model: Any) -> bool:
    """Whether the model's cache keeps all keys, so chunks can be pooled."""
    return keeps_all_keys(DynamicCache(config=model.config))


@dataclass
class Chunk:
    """A prefilled chunk of rows: its cache over [prefix][padding][rest], its mask and each row's last logits."""

    cache: Any
    mask: Any
    logits: Any
    prefix_length: int


def prefill(model: Any, rests: list[list[int]], prefix_ids: list[int], prefix_cache: Any | None, pad: int) -> Chunk:
    """Reads one chunk of prompts (their ids after the shared prefix) over a copy of the prefix's cache."""
    import torch

    width = max(len(rest) for rest in rests)
    ids = torch.tensor([[pad] * (width - len(rest)) + rest for rest in rests], device=model.device)
    mask = torch.tensor(
        [[1] * len(prefix_ids) + [0] * (width - len(rest)) + [1] * len(rest) for rest in rests], device=model.device
    )
    if prefix_cache is not None:
        cache = copy.deepcopy(prefix_cache)  # the shared cache is copied per chunk, never extended
        cache.batch_repeat_interleave(len(rests))
    else:
        cache = DynamicCache(config=model.config)
    positions = (mask.cumsum(-1) - 1).masked_fill(mask == 0, 0)  # as model.generate derives them from the mask
    output = model(input_ids=ids, attention_mask=mask, position_ids=positions[:, len(prefix_ids) :], cache=cache,
                   use_cache=True, logits_to_keep=1)
    return Chunk(output.cache, mask, output.logits[:, -1].float(), len(prefix_ids))


def pool(chunks: list[Chunk], room: int) -> tuple[DynamicCache, Any, Any]:
    """One cache (with room for `room` new tokens), mask and logits for all chunks' rows, in chunk order.
    A lone chunk whose cache is not all plain layers (`poolable`) is decoded in its own cache."""
    import torch

    if len(chunks) == 1 and not keeps_all_keys(chunks[0].cache):
        return chunks[0].cache, chunks[0].mask, chunks[0].logits

    prefix = chunks[0].prefix_length
    width = max(chunk.mask.shape[1] for chunk in chunks)
    rows = sum(chunk.mask.shape[0] for chunk in chunks)
    # Each chunk's rows in the pool: (first row, row count, first column of its rest after the widened padding)
    places, start = [], 0
    for chunk in chunks:
        places.append((start, chunk.mask.shape[0], prefix + width - chunk.mask.shape[1]))
        start += chunk.mask.shape[0]
    mask = chunks[0].mask.new_zeros((rows, width))
    for chunk, (first, n, rest) in zip(chunks, places):
        mask[first : first + n, :prefix] = chunk.mask[:, :prefix]
        mask[first : first + n, rest:] = chunk.mask[:, prefix:]
    layers = []
    for layer in range(len(chunks[0].cache.layers)):
        pooled = []
        for name in ("keys", "values"):
            like = getattr(chunks[0].cache.layers[layer], name)  # [rows, heads, tokens, dims], the model's dtype
            buffer = like.new_zeros((rows, like.shape[1], width + room, like.shape[3]))
            for chunk, (first, n, rest) in zip(chunks, places):
                source = getattr(chunk.cache.layers[layer], name)
                buffer[first : first + n, :, :prefix] = source[:, :, :prefix]
                buffer[first : first + n, :, rest:width] = source[:, :, prefix:]
            pooled.append(buffer)
        layers.append(RoomyLayer(pooled[0], pooled[1], width))
    cache = chunks[0].cache  # of the model's cache type; its layers are replaced by the pooled ones
    cache.layers = layers
    return cache, mask, torch.cat([chunk.logits for chunk in chunks])


def decode(model: Any, cache: DynamicCache, mask: Any, logits: Any, max_new_tokens: int, stop_ids: list[int],
           choose: Chooser) -> list[list[int]]:
    """Each row's new tokens, its stop token included; a row leaves the batch at its stop token."""
    import torch

    tokens: list[list[int]] = [[] for _ in range(mask.shape[0])]
    live = torch.arange(mask.shape[0], device=mask.device)
    stops = torch.tensor(stop_ids, device=mask.device)
    for step in range(max_new_tokens):
        chosen = choose(logits, live)
        for row, token in zip(live.tolist(), chosen.tolist()):
            tokens[row].append(token)
        going = ~torch.isin(chosen, stops)
        if step == max_new_tokens - 1 or not bool(going.any()):
            break
        if not bool(going.all()):
            keep = going.nonzero().squeeze(1)
            cache.batch_select_indices(keep)
            live, mask, chosen = live[keep], mask[keep], chosen[keep]
        mask = torch.cat([mask, mask.new_ones((mask.shape[0], 1))], dim=1)
        output = model(input_ids=chosen[:, None], attention_mask=mask, position_ids=mask.sum(-1, keepdim=True) - 1,
                       cache=cache, use_cache=True, logits_to_keep=1)
        logits = output.logits[:, -1].float()
    return tokens
