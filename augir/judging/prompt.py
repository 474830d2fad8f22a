"""The judge's prompt and its grade tokens: one digit per grade, read at the position right after the prompt."""

from __future__ import annotations

from typing import Any

from augir.errors import AugirError

# The prompt ends with "Grade: ": the grade is the next token. The same text serves the untuned and tuned judge.
PREFIX = "Query: {query}\nDocument: "
SUFFIX = "\nHow relevant is the document to the query, from 0 (not relevant) to {max_grade} (highly relevant)?\nGrade: "


def grade_token_ids(tokenizer: Any, max_grade: int) -> list[int]:
    """The token id of each grade 0..max_grade written as a digit; each must be a single token."""
    if not 1 <= max_grade <= 9:
        raise AugirError(f"judge.max_grade: {max_grade} is not a grade scale of single digits (1 to 9)")
    ids = []
    for grade in range(max_grade + 1):
        encoded = tokenizer.encode(str(grade), add_special_tokens=False)
        if len(encoded) != 1:
            raise AugirError(f"judge.base_model: its tokenizer writes grade {grade} as {len(encoded)} tokens, not one")
        ids.append(encoded[0])
    return ids


def prompt_ids(tokenizer: Any, query: str, document: str, max_grade: int, max_length: int) -> list[int]:
    """Token ids of the judge prompt, the document cut so that prompt plus grade fit in ``max_length`` tokens."""
    prefix = tokenizer.encode(PREFIX.format(query=query), add_special_tokens=False)
    suffix = tokenizer.encode(SUFFIX.format(max_grade=max_grade), add_special_tokens=False)
    budget = max_length - 1 - len(prefix) - len(suffix)  # 1: the grade token
    if budget < 1:
        raise AugirError(f"judge.max_length: {max_length} tokens leave no room for the document")
    body = tokenizer.encode(document, add_special_tokens=False)[:budget]
    bos = [tokenizer.bos_token_id] if getattr(tokenizer, "add_bos_token", False) and tokenizer.bos_token_id is not None else []
    return bos + prefix + body + suffix
