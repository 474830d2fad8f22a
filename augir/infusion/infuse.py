"""The infuse stage: map filtered synthetic queries onto the training queries nearest to them (SKIM).

Input: a BEIR dataset (its `train` split gives the training queries and their judgments) and a folder of
synthetic queries (`augir filter`'s output: `queries.jsonl`, `qrels/train.tsv`). Output, written atomically:

- `queries.jsonl`: the training queries that gained a label (their real text);
- `qrels/train.tsv`: the new (training query, document) positives, grade 1;
- `provenance.jsonl`: one record per new pair, in training order: weight, the synthetic query that caused it, its
  text, the cosine, the encoder and the settings.

How the weights become training signal (`weighting`): MultipleNegativesRankingLoss takes no per-pair weight, so
the weight decides which pairs are trained on. `ranked` writes the pairs strongest first, so `train.infused_pairs: N`
takes the N most similar (and smaller N nest in larger ones); `uniform` keeps the synthetic queries' order (the
seeded passage order of augment), which makes infused scales nest with the synthetic ones they came from.
With `method: none` the folder holds no pairs, and train never reads it unless `train.infused_pairs` > 0.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from augir.data.beir import BeirDataset, read_generated_pairs
from augir.errors import AugirError
from augir.fileio import atomic_folder, read_jsonl, write_jsonl
from augir.infusion.skim import InfusedJudgment, SyntheticQuery, skim_mapping
from augir.params import InfuseParams

TRAIN_SPLIT = "train"
PROVENANCE_FILE = "provenance.jsonl"


def run_infusion(dataset: BeirDataset, synthetic_dir: Path, params: InfuseParams, out_dir: Path,
                 encoder: Any | None = None) -> dict[str, Any]:
    """Write the infused judgments to `out_dir`; return the counts for metrics/infuse.json."""
    if TRAIN_SPLIT not in dataset.qrels:
        raise AugirError(f"infuse: the dataset has no {TRAIN_SPLIT!r} qrels (splits: {', '.join(dataset.qrels)})")
    generated = read_generated_pairs(synthetic_dir)
    for query_id, _, doc_id in generated:
        if doc_id not in dataset.corpus:
            raise AugirError(f"{synthetic_dir / 'qrels' / 'train.tsv'}: passage {doc_id!r} of {query_id} is not in the corpus")
    protected = {query_id for split, judged in dataset.qrels.items() if split != TRAIN_SPLIT for query_id in judged}
    training = {qid: text for qid, text in dataset.split_queries(TRAIN_SPLIT).items() if qid not in protected}
    judgments: list[InfusedJudgment] = []
    counts: dict[str, Any] = {"candidates": 0, "skipped_existing": 0, "merged": 0, "synthetic_queries_used": 0}
    if params.method == "skim" and generated and training:
        if encoder is None:
            from augir.retrieval.encoders import load_encoder

            encoder = load_encoder(params.encoder)
        synthetic = [SyntheticQuery(query_id, doc_id) for query_id, _, doc_id in generated]
        training_ids = list(training)
        judgments, mapped = skim_mapping(
            synthetic, _encode(encoder, [text for _, text, _ in generated], params.batch_size, "synthetic queries"),
            training_ids, _encode(encoder, [training[qid] for qid in training_ids], params.batch_size, "training queries"),
            dataset.qrels[TRAIN_SPLIT], top_k=params.top_k, min_similarity=params.min_similarity,
            protected_query_ids=protected,
        )
        counts = {"candidates": mapped.candidates, "skipped_existing": mapped.skipped_existing, "merged": mapped.merged,
                  "synthetic_queries_used": mapped.synthetic_queries_used}
        if params.weighting == "uniform":
            order = {query_id: position for position, (query_id, _, _) in enumerate(generated)}
            judgments.sort(key=lambda j: (order[j.synthetic_query_id], j.query_id))
    texts = {query_id: text for query_id, text, _ in generated}
    _write_infused(judgments, training, texts, params, out_dir)
    gained = {judgment.query_id for judgment in judgments}
    return {
        "method": params.method,
        "encoder": params.encoder if params.method != "none" else None,
        "synthetic_queries": len(generated),
        **counts,
        "training_queries": len(training),
        "new_pairs": len(judgments),
        "training_queries_gained": len(gained),
        "mean_labels_gained": round(len(judgments) / len(gained), 4) if gained else 0.0,
        "mean_weight": round(sum(j.weight for j in judgments) / len(judgments), 4) if judgments else 0.0,
    }


def _encode(encoder: Any, texts: list[str], batch_size: int, what: str):
    print(f"infuse: encoding {len(texts)} {what}")
    return encoder.encode_query(texts, batch_size=batch_size, show_progress_bar=True, convert_to_numpy=True,
                                normalize_embeddings=True)


def _write_infused(judgments: list[InfusedJudgment], training: dict[str, str], synthetic_texts: dict[str, str],
                   params: InfuseParams, out_dir: Path) -> None:
    gained = list(dict.fromkeys(judgment.query_id for judgment in judgments))
    settings = {"method": params.method, "encoder": params.encoder, "top_k": params.top_k,
                "min_similarity": params.min_similarity, "weighting": params.weighting}
    with atomic_folder(out_dir) as staging:
        write_jsonl(staging / "queries.jsonl", ({"_id": query_id, "text": training[query_id]} for query_id in gained))
        (staging / "qrels").mkdir()
        rows = "".join(f"{j.query_id}\t{j.doc_id}\t1\n" for j in judgments)
        (staging / "qrels" / "train.tsv").write_text("query-id\tcorpus-id\tscore\n" + rows, encoding="utf-8")
        write_jsonl(staging / PROVENANCE_FILE, (
            {"query_id": j.query_id, "doc_id": j.doc_id, "weight": round(j.weight, 6),
             "synthetic_query_id": j.synthetic_query_id, "synthetic_query": synthetic_texts[j.synthetic_query_id],
             "similarity": round(j.similarity, 6), **settings}
            for j in judgments
        ))


def read_infused(folder: Path) -> list[tuple[str, str, float]]:
    """(training query id, document id, weight) of an infused folder, in training order."""
    path = folder / PROVENANCE_FILE
    if not path.exists():
        raise AugirError(f"{path}: not found (run the infuse stage, or set train.infused_pairs: 0)")
    records = read_jsonl(path)
    for number, record in enumerate(records, start=1):
        if not {"query_id", "doc_id", "weight"} <= set(record):
            raise AugirError(f"{path}:{number}: needs query_id, doc_id and weight")
    return [(str(r["query_id"]), str(r["doc_id"]), float(r["weight"])) for r in records]
