"""Simulated missing labels on SciFact: does label infusion (SKIM) find the judgments that were hidden?

1. Hide a seeded share (default 30%) of SciFact's training judgments; the rest are the kept judgments.
2. Augment: SmolLM2-135M writes one claim each for a seeded sample of passages judged in the train split (kept or
   hidden: the whole corpus is too much for a CPU; every method below draws from this same passage pool). Few-shot
   examples come from kept training judgments only; test queries never reach a prompt.
3. Infuse (augir.infusion.skim): map the synthetic queries onto all 809 training queries (minilm-l6 embeddings),
   top 10, cosine >= 0.6, never onto a test query, never onto a kept judgment.
4. Recall of hidden labels (share of hidden judgments recovered) and precision (share of added pairs that are hidden
   judgments; a lower bound, since SciFact has unjudged relevant pairs too), against baselines that add the same
   number of pairs from the same pool (training queries x augmented passages, kept judgments excluded): random,
   BM25-top (highest BM25 score of query vs passage) and dense-top (highest minilm-l6 cosine of query vs passage).
5. Train minilm-l2 (1 epoch, seed 0) on kept, kept + infused, kept + synthetic, all judgments; nDCG@10 and
   Recall@100 on the SciFact test split and Cranfield.

    .venv/bin/python benchmarks/missing_labels.py                 # 64 passages: the size run here (README)
    .venv/bin/python benchmarks/missing_labels.py --passages 300  # a larger pool share, where time allows

On the shared 2-core machine of this project (load average above 10) SmolLM2 took about 290 s per batch of 16
passages, so 64 passages (about a ninth of the 565-passage pool) is what fitted (23 min), and each training
condition took 10-17 min; unloaded both are many times faster.

Generation is resumable (shards under benchmarks/work/); results go to benchmarks/results/missing_labels.json.
"""

from __future__ import annotations

import argparse
import random
import time
from pathlib import Path

import numpy as np

from augir.augmentation.augment import run_augmentation
from augir.data.beir import BeirDataset, document_text, load_beir, read_generated_pairs
from augir.fileio import write_json_atomic
from augir.infusion.skim import SyntheticQuery, skim_mapping
from augir.params import AugmentParams, TrainParams
from augir.retrieval.encoders import load_encoder
from augir.retrieval.evaluate import evaluate_model
from augir.training.pairs import Pair
from augir.training.train import train_encoder
from augir.versions import with_versions

HERE = Path(__file__).resolve().parent
SHARED = HERE.parents[1] / "shared" / "datasets"
Judgment = tuple[str, str]
# grids/cpu-study.yaml's SciFact settings: with `question` and 3 examples SmolLM2 copied an example claim or the
# passage for 25 of 32 passages here; claims with 2 examples and 64-word passages keep a prompt near 330 tokens.
AUGMENT_SETTINGS = {"strategy": "claim", "num_examples": 2, "max_passage_words": 64, "max_new_tokens": 24}


def hide_judgments(train_qrels: dict[str, dict[str, int]], share: float, seed: int) -> tuple[set[Judgment], set[Judgment]]:
    """(kept, hidden): a seeded `share` of the positive training judgments is hidden."""
    positives = sorted((q, d) for q, docs in train_qrels.items() for d, grade in docs.items() if grade > 0)
    hidden = set(random.Random(seed).sample(positives, round(share * len(positives))))
    return set(positives) - hidden, hidden


def as_qrels(judgments: set[Judgment]) -> dict[str, dict[str, int]]:
    qrels: dict[str, dict[str, int]] = {}
    for query_id, doc_id in sorted(judgments):
        qrels.setdefault(query_id, {})[doc_id] = 1
    return qrels


def augment(scifact: BeirDataset, kept: set[Judgment], pool: list[str], passages: int, work: Path) -> tuple[list, float]:
    """Synthetic (query id, text, doc id) for a seeded sample of the pool; few-shot examples from kept judgments."""
    out = work / f"augmented-claim-{passages}"
    started = time.perf_counter()
    if not (out / "queries.jsonl").exists():
        # The corpus is the pool, so augment's seeded passage choice draws from it and examples come from it.
        dataset = BeirDataset(corpus={d: scifact.corpus[d] for d in pool}, queries=scifact.queries,
                              qrels={"train": as_qrels(kept)})
        params = AugmentParams(dataset="scifact", num_passages=passages, batch_size=16, **AUGMENT_SETTINGS)
        run_augmentation(dataset, params, out, work / f"shards-claim-{passages}")
    return read_generated_pairs(out), time.perf_counter() - started


def top_pairs(scores: dict[Judgment, float], count: int, kept: set[Judgment]) -> set[Judgment]:
    """The `count` highest-scoring pairs that are not kept judgments (ties: query id, then document id)."""
    ranked = sorted((pair for pair in scores if pair not in kept), key=lambda p: (-scores[p], p))
    return set(ranked[:count])


def bm25_scores(queries: dict[str, str], passages: dict[str, str]) -> dict[Judgment, float]:
    import bm25s

    doc_ids = sorted(passages)
    retriever = bm25s.BM25()
    retriever.index(bm25s.tokenize([passages[d] for d in doc_ids], stopwords="en", show_progress=False),
                    show_progress=False)
    query_ids = sorted(queries)
    tokens = bm25s.tokenize([queries[q] for q in query_ids], stopwords="en", show_progress=False)
    rows, scores = retriever.retrieve(tokens, k=len(doc_ids), show_progress=False)
    return {(query_ids[i], doc_ids[r]): float(s) for i in range(len(query_ids)) for r, s in zip(rows[i], scores[i])}


def recovery(added: set[Judgment], hidden: set[Judgment], reachable: set[Judgment]) -> dict[str, float | int]:
    found = added & hidden
    return {
        "pairs": len(added),
        "hidden_found": len(found),
        "recall_hidden": round(len(found) / len(hidden), 4) if hidden else 0.0,
        "recall_reachable": round(len(found) / len(reachable), 4) if reachable else 0.0,
        "precision": round(len(found) / len(added), 4) if added else 0.0,
    }


def pairs_of(dataset: BeirDataset, judgments: list[Judgment]) -> list[Pair]:
    return [Pair(dataset.queries[q], document_text(dataset.corpus[d])) for q, d in judgments]


def train_and_evaluate(name: str, pairs: list[Pair], work: Path, evaluation: dict[str, BeirDataset]) -> dict:
    started = time.perf_counter()
    params = TrainParams(datasets=["scifact"], model="minilm-l2", epochs=1, batch_size=32, seed=0)
    stats = train_encoder(pairs, params, work / f"model-{name}")
    encoder = load_encoder(str(work / f"model-{name}"))
    scores = {}
    for dataset_name, dataset in evaluation.items():
        _, result = evaluate_model(encoder, dataset, split="test", top_k=1000)
        means = result.to_json_dict()
        scores[dataset_name] = {key: means[key] for key in ("ndcg_at_10", "recall_at_100")}
    return {"pairs": len(pairs), "steps": stats["steps"], **scores, "seconds": round(time.perf_counter() - started, 1)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--share", type=float, default=0.3, help="share of training judgments hidden")
    parser.add_argument("--passages", type=int, default=64, help="passages augmented (one query each)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--top-k", type=int, default=10)
    parser.add_argument("--min-similarity", type=float, default=0.6)
    parser.add_argument("--skip-training", action="store_true")
    parser.add_argument("--work", type=Path, default=HERE / "work" / "missing_labels")
    parser.add_argument("--out", type=Path, default=HERE / "results" / "missing_labels.json")
    args = parser.parse_args()

    scifact = load_beir(SHARED / "scifact")
    kept, hidden = hide_judgments(scifact.qrels["train"], args.share, args.seed)
    pool = sorted({d for q, docs in scifact.qrels["train"].items() for d in docs})
    synthetic, augment_seconds = augment(scifact, kept, pool, args.passages, args.work)
    augmented_docs = {d for _, _, d in synthetic}
    reachable = {(q, d) for q, d in hidden if d in augmented_docs}
    print(f"hidden {len(hidden)} of {len(kept) + len(hidden)} judgments; {len(synthetic)} synthetic queries for "
          f"{len(augmented_docs)} passages ({augment_seconds:.0f} s); {len(reachable)} hidden judgments reachable")

    # Every train query is a candidate: one whose only judgment was hidden is still a known training query.
    training_ids = sorted(scifact.qrels["train"])
    test_ids = set(scifact.qrels["test"])
    mapper = load_encoder("minilm-l6")
    started = time.perf_counter()
    synthetic_vectors = mapper.encode_query([t for _, t, _ in synthetic], batch_size=64, normalize_embeddings=True)
    training_vectors = mapper.encode_query([scifact.queries[q] for q in training_ids], batch_size=64,
                                           normalize_embeddings=True)
    infused, counts = skim_mapping(
        [SyntheticQuery(q, d) for q, _, d in synthetic], synthetic_vectors, training_ids, training_vectors,
        as_qrels(kept), top_k=args.top_k, min_similarity=args.min_similarity, protected_query_ids=test_ids)
    infuse_seconds = time.perf_counter() - started
    infused_pairs = [(j.query_id, j.doc_id) for j in infused]
    count = len(infused_pairs)

    candidates = [(q, d) for q in training_ids for d in sorted(augmented_docs) if (q, d) not in kept]
    rng = random.Random(args.seed)
    passages = {d: document_text(scifact.corpus[d]) for d in sorted(augmented_docs)}
    passage_ids = sorted(passages)
    passage_vectors = mapper.encode_document([passages[d] for d in passage_ids], batch_size=64,
                                             normalize_embeddings=True)
    cosines = np.asarray(training_vectors) @ np.asarray(passage_vectors).T
    dense = {(q, d): float(cosines[i, j]) for i, q in enumerate(training_ids) for j, d in enumerate(passage_ids)}
    methods = {
        "skim": set(infused_pairs),
        "random": set(rng.sample(candidates, min(count, len(candidates)))),
        "bm25_top": top_pairs(bm25_scores({q: scifact.queries[q] for q in training_ids}, passages), count, kept),
        "dense_top": top_pairs(dense, count, kept),
    }
    labels = {name: recovery(added, hidden, reachable) for name, added in methods.items()}
    for name, row in labels.items():
        print(f"{name:10s} {row}")

    result = {
        "settings": vars(args) | {"work": str(args.work), "out": str(args.out), "generator": "smollm2-135m", "augment": AUGMENT_SETTINGS,
                                  "mapping_encoder": "minilm-l6", "trained_model": "minilm-l2"},
        "judgments": {"kept": len(kept), "hidden": len(hidden), "reachable_hidden": len(reachable)},
        "synthetic_queries": len(synthetic),
        "augment_seconds": round(augment_seconds, 1),
        "infuse_seconds": round(infuse_seconds, 1),
        "infusion_counts": {"candidates": counts.candidates, "skipped_existing": counts.skipped_existing,
                            "merged": counts.merged, "synthetic_queries_used": counts.synthetic_queries_used,
                            "training_queries_gained": len({q for q, _ in infused_pairs})},
        "hidden_label_recovery": labels,
    }
    if not args.skip_training:
        evaluation = {"scifact": scifact, "cranfield": load_beir(SHARED / "cranfield")}
        kept_list = sorted(kept)
        runs = {
            "kept": kept_list,
            "kept+infused": kept_list + infused_pairs,
            "all": sorted(kept | hidden),
        }
        training = {name: pairs_of(scifact, judgments) for name, judgments in runs.items()}
        training["kept+synthetic"] = pairs_of(scifact, kept_list) + [
            Pair(text, document_text(scifact.corpus[d])) for _, text, d in synthetic]
        order = ["kept", "kept+infused", "kept+synthetic", "all"]
        result["training"] = {}
        for name in order:
            result["training"][name] = train_and_evaluate(name.replace("+", "-"), training[name], args.work, evaluation)
            print(name, result["training"][name])
            write_json_atomic(args.out, with_versions(result))  # what is finished survives an interruption
    write_json_atomic(args.out, with_versions(result))
    print(f"{args.out} written")


if __name__ == "__main__":
    main()
