"""The (query, passage) pairs a retriever is fine-tuned on, from three sources, each taken as its first N.

- real: the positive judgments of the train qrels, in query id then document id order;
- synthetic: generated queries with their source passage, in generation order (the seeded passage order);
- infused: real training queries with a passage a synthetic query found for them (augir.infusion), in the
  infuse stage's order (strongest first, or synthetic order).
Taking the first N of a fixed order makes scales nest: the pairs of N are among those of any larger N.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from augir.data.beir import BeirDataset, document_text, read_generated_pairs
from augir.errors import AugirError

REAL_SPLIT = "train"


@dataclass(frozen=True)
class Pair:
    query: str
    document: str


def real_pairs(dataset: BeirDataset, name: str) -> list[Pair]:
    """(query, relevant passage) for every positive judgment of the dataset's train split."""
    if REAL_SPLIT not in dataset.qrels:
        raise AugirError(f"train.datasets: {name} has no {REAL_SPLIT!r} qrels (splits: {', '.join(dataset.qrels)})")
    return [
        Pair(dataset.queries[query_id], document_text(dataset.corpus[doc_id]))
        for query_id, doc_ids in dataset.positives(REAL_SPLIT).items()
        for doc_id in doc_ids
    ]


def first_pairs(pairs: list[Pair], limit: int | None, key: str) -> list[Pair]:
    """The first `limit` pairs (all of them with None), refusing a limit larger than what there is."""
    if limit is None:
        return pairs
    if len(pairs) < limit:
        raise AugirError(f"{key}: {limit} asked, but there are only {len(pairs)} pairs")
    return pairs[:limit]


def synthetic_pairs(augmented_dir: Path, dataset: BeirDataset, limit: int) -> list[Pair]:
    """The first `limit` synthetic pairs in generation order (the seeded passage order), so scales nest."""
    if limit == 0:
        return []
    pairs = []
    for query_id, text, doc_id in read_generated_pairs(augmented_dir):
        if doc_id not in dataset.corpus:
            raise AugirError(f"{augmented_dir / 'qrels' / 'train.tsv'}: passage {doc_id!r} of {query_id} is not in the corpus")
        pairs.append(Pair(text, document_text(dataset.corpus[doc_id])))
    if len(pairs) < limit:
        raise AugirError(f"train.augmented_pairs: {limit} asked, but {augmented_dir} holds only {len(pairs)} pairs")
    return pairs[:limit]


def infused_pairs(infused_dir: Path, dataset: BeirDataset, limit: int) -> list[Pair]:
    """The first `limit` infused pairs: a real training query's text with a passage infusion gave it."""
    if limit == 0:
        return []
    from augir.infusion.infuse import read_infused

    pairs = []
    for query_id, doc_id, _ in read_infused(infused_dir):
        if query_id not in dataset.queries or doc_id not in dataset.corpus:
            raise AugirError(f"{infused_dir}: pair ({query_id}, {doc_id}) names a query or passage the dataset lacks")
        pairs.append(Pair(dataset.queries[query_id], document_text(dataset.corpus[doc_id])))
    if len(pairs) < limit:
        raise AugirError(f"train.infused_pairs: {limit} asked, but {infused_dir} holds only {len(pairs)} pairs")
    return pairs[:limit]
