"""What every generation backend offers the augment and filter stages."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol

from augir.augmentation.prompts import Prompt


@dataclass(frozen=True)
class Sampling:
    temperature: float = 0.0  # 0 = greedy
    top_p: float = 1.0
    max_new_tokens: int = 24
    stop_at_newline: bool = True  # queries are one line: stop there instead of paying for more tokens


@dataclass(frozen=True)
class Completion:
    text: str
    new_tokens: int
    prompt_tokens: int | None = None  # None: the engine does not report it
    cached_prompt_tokens: int | None = None  # of prompt_tokens, those served from a prefix cache instead of computed


class Backend(Protocol):
    name: str

    def complete(self, prompts: list[Prompt], seeds: list[int], sampling: Sampling) -> list[Completion]:
        """One completion per prompt; with sampling, prompt i is sampled with seeds[i] whatever its batch."""
        ...


def chat_messages(prompt: Prompt) -> list[dict[str, str]]:
    return [{"role": role, "content": content} for role, content in prompt.messages or ()]
