"""Prompts for synthetic queries: one template per strategy (augir/prompts.yaml), few-shot examples, two formats.

Few-shot examples come from the dataset's `train` split only (evaluation queries never reach a prompt), or from
augir's own generic examples when a dataset has no training queries. The completion format ("Document: ... /
Relevant query: ...", InPars style) is the default: SmolLM2-135M writes far better queries with it than with
its chat template; the chat format renders the same turns with the generator's chat template.
"""

from __future__ import annotations

import random
from dataclasses import dataclass, field
from functools import cache
from pathlib import Path
from typing import Literal

import yaml

from augir.data.beir import BeirDataset, document_text

TEMPLATES_FILE = Path(__file__).with_name("prompts.yaml")
EXAMPLE_SPLIT = "train"
STRATEGIES = ("question", "keyword", "claim", "title")
ExampleSource = Literal["train", "generic", "none"]
PromptFormat = Literal["completion", "chat"]


@dataclass(frozen=True)
class Template:
    instruction: str
    label: str


@dataclass(frozen=True)
class FewShotExample:
    query_id: str  # a training query's id, or "generic-<n>"
    query: str
    doc_id: str
    passage: str


@dataclass(frozen=True)
class Prompt:
    """Completion text, or chat messages for the backend to render with the generator's chat template."""

    text: str | None = None
    messages: tuple[tuple[str, str], ...] | None = None  # (role, content) pairs
    # The start of `text` that every prompt of a strategy shares (instruction and few-shot block): backends that can
    # compute it once and reuse it do (the transformers backend's prefix cache). Not part of the prompt's identity.
    prefix: str | None = field(default=None, compare=False)

    def __post_init__(self) -> None:
        if self.prefix is not None and not (self.text or "").startswith(self.prefix):
            raise ValueError("Prompt.prefix must be the start of Prompt.text")

    def as_record(self) -> str | list[dict[str, str]]:
        if self.messages is None:
            return self.text or ""
        return [{"role": role, "content": content} for role, content in self.messages]


@cache
def _templates_file() -> dict:
    return yaml.safe_load(TEMPLATES_FILE.read_text(encoding="utf-8"))


def template(strategy: str) -> Template:
    return Template(**_templates_file()["strategies"][strategy])


def truncate_words(text: str, max_words: int) -> str:
    return " ".join(text.split()[:max_words])


def generic_examples(strategy: str, num_examples: int, max_words: int) -> list[FewShotExample]:
    written = _templates_file()["generic_examples"][:num_examples]
    return [
        FewShotExample(f"generic-{n}", example[strategy], f"generic-{n}", truncate_words(example["passage"], max_words))
        for n, example in enumerate(written, start=1)
    ]


def training_example_pairs(dataset: BeirDataset, num_examples: int, seed: int) -> list[tuple[str, str]]:
    """`num_examples` training queries, each with one passage it is judged relevant to, chosen with the seed:
    (query id, document id) pairs, which need no text (the augment stage reads only these documents' texts)."""
    positives = dataset.positives(EXAMPLE_SPLIT)
    candidates = sorted(positives)
    chosen = random.Random(seed).sample(candidates, min(num_examples, len(candidates)))
    return [(query_id, positives[query_id][0]) for query_id in chosen]


def training_examples(dataset: BeirDataset, num_examples: int, seed: int, max_words: int) -> list[FewShotExample]:
    return [
        FewShotExample(query_id, dataset.queries[query_id], doc_id,
                       truncate_words(document_text(dataset.corpus[doc_id]), max_words))
        for query_id, doc_id in training_example_pairs(dataset, num_examples, seed)
    ]


def choose_examples(
    dataset: BeirDataset, *, source: ExampleSource, strategy: str, num_examples: int, seed: int, max_words: int
) -> tuple[list[FewShotExample], ExampleSource]:
    """The few-shot examples and where they really came from: `train` falls back to `generic` without a train split."""
    if source == "none" or num_examples == 0:
        return [], "none"
    if source == "train" and dataset.qrels.get(EXAMPLE_SPLIT):
        return training_examples(dataset, num_examples, seed, max_words), "train"
    return generic_examples(strategy, num_examples, max_words), "generic"


def build_prompt(passage: str, examples: list[FewShotExample], strategy: str, prompt_format: PromptFormat) -> Prompt:
    chosen = template(strategy)
    if prompt_format == "chat":
        turns: list[tuple[str, str]] = [("system", chosen.instruction)]
        for example in examples:
            turns += [("user", f"Document: {example.passage}"), ("assistant", example.query)]
        return Prompt(messages=(*turns, ("user", f"Document: {passage}")))
    shots = "".join(f"Document: {example.passage}\n{chosen.label}: {example.query}\n\n" for example in examples)
    prefix = f"{chosen.instruction}\n\n{shots}"
    return Prompt(text=f"{prefix}Document: {passage}\n{chosen.label}:", prefix=prefix)
