"""An LLM as relevance judge: a 2-shot grading prompt, the grade parsed from what the model writes."""

from __future__ import annotations

import re

from tqdm import tqdm

from augir.augmentation.backends import Backend, Sampling
from augir.augmentation.prompts import Prompt, generic_examples, truncate_words
from augir.data.beir import BeirDataset, document_text

GRADE = re.compile(r"[0-3]")
JUDGE_INSTRUCTION = "Rate how relevant the document is to the query, from 0 (irrelevant) to 3 (perfectly relevant)."


def judge_prompt(query: str, passage: str) -> Prompt:
    """A 2-shot grading prompt whose examples are augir's generic ones (one relevant, one not)."""
    first, second = generic_examples("question", 2, max_words=60)
    shots = (
        f"Document: {first.passage}\nQuery: {first.query}\nRelevance: 3\n\n"
        f"Document: {first.passage}\nQuery: {second.query}\nRelevance: 0\n\n"
    )
    return Prompt(text=f"{JUDGE_INSTRUCTION}\n\n{shots}Document: {passage}\nQuery: {query}\nRelevance:")


def parse_grade(text: str) -> int | None:
    found = GRADE.search(text)
    return int(found.group()) if found else None


def judge_grades(pairs: list[tuple[str, str, str]], dataset: BeirDataset, backend: Backend, batch_size: int,
                 max_passage_words: int) -> dict[str, int | None]:
    grades: dict[str, int | None] = {}
    sampling = Sampling(temperature=0.0, max_new_tokens=2)
    for start in tqdm(range(0, len(pairs), batch_size), desc="judge", unit="batch"):
        batch = pairs[start : start + batch_size]
        prompts = [
            judge_prompt(query, truncate_words(document_text(dataset.corpus[doc_id]), max_passage_words))
            for _, query, doc_id in batch
        ]
        for (query_id, _, _), completion in zip(batch, backend.complete(prompts, [0] * len(batch), sampling)):
            grades[query_id] = parse_grade(completion.text)
    return grades
