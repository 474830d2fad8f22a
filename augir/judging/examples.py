"""Graded (query, document, grade) examples for training and testing a judge, from a dataset's judgments.

Positives are the judged documents with their grades; grade 0 is "not relevant": documents judged 0 and BM25
top-k candidates that are not judged relevant. Each grade gets the same number of examples (sampled with a
seed). Queries are split into judge-train and judge-test by query, so no query is on both sides, and a query
judged in any split other than the source split (a test query) is never used.

Cranfield has no train split: its test queries are the source, split with a seed. A judge trained that way has
seen Cranfield's test judgments and must not filter or label data for a retriever evaluated on Cranfield.
"""

from __future__ import annotations

import random
from collections.abc import Mapping
from dataclasses import dataclass

from augir.data.beir import BeirDataset, document_text
from augir.errors import AugirError


@dataclass(frozen=True)
class GradedExample:
    query_id: str
    doc_id: str
    query: str
    document: str
    grade: int


@dataclass(frozen=True)
class JudgeQueries:
    train: list[str]
    test: list[str]


def judge_queries(dataset: BeirDataset, source_split: str, test_fraction: float, seed: int) -> JudgeQueries:
    """Split the source split's judged queries (with text) by query into judge-train and judge-test.

    Queries judged in any other split are left out, so a test query never reaches the judge.
    """
    judged_elsewhere = {q for split, qrels in dataset.qrels.items() if split != source_split for q in qrels}
    candidates = sorted(set(dataset.split_queries(source_split)) - judged_elsewhere)
    if len(candidates) < 2:
        raise AugirError(f"judge.source_split: split {source_split!r} has {len(candidates)} usable queries; need 2")
    random.Random(seed).shuffle(candidates)
    num_test = min(max(1, round(test_fraction * len(candidates))), len(candidates) - 1)
    return JudgeQueries(train=sorted(candidates[num_test:]), test=sorted(candidates[:num_test]))


def graded_candidates(
    judged: Mapping[str, int], retrieved: Mapping[str, float], max_grade: int, where: str
) -> dict[str, int]:
    """Document id -> grade for one query: its judgments, and retrieved documents not judged relevant as grade 0."""
    grades = {doc_id: 0 for doc_id in retrieved if judged.get(doc_id, 0) <= 0}
    for doc_id, grade in judged.items():
        if grade > max_grade:
            raise AugirError(f"judge.max_grade: {where} has grade {grade} > max_grade {max_grade}")
        grades[doc_id] = max(grade, 0)
    return grades


def build_examples(
    dataset: BeirDataset,
    source_split: str,
    query_ids: list[str],
    retrieved: Mapping[str, Mapping[str, float]],
    max_grade: int,
    max_examples: int | None,
    seed: int,
) -> list[GradedExample]:
    """Balanced graded examples for ``query_ids``: the same number per grade 0..max_grade, sampled with ``seed``.

    ``retrieved`` holds each query's candidate documents (BM25 or dense top-k); ``max_examples`` caps the total.
    """
    qrels = dataset.qrels[source_split]
    by_grade: dict[int, list[tuple[str, str]]] = {grade: [] for grade in range(max_grade + 1)}
    for query_id in query_ids:
        judged = qrels.get(query_id, {})
        grades = graded_candidates(judged, retrieved.get(query_id, {}), max_grade, f"{source_split} query {query_id}")
        for doc_id, grade in sorted(grades.items()):
            if doc_id in dataset.corpus:
                by_grade[grade].append((query_id, doc_id))
    per_grade = min(len(pairs) for pairs in by_grade.values())
    if per_grade == 0:
        empty = [str(grade) for grade, pairs in by_grade.items() if not pairs]
        raise AugirError(f"judge.max_grade: no {source_split} examples of grade {', '.join(empty)} (max_grade {max_grade})")
    if max_examples is not None:
        per_grade = min(per_grade, max_examples // (max_grade + 1))
    rng = random.Random(seed)
    chosen = [(pair, grade) for grade, pairs in by_grade.items() for pair in rng.sample(pairs, per_grade)]
    rng.shuffle(chosen)
    return [
        GradedExample(query_id, doc_id, dataset.queries[query_id], document_text(dataset.corpus[doc_id]), grade)
        for (query_id, doc_id), grade in chosen
    ]
