"""Few-shot prompts for synthetic queries, InPars style: "Document: ... / Relevant query: ...".

Few-shot examples come only from the dataset's `train` split: evaluation queries never reach a prompt.
A plain completion prompt is used on purpose: SmolLM2's chat template gives far worse queries (see notes).
"""

from __future__ import annotations

import random
from dataclasses import dataclass

from augir.beir import BeirDataset, document_text

EXAMPLE_SPLIT = "train"


@dataclass(frozen=True)
class FewShotExample:
    query_id: str
    query: str
    doc_id: str
    passage: str


def truncate_words(text: str, max_words: int) -> str:
    words = text.split()
    return " ".join(words[:max_words])


def choose_examples(dataset: BeirDataset, *, num_examples: int, seed: int, max_words: int) -> list[FewShotExample]:
    """`num_examples` training queries, each with one passage it is judged relevant to, chosen with the seed."""
    if num_examples == 0 or EXAMPLE_SPLIT not in dataset.qrels:
        return []
    judged = dataset.qrels[EXAMPLE_SPLIT]
    candidates = sorted(qid for qid, docs in judged.items() if any(grade > 0 for grade in docs.values()))
    chosen = random.Random(seed).sample(candidates, min(num_examples, len(candidates)))
    examples = []
    for query_id in chosen:
        doc_id = min(doc for doc, grade in judged[query_id].items() if grade > 0)
        passage = truncate_words(document_text(dataset.corpus[doc_id]), max_words)
        examples.append(FewShotExample(query_id, dataset.queries[query_id], doc_id, passage))
    return examples


def question_prompt(passage: str, examples: list[FewShotExample]) -> str:
    shots = "".join(f"Document: {example.passage}\nRelevant query: {example.query}\n\n" for example in examples)
    return f"{shots}Document: {passage}\nRelevant query:"
