"""How much do approximate faiss indexes lose against the exact one? Recall@100 of each against Flat.

On SciFact (default):

SciFact's corpus (5,183 passages) and test queries (300) are encoded once with all-MiniLM-L6-v2 (the offline
`minilm-l6`, max_seq_length 128 to keep it cheap); each index is built from the same embeddings, trained on
all of them where it trains (encode.seed 0), and searched for the top 100. Reported per index: overlap@100 with
Flat's top 100 (mean over queries; 1.0 = the same documents), nDCG@10 and Recall@100 against the qrels, and
seconds to build and to search.

    HF_HUB_OFFLINE=1 nice -n 19 .venv/bin/python benchmarks/index_recall.py

On a generated corpus (`--generated 100000`: the synthetic passages of benchmarks/index_memory.py, 1,000 queries
of 8 words drawn from as many random passages), through the encode stage's own path: `index_corpus` streams the
corpus through minilm-l6 into the exact (Flat) folder, and every approximate index is built from that
embeddings file with `build_on_disk` (trained on a seeded sample of encode.train_sample, 100,000) and read back
with `load_index`. No qrels: only overlap@100 with Flat, and seconds.

    HF_HUB_OFFLINE=1 nice -n 19 .venv/bin/python benchmarks/index_recall.py --generated 100000
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


def generated(size: int, work: Path, max_seq_length: int, out: Path) -> None:
    """Recall@100 against Flat on a generated corpus, every index built and read as the pipeline does."""
    import os
    import random
    import shutil
    import sys

    sys.path.insert(0, str(Path(__file__).parent))
    from index_memory import write_corpus

    from augir.data.beir import iter_corpus
    from augir.retrieval.index import EMBEDDINGS_FILE, IDS_FILE, INFO_FILE, build_on_disk, index_corpus, load_index
    from augir.retrieval.on_disk import EmbeddingsFile

    corpus = write_corpus(work, size)
    chosen = set(random.Random(1).sample(range(size), 1000))
    rng = random.Random(2)
    texts = {f"q{n}": " ".join(rng.sample(text.split(), 8))
             for n, (_, text) in enumerate(t for i, t in enumerate(iter_corpus(corpus)) if i in chosen)}
    exact_folder = work / "recall" / "Flat"
    started = time.perf_counter()
    if not (exact_folder / INFO_FILE).is_file():
        index_corpus("minilm-l6", corpus.parent, exact_folder, batch_size=64, max_seq_length=max_seq_length)
    encode_seconds = time.perf_counter() - started
    encoder = load_encoder("minilm-l6", max_seq_length=max_seq_length)
    query_ids, queries = encode_queries(encoder, texts, batch_size=64)
    runs, rows = {}, []
    for factory, depth in INDEXES:
        folder = work / "recall" / factory
        started = time.perf_counter()
        if factory != "Flat":
            shutil.rmtree(folder, ignore_errors=True)
            folder.mkdir(parents=True)
            info = build_on_disk(EmbeddingsFile.open(exact_folder / EMBEDDINGS_FILE),
                                 IndexOptions(factory=factory, **depth), folder)
            (folder / INFO_FILE).write_text(json.dumps(info))
            for name in (IDS_FILE, EMBEDDINGS_FILE):
                os.link(exact_folder / name, folder / name)
        built = time.perf_counter() - started
        dense = load_index(folder)
        started = time.perf_counter()
        runs[factory] = search(dense, query_ids, queries, TOP_K)
        searched = time.perf_counter() - started
        rows.append({**dense.search_record(), "overlap_at_100_with_flat": round(overlap(runs["Flat"], runs[factory]), 4),
                     "build_seconds": round(built, 2), "search_seconds": round(searched, 3)})
        print(json.dumps(rows[-1]), flush=True)
    result = {"dataset": f"generated-{size}", "passages": size, "queries": len(query_ids), "model": "minilm-l6",
              "max_seq_length": max_seq_length, "top_k": TOP_K, "encode_seconds": round(encode_seconds, 1),
              "indexes": rows, "cpus": len(os.sched_getaffinity(0)), "machine": platform.machine(),
              "load_average": list(os.getloadavg())}
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(result, indent=2) + "\n")
    print(f"wrote {out}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--dataset", type=Path, default=SCIFACT)
    parser.add_argument("--max-seq-length", type=int, default=128)
    parser.add_argument("--generated", type=int, help="passages of a generated corpus (instead of --dataset)")
    parser.add_argument("--work-root", type=Path, default=Path("/tmp/augir-index-recall"))
    parser.add_argument("--out", type=Path)
    args = parser.parse_args()
    if args.generated:
        generated(args.generated, args.work_root / str(args.generated), args.max_seq_length,
                  args.out or RESULTS / f"index_recall_generated_{args.generated}.json")
        return
    args.out = args.out or RESULTS / "index_recall_scifact.json"

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
