"""The (query, passage) pairs a retriever is fine-tuned on, from three sources, each taken as its first N.

- real: the positive judgments of the train qrels, in query id then document id order;
- synthetic: generated queries with their source passage, in generation order (the seeded passage order);
- infused: real training queries with a passage a synthetic query found for them (augir.infusion), in the
  infuse stage's order (strongest first, or synthetic order).
Taking the first N of a fixed order makes scales nest: the pairs of N are among those of any larger N.

The pairs stage writes them to one file that train reads, so that train depends on its pairs and not on every
downloaded dataset: adding an evaluation dataset changes `data/raw` but not the pairs, and train stays cached.
"""

from __future__ import annotations

import json
from collections import Counter
from dataclasses import asdict, dataclass
from pathlib import Path

from augir.data.beir import BeirDataset, document_text, read_generated_pairs
from augir.errors import AugirError
from augir.fileio import atomic_folder

REAL_SPLIT = "train"
PAIRS_FILE = "pairs.jsonl"
SOURCES = ("real", "synthetic", "infused", "labelled")


@dataclass(frozen=True)
class Pair:
    query: str
    document: str
    source: str = "real"  # real | synthetic | infused | labelled (the judge's positives, augir.judging.labels)
    negatives: tuple[str, ...] = ()  # hard negatives (augir.training.negatives); none by default


def real_pairs(dataset: BeirDataset, name: str) -> list[Pair]:
    """(query, relevant passage) for every positive judgment of the dataset's train split."""
    if REAL_SPLIT not in dataset.qrels:
        raise AugirError(f"train.datasets: {name} has no {REAL_SPLIT!r} qrels (splits: {', '.join(dataset.qrels)})")
    return [
        Pair(dataset.queries[query_id], document_text(dataset.corpus[doc_id]), "real")
        for query_id, doc_ids in dataset.positives(REAL_SPLIT).items()
        for doc_id in doc_ids
    ]


def load_for_pairs(folder: Path, *, generated: list[Path] = (), infused: Path | None = None,
                   whole: bool = False) -> BeirDataset:
    """A training dataset as the pairs stage needs it: queries, qrels and every id, with the texts of only the
    passages a pair can name (the train split's positives, the `generated` sets' passages, the `infused` pairs'),
    so memory grows with the pairs, not the corpus. `whole` reads every text: mining hard negatives and the
    judge's labelling search the whole corpus."""
    from augir.data.beir import CORPUS_FILE, load_beir, read_corpus_ids, with_texts

    if whole:
        return load_beir(folder)
    dataset = load_beir(folder, doc_ids=read_corpus_ids(Path(folder) / CORPUS_FILE))
    needed = {doc_id for doc_ids in dataset.positives(REAL_SPLIT).values() for doc_id in doc_ids}
    for augmented_dir in generated:
        needed |= {doc_id for _, _, doc_id in read_generated_pairs(augmented_dir)}
    if infused is not None:
        from augir.infusion.infuse import read_infused

        needed |= {doc_id for _, doc_id, _ in read_infused(infused)}
    return with_texts(dataset, Path(folder) / CORPUS_FILE, needed)


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
        pairs.append(Pair(text, document_text(dataset.corpus[doc_id]), "synthetic"))
    if len(pairs) < limit:
        raise AugirError(f"train.augmented_pairs: {limit} asked, but {augmented_dir} holds only {len(pairs)} pairs"
                         f"{_generated_note(augmented_dir)}: ask for at most {len(pairs)}, or generate for more passages")
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
        pairs.append(Pair(dataset.queries[query_id], document_text(dataset.corpus[doc_id]), "infused"))
    if len(pairs) < limit:
        raise AugirError(f"train.infused_pairs: {limit} asked, but {infused_dir} holds only {len(pairs)} pairs")
    return pairs[:limit]


def write_pairs(pairs: list[Pair], folder: Path) -> dict[str, int]:
    """The pairs in training order, one JSON object per line; returns how many of each source."""
    with atomic_folder(folder, signature=PAIRS_FILE) as staging:
        with (staging / PAIRS_FILE).open("w", encoding="utf-8") as out:
            for pair in pairs:
                record = asdict(pair)
                if not pair.negatives:  # pairs without negatives are written as before negatives existed
                    del record["negatives"]
                out.write(json.dumps(record, ensure_ascii=False) + "\n")
    counts = Counter(pair.source for pair in pairs)
    return {"pairs": len(pairs), **{source: counts.get(source, 0) for source in SOURCES}}


def read_pairs(folder: Path) -> list[Pair]:
    """The pairs `write_pairs` wrote, in the same order."""
    path = folder / PAIRS_FILE
    if not path.is_file():
        raise AugirError(f"{path}: no training pairs (run the pairs stage first)")
    pairs = []
    with path.open(encoding="utf-8") as lines:
        for number, line in enumerate(lines, start=1):
            try:
                record = json.loads(line)
                negatives = tuple(str(text) for text in record.get("negatives", []))
                pairs.append(Pair(str(record["query"]), str(record["document"]), str(record["source"]), negatives))
            except (ValueError, KeyError, TypeError) as error:
                raise AugirError(f"{path}:{number}: not a training pair ({error})") from error
    return pairs


def _generated_note(augmented_dir: Path) -> str:
    """` (of N generated queries ...)` from the set's provenance, which lists dropped generations too."""
    provenance = augmented_dir / "provenance.jsonl"
    if not provenance.is_file():
        return ""
    with provenance.open(encoding="utf-8") as handle:
        generated = sum(1 for line in handle if line.strip())
    return f" (of {generated} generated queries; clean-up and filtering dropped the rest)"
