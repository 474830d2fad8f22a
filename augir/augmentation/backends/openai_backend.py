"""Any OpenAI-compatible endpoint: `vllm serve`, llama.cpp's server, a hosted API (the optional `openai` extra).

Completion prompts go to /v1/completions, chat prompts to /v1/chat/completions. Requests run with bounded
concurrency; the client's own timeout and retries with exponential backoff apply. The API key is read from an
environment variable at call time and never written anywhere.
"""

from __future__ import annotations

import json
import os
import time
from concurrent.futures import ThreadPoolExecutor
from typing import Any

from augir.augmentation.backends.base import Completion, Sampling, chat_messages
from augir.augmentation.prompts import Prompt
from augir.errors import AugirError, first_line, keep_secret, redacted

NO_KEY = "not-needed"  # local servers accept any key; the client refuses an empty one


class MalformedResponse(ValueError):
    """A server's answer that parsed but is not a completion."""


def request_arguments(
    model: str, prompt: Prompt, seed: int, sampling: Sampling, cache_prompt: bool = False
) -> dict[str, Any]:
    """The body of one request (without the key), for completions or chat completions."""
    arguments: dict[str, Any] = {
        "model": model,
        "max_tokens": sampling.max_new_tokens,
        "temperature": sampling.temperature,
        "top_p": sampling.top_p,
        "seed": seed,
    }
    if sampling.stop_at_newline:
        arguments["stop"] = ["\n"]
    if prompt.messages is None:
        arguments["prompt"] = prompt.text or ""
    else:
        arguments["messages"] = chat_messages(prompt)
    if cache_prompt:  # llama.cpp server: keep the shared prefix's KV cache between requests
        arguments["extra_body"] = {"cache_prompt": True}
    return arguments


def completion_from(response: Any) -> Completion:
    """The first choice of a response; ValueError for a response without one (a misbehaving server)."""
    if not getattr(response, "choices", None):
        raise MalformedResponse("a response without choices")
    choice = response.choices[0]
    text = choice.message.content if hasattr(choice, "message") else choice.text
    tokens = response.usage.completion_tokens if response.usage is not None else 0
    return Completion(text=text or "", new_tokens=int(tokens))


class OpenAIBackend:
    name = "openai"

    def __init__(self, *, base_url: str, model: str, api_key_env: str, concurrency: int, timeout_s: float,
                 max_retries: int, cache_prompt: bool = False) -> None:
        try:
            import openai
        except ImportError as error:
            raise AugirError('augment.backend: openai is not installed; pip install -e ".[openai]"') from error
        self.base_url = base_url
        self.model = model
        self.concurrency = concurrency
        self.max_retries = max_retries
        self.cache_prompt = cache_prompt
        key = os.environ.get(api_key_env)
        keep_secret(key)  # whatever a server echoes back, augir never prints the key
        self.client = openai.OpenAI(
            base_url=base_url,
            api_key=key or NO_KEY,
            timeout=timeout_s,
            max_retries=max_retries,
        )

    def _one(self, prompt: Prompt, seed: int, sampling: Sampling) -> Completion:
        import openai

        arguments = request_arguments(self.model, prompt, seed, sampling, self.cache_prompt)
        endpoint = f"{self.base_url.rstrip('/')}/{'completions' if prompt.messages is None else 'chat/completions'}"
        # The client retries connection errors and 5xx answers itself; a 200 with a body that is not a completion
        # (invalid JSON, no choices) it returns or raises at once, so those are retried here, with the same backoff.
        for attempt in range(self.max_retries + 1):
            try:
                if prompt.messages is None:
                    return completion_from(self.client.completions.create(**arguments))
                return completion_from(self.client.chat.completions.create(**arguments))
            except openai.APIConnectionError as error:
                raise AugirError(f"augment.openai.base_url: cannot reach {self.base_url} ({type(error).__name__})") from None
            except openai.APIStatusError as error:
                raise AugirError(redacted(
                    f"augment.openai: {endpoint} answered {error.status_code}: {first_line(error)}")) from None
            except (json.JSONDecodeError, MalformedResponse) as error:
                problem = str(error) if isinstance(error, MalformedResponse) else "a body that is not valid JSON"
                if attempt == self.max_retries:
                    raise AugirError(redacted(f"augment.openai: {endpoint} answered {problem} "
                                              f"({attempt + 1} tries)")) from None
                time.sleep(min(0.5 * 2**attempt, 8.0))
        raise AssertionError("unreachable")

    def complete(self, prompts: list[Prompt], seeds: list[int], sampling: Sampling) -> list[Completion]:
        with ThreadPoolExecutor(max_workers=self.concurrency) as pool:
            return list(pool.map(lambda pair: self._one(pair[0], pair[1], sampling), zip(prompts, seeds)))

