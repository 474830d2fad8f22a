"""How much do approximate faiss indexes lose against the exact one? Recall@100 of each against Flat on SciFact.

SciFact's corpus (5,183 passages) and test queries (300) are encoded once with all-MiniLM-L6-v2 (the offline
`minilm-l6`, max_seq_length 128 to keep it cheap); each index is built from the same embeddings, trained on
all of them where it trains (encode.seed 0), and searched for the top 100. Reported per index: overlap@100 with
Flat's top 100 (mean over queries; 1.0 = the same documents), nDCG@10 and Recall@100 against the qrels, and
seconds to build and to search.

    HF_HUB_OFFLINE=1 nice -n 19 .venv/bin/python benchmarks/index_recall.py
"""

from __future__ import annotations

import argparse
import json
import platform
import time
from pathlib import Path

import numpy as np

from augir.data.beir import load_beir
from augir.retrieval.encoders import load_encoder
from augir.retrieval.evaluate import metrics_record
from augir.retrieval.index import IndexOptions, build_index, encode_corpus, encode_queries, search
from augir.retrieval.metrics import evaluate_run

SCIFACT = Path(__file__).resolve().parents[2] / "shared" / "datasets" / "scifact"
RESULTS = Path(__file__).with_name("results")
INDEXES = (("Flat", {}), ("HNSW32", {"ef_search": 128}), ("IVF256,Flat", {"nprobe": 16}), ("IVF256,PQ16", {"nprobe": 16}))
TOP_K = 100


def overlap(exact: dict[str, dict[str, float]], approximate: dict[str, dict[str, float]]) -> float:
    """Mean share of Flat's top k that the approximate index also returns (recall@k against exact search)."""
    return float(np.mean([len(set(exact[q]) & set(approximate[q])) / len(exact[q]) for q in exact]))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--dataset", type=Path, default=SCIFACT)
    parser.add_argument("--max-seq-length", type=int, default=128)
    parser.add_argument("--out", type=Path, default=RESULTS / "index_recall_scifact.json")
    args = parser.parse_args()

    dataset = load_beir(args.dataset)
    encoder = load_encoder("minilm-l6", max_seq_length=args.max_seq_length)
    started = time.perf_counter()
    doc_ids, embeddings = encode_corpus(encoder, dataset, batch_size=64)
    query_ids, queries = encode_queries(encoder, dataset.split_queries("test"), batch_size=64)
    encode_seconds = time.perf_counter() - started

    runs, rows = {}, []
    for factory, depth in INDEXES:
        started = time.perf_counter()
        dense = build_index(doc_ids, embeddings, options=IndexOptions(factory=factory, train_sample=len(doc_ids),
                                                                      **depth))
        built = time.perf_counter() - started
        started = time.perf_counter()
        run = search(dense, query_ids, queries, TOP_K)
        searched = time.perf_counter() - started
        runs[factory] = run
        record = metrics_record(evaluate_run(dataset.qrels["test"], run), dataset, split="test", top_k=TOP_K,
                                search=dense.search_record())
        rows.append({**dense.search_record(), "overlap_at_100_with_flat": round(overlap(runs["Flat"], run), 4),
                     "ndcg@10": round(record["ndcg_at_10"], 4), "recall@100": round(record["recall_at_100"], 4),
                     "build_seconds": round(built, 3), "search_seconds": round(searched, 3)})
        print(json.dumps(rows[-1]))
    result = {"dataset": "scifact", "passages": len(doc_ids), "queries": len(query_ids), "model": "minilm-l6",
              "max_seq_length": args.max_seq_length, "top_k": TOP_K, "encode_seconds": round(encode_seconds, 1),
              "indexes": rows, "cpus": len(__import__("os").sched_getaffinity(0)), "machine": platform.machine()}
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(result, indent=2) + "\n")
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
