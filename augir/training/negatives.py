"""Hard negatives for the training pairs: mined with sentence-transformers' `mine_hard_negatives`, optionally cleaned
by a trained judge (augir.judging), the oracle that removes false negatives (unjudged passages that are relevant).

The miner is a dense encoder (`negatives.miner`); candidates come from the rank window [range_min, range_max) of
the corpus under it, at least `margin` below the positive. With a judge, twice as many candidates are mined and
those the judge grades relevant are dropped. A pair left with fewer than `count` negatives is dropped (MultipleNegativesRankingLoss needs the same column count).
"""

from __future__ import annotations

from dataclasses import replace
from typing import Any

from augir.training.pairs import Pair


def mine_negatives(pairs: list[Pair], corpus: list[str], params: Any, judge: Any = None) -> tuple[list[Pair], dict]:
    """``pairs`` with ``params.count`` negatives each; ``params`` is a `NegativesParams`; returns counts too."""
    from datasets import Dataset
    from sentence_transformers.util import mine_hard_negatives

    from augir.retrieval.encoders import load_encoder, resolve_prefixes

    wanted = params.count
    mined_per_pair = wanted * 2 if judge is not None else wanted
    prefixes = resolve_prefixes(params.miner, None, None)
    miner = load_encoder(params.miner, prefixes=prefixes)
    dataset = Dataset.from_dict({"query": [p.query for p in pairs], "document": [p.document for p in pairs]})
    mined = mine_hard_negatives(
        dataset, miner, anchor_column_name="query", positive_column_name="document", corpus=corpus,
        range_min=params.range_min, range_max=params.range_max,
        absolute_margin=params.margin, num_negatives=mined_per_pair, sampling_strategy="top",
        query_prompt=prefixes.query or None, corpus_prompt=prefixes.passage or None,
        output_format="labeled-list", batch_size=64, verbose=False,
    )
    candidates: dict[tuple[str, str], list[str]] = {}
    for row in mined:
        texts = [text for text, label in zip(row["document"], row["labels"]) if label == 0]
        candidates[(row["query"], row["document"][row["labels"].index(1)])] = texts
    stats = {"mined": sum(len(v) for v in candidates.values()), "judged_relevant": 0}
    if judge is not None:
        keys = [(key, text) for key, texts in candidates.items() for text in texts]
        readings = judge.grade([(query, text) for (query, _), text in keys])
        kept: dict[tuple[str, str], list[str]] = {key: [] for key in candidates}
        for (key, text), reading in zip(keys, readings):
            if reading.expected < params.judge_max_grade:
                kept[key].append(text)
            else:
                stats["judged_relevant"] += 1
        candidates = kept
    with_negatives = [
        replace(pair, negatives=tuple(candidates[(pair.query, pair.document)][:wanted]))
        for pair in pairs if len(candidates.get((pair.query, pair.document), [])) >= wanted
    ]
    stats.update(pairs_with_negatives=len(with_negatives), pairs_dropped=len(pairs) - len(with_negatives))
    return with_negatives, stats
