"""Turning a raw generation into a query, or a reason to drop it (each reason is counted in metrics/augment.json)."""

from __future__ import annotations

import re
from dataclasses import dataclass

DROP_REASONS = ("empty", "too_short", "too_long", "duplicate", "copied", "copied_example", "repeated")
# Echoes of the prompt's labels that small models repeat before the query itself.
_ECHO = re.compile(r"^(?:relevant query|query|question|keywords?|claim|title|document)\s*:\s*", re.IGNORECASE)
_NUMBERING = re.compile(r"^(?:\(?\d{1,2}[.):]|[-*•])\s+")
_WORD = re.compile(r"\w+")


@dataclass(frozen=True)
class CleanupRules:
    min_chars: int = 3
    max_words: int = 32
    max_copy_overlap: float = 0.8  # share of the query's word trigrams found in its passage
    copy_ngram: int = 3
    # Across passages: a query whose words (lower case, punctuation ignored) were kept for this many passages
    # already is dropped as `repeated`. None: no cap.
    max_repeats: int | None = None


def first_line(raw: str) -> str:
    """The first non-empty line, without prompt echoes, numbering, quotes or doubled spaces."""
    lines = [line for line in raw.strip().splitlines() if line.strip()]
    text = " ".join(lines[0].split()) if lines else ""
    previous = None
    while text != previous:
        previous = text
        text = _NUMBERING.sub("", _ECHO.sub("", text)).strip().strip("\"'“”").strip()
    return text


def copy_overlap(query: str, passage: str, n: int) -> float:
    """Share of the query's word n-grams that occur in the passage (0 for queries shorter than n words)."""
    query_words = [w.lower() for w in _WORD.findall(query)]
    if len(query_words) < n:
        return 0.0
    passage_words = [w.lower() for w in _WORD.findall(passage)]
    passage_ngrams = {tuple(passage_words[i : i + n]) for i in range(len(passage_words) - n + 1)}
    query_ngrams = [tuple(query_words[i : i + n]) for i in range(len(query_words) - n + 1)]
    return sum(ngram in passage_ngrams for ngram in query_ngrams) / len(query_ngrams)


def clean_query(
    raw: str, passage: str, seen: set[str], rules: CleanupRules, example_queries: frozenset[str] = frozenset()
) -> tuple[str | None, str | None]:
    """(query, None) for a usable generation, else (None, reason).

    `seen` holds the passage's kept queries; `example_queries` the prompt's few-shot queries (lower case), which
    small generators repeat word for word.
    """
    query = first_line(raw)
    if not query:
        return None, "empty"
    if len(query) < rules.min_chars:
        return None, "too_short"
    if len(query.split()) > rules.max_words:
        return None, "too_long"
    if query.lower() in seen:
        return None, "duplicate"
    if query.lower() in example_queries:
        return None, "copied_example"
    if copy_overlap(query, passage, rules.copy_ngram) >= rules.max_copy_overlap:
        return None, "copied"
    return query, None


def repeat_key(query: str) -> str:
    """What two queries share when they differ only in case, punctuation or spacing."""
    return " ".join(w.lower() for w in _WORD.findall(query))


def is_repeated(query: str, kept_counts: dict[str, int], rules: CleanupRules) -> bool:
    """True if `query` was kept for `rules.max_repeats` passages already (`kept_counts`: repeat_key -> passages)."""
    return rules.max_repeats is not None and kept_counts.get(repeat_key(query), 0) >= rules.max_repeats
