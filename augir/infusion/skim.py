"""SKIM's mapping (Prakash et al., KDD 2025, step 2 of github.com/bicycleman15/skim) on embeddings already computed.

A synthetic query was written for one source document. SKIM does not train on it directly: it finds the training
queries nearest to it and gives each of them the source document as a new positive. The small LM supplies the
knowledge of what the document answers; the real queries keep their real wording and distribution.

- Nearest by cosine over normalised embeddings; at most `top_k` neighbours per synthetic query, each kept only if
  its cosine reaches `min_similarity` (SKIM keeps rescaled (cos + 1) / 2 >= 0.8, i.e. cosine >= 0.6).
- A (training query, document) pair found by several synthetic queries keeps its largest similarity (max-merge).
- An existing judgment of the pair, of any grade, is never changed: such pairs are skipped, not re-graded.
- Only training queries are candidates; the caller passes them, and any id in `protected_query_ids` (the queries
  of test and dev splits) is refused outright, so an evaluation query can never gain a training label.
"""

from __future__ import annotations

from collections.abc import Collection, Mapping, Sequence
from dataclasses import dataclass

import numpy as np

from augir.errors import AugirError

SKIM_TOP_K = 10
SKIM_MIN_SIMILARITY = 0.6  # SKIM's rescaled threshold 0.8 = (cosine + 1) / 2


@dataclass(frozen=True)
class SyntheticQuery:
    id: str
    doc_id: str  # the document it was written for


@dataclass(frozen=True)
class InfusedJudgment:
    """A new positive (query_id, doc_id) for a training query, and the synthetic query that caused it."""

    query_id: str
    doc_id: str
    weight: float  # the similarity, the signal's strength; pairs are ranked by it
    synthetic_query_id: str
    similarity: float  # cosine of the synthetic query and the training query


@dataclass(frozen=True)
class MappingCounts:
    synthetic_queries: int  # synthetic queries offered
    synthetic_queries_used: int  # those that gave at least one new judgment
    candidates: int  # (synthetic query, neighbour) pairs within top_k and the threshold
    skipped_existing: int  # candidates whose pair is already judged (left as it is)
    merged: int  # candidates merged into a pair found by another synthetic query


def normalised(embeddings: np.ndarray) -> np.ndarray:
    """Rows scaled to unit length, so a dot product is a cosine; a zero row stays zero (cosine 0 with everything)."""
    matrix = np.asarray(embeddings, dtype=np.float64)
    if matrix.ndim != 2:
        raise AugirError(f"embeddings must be a 2-d matrix, got shape {matrix.shape}")
    norms = np.linalg.norm(matrix, axis=1, keepdims=True)
    return np.divide(matrix, norms, out=np.zeros_like(matrix), where=norms > 0)


def skim_mapping(
    synthetic: Sequence[SyntheticQuery],
    synthetic_embeddings: np.ndarray,
    training_query_ids: Sequence[str],
    training_embeddings: np.ndarray,
    existing: Mapping[str, Mapping[str, int]],
    *,
    top_k: int = SKIM_TOP_K,
    min_similarity: float = SKIM_MIN_SIMILARITY,
    protected_query_ids: Collection[str] = (),
) -> tuple[list[InfusedJudgment], MappingCounts]:
    """The new judgments, strongest first (ties: query id, then document id), and what the mapping counted.

    `existing` is the training qrels (query id -> doc id -> grade): its pairs are never emitted. Deterministic:
    neighbours tie-break by their position in `training_query_ids`; a merge tie keeps the earlier synthetic query.
    """
    if top_k < 1:
        raise AugirError(f"infuse.top_k: must be at least 1, got {top_k}")
    if not -1.0 <= min_similarity <= 1.0:
        raise AugirError(f"infuse.min_similarity: a cosine lies in [-1, 1], got {min_similarity}")
    leaked = sorted(set(training_query_ids) & set(protected_query_ids))
    if leaked:
        raise AugirError(f"infusion onto evaluation queries refused: {', '.join(leaked[:3])} are test or dev queries")
    if len(synthetic) != len(synthetic_embeddings) or len(training_query_ids) != len(training_embeddings):
        raise AugirError("infusion: each query needs exactly one embedding")
    if not synthetic or not training_query_ids:
        return [], MappingCounts(len(synthetic), 0, 0, 0, 0)

    similarities = normalised(synthetic_embeddings) @ normalised(training_embeddings).T
    best: dict[tuple[str, str], InfusedJudgment] = {}
    candidates = skipped = merged = 0
    for row, query in enumerate(synthetic):
        # A stable sort on the negated scores: equal cosines keep the training queries' order.
        for column in np.argsort(-similarities[row], kind="stable")[:top_k]:
            similarity = float(similarities[row, column])
            if similarity < min_similarity:
                break  # sorted: the rest are lower still
            candidates += 1
            query_id = training_query_ids[column]
            if query.doc_id in existing.get(query_id, {}):
                skipped += 1
                continue
            key = (query_id, query.doc_id)
            if key in best:
                merged += 1
                if similarity <= best[key].similarity:
                    continue
            best[key] = InfusedJudgment(query_id, query.doc_id, similarity, query.id, similarity)
    judgments = sorted(best.values(), key=lambda j: (-j.weight, j.query_id, j.doc_id))
    used = len({judgment.synthetic_query_id for judgment in judgments})
    return judgments, MappingCounts(len(synthetic), used, candidates, skipped, merged)
