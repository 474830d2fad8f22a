"""Encoding speed and agreement: the retriever run by torch against OpenVINO (`encode.backend`), on SciFact.

Both encoders are loaded once; the same passages are encoded alternately (torch, openvino, torch, ...), each
pair's speed ratio reported with the median, and the embeddings compared (cosine per passage). Then the full
SciFact corpus is encoded and its test split scored with each backend: nDCG@10, Recall@100.

    .venv/bin/python benchmarks/encoding.py --passages 1000 --pairs 3
"""

from __future__ import annotations

import argparse
import json
import statistics
import time
from pathlib import Path

import numpy as np

RESULTS = Path(__file__).with_name("results")
SCIFACT = Path(__file__).resolve().parents[1].parent / "shared" / "datasets" / "scifact"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default="minilm-l6")
    parser.add_argument("--passages", type=int, default=1000)
    parser.add_argument("--pairs", type=int, default=3)
    parser.add_argument("--batch-size", type=int, default=64)
    parser.add_argument("--max-seq-length", type=int, default=None, help="default: the model's own")
    parser.add_argument("--no-metrics", action="store_true", help="skip the full-corpus nDCG comparison")
    parser.add_argument("--out", type=Path, default=RESULTS / "encoding.json")
    args = parser.parse_args()

    from augir.data.beir import document_text, load_beir
    from augir.retrieval.encoders import load_encoder
    from augir.retrieval.evaluate import evaluate_model

    dataset = load_beir(SCIFACT)
    texts = [document_text(dataset.corpus[doc_id]) for doc_id in sorted(dataset.corpus)[:args.passages]]
    started = time.perf_counter()
    encoders = {"torch": load_encoder(args.model, max_seq_length=args.max_seq_length)}
    load_torch = time.perf_counter() - started
    started = time.perf_counter()
    encoders["openvino"] = load_encoder(args.model, max_seq_length=args.max_seq_length, backend="openvino")
    load_openvino = time.perf_counter() - started  # includes OpenVINO's conversion and compilation

    seconds: dict[str, list[float]] = {"torch": [], "openvino": []}
    embeddings = {}
    for _ in range(args.pairs):
        for name in ("torch", "openvino"):
            started = time.perf_counter()
            embeddings[name] = encoders[name].encode_document(texts, batch_size=args.batch_size,
                                                              normalize_embeddings=True)
            seconds[name].append(time.perf_counter() - started)
    ratios = [t / o for t, o in zip(seconds["torch"], seconds["openvino"])]
    cosines = (embeddings["torch"] * embeddings["openvino"]).sum(axis=1)
    result = {
        "model": args.model, "passages": len(texts), "batch_size": args.batch_size,
        "max_seq_length": encoders["torch"].max_seq_length, "pairs": args.pairs,
        "seconds": seconds, "speedup_per_pair": [round(r, 3) for r in ratios],
        "speedup_median": round(statistics.median(ratios), 3),
        "load_seconds": {"torch": round(load_torch, 2), "openvino": round(load_openvino, 2)},
        "cosine_min": float(cosines.min()), "cosine_mean": float(cosines.mean()),
        "max_abs_difference": float(np.abs(embeddings["torch"] - embeddings["openvino"]).max()),
    }
    if not args.no_metrics:
        result["scifact_test"] = {}
        for name, encoder in encoders.items():
            _, evaluation = evaluate_model(encoder, dataset, split="test", top_k=1000, batch_size=args.batch_size)
            result["scifact_test"][name] = {key: evaluation.aggregate[key] for key in ("ndcg_at_10", "recall_at_100")}
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(result, indent=2) + "\n")
    print(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
