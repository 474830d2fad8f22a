"""The (query, passage) pairs a retriever is fine-tuned on: real ones from train qrels, synthetic ones in order."""

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
        raise AugirError(f"train.augmented_pairs: {limit} asked, but {augmented_dir} holds only {len(pairs)} pairs"
                         f"{_generated_note(augmented_dir)}: ask for at most {len(pairs)}, or generate for more passages")
    return pairs[:limit]


def _generated_note(augmented_dir: Path) -> str:
    """` (of N generated queries ...)` from the set's provenance, which lists dropped generations too."""
    provenance = augmented_dir / "provenance.jsonl"
    if not provenance.is_file():
        return ""
    with provenance.open(encoding="utf-8") as handle:
        generated = sum(1 for line in handle if line.strip())
    return f" (of {generated} generated queries; clean-up and filtering dropped the rest)"
