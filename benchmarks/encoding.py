"""Encoding speed and agreement: the retriever run by torch against each other `encode.backend`, on SciFact.

Every encoder is loaded once; the same SciFact passages are encoded in rounds (torch, openvino, onnx, onnx-int8,
torch, ...), each backend's speed against the torch pass of its round reported per round with the median, and the
embeddings compared with torch's (cosine per passage). Then the full SciFact and Cranfield corpora are encoded
and their test splits scored with each backend: every reported measure, and its largest difference to torch's.

    .venv/bin/python benchmarks/encoding.py --passages 1000 --pairs 3
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import time
from pathlib import Path

import numpy as np

RESULTS = Path(__file__).with_name("results")
DATASETS = Path(__file__).resolve().parents[1].parent / "shared" / "datasets"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default="minilm-l6")
    parser.add_argument("--backends", default="openvino,onnx,onnx-int8", help="compared with torch, comma-separated")
    parser.add_argument("--passages", type=int, default=1000)
    parser.add_argument("--pairs", type=int, default=3, help="rounds of every backend")
    parser.add_argument("--batch-size", type=int, default=64)
    parser.add_argument("--max-seq-length", type=int, default=None, help="default: the model's own")
    parser.add_argument("--metrics-on", default="scifact,cranfield", help="datasets scored; empty: none")
    parser.add_argument("--out", type=Path, default=RESULTS / "encoding.json")
    args = parser.parse_args()

    from augir.data.beir import document_text, load_beir
    from augir.retrieval.encoders import load_encoder
    from augir.retrieval.evaluate import evaluate_model

    scifact = load_beir(DATASETS / "scifact")
    texts = [document_text(scifact.corpus[doc_id]) for doc_id in sorted(scifact.corpus)[:args.passages]]
    names = ["torch", *args.backends.split(",")]
    encoders, load_seconds = {}, {}
    for name in names:
        started = time.perf_counter()
        encoders[name] = load_encoder(args.model, max_seq_length=args.max_seq_length, backend=name)
        load_seconds[name] = round(time.perf_counter() - started, 2)  # conversion or export included

    seconds: dict[str, list[float]] = {name: [] for name in names}
    embeddings = {}
    for _ in range(args.pairs):
        for name in names:
            started = time.perf_counter()
            embeddings[name] = encoders[name].encode_document(texts, batch_size=args.batch_size,
                                                              normalize_embeddings=True)
            seconds[name].append(round(time.perf_counter() - started, 2))
    backends = {}
    for name in names[1:]:
        ratios = [round(t / b, 3) for t, b in zip(seconds["torch"], seconds[name])]
        cosines = (embeddings["torch"] * embeddings[name]).sum(axis=1)
        backends[name] = {"speedup_per_round": ratios, "speedup_median": statistics.median(ratios),
                          "passages_per_second_median": round(len(texts) / statistics.median(seconds[name]), 2),
                          "cosine_min": float(cosines.min()), "cosine_mean": float(cosines.mean()),
                          "max_abs_difference": float(np.abs(embeddings["torch"] - embeddings[name]).max())}
    result = {"model": args.model, "passages": len(texts), "batch_size": args.batch_size,
              "max_seq_length": encoders["torch"].max_seq_length, "rounds": args.pairs, "seconds": seconds,
              "load_seconds": load_seconds, "backends": backends, "cpus": len(os.sched_getaffinity(0)),
              "load_average": list(os.getloadavg())}
    result["test_metrics"] = {}
    for dataset_name in filter(None, args.metrics_on.split(",")):
        dataset = scifact if dataset_name == "scifact" else load_beir(DATASETS / dataset_name)
        scores = {}
        for name, encoder in encoders.items():
            _, evaluation = evaluate_model(encoder, dataset, split="test", top_k=1000, batch_size=args.batch_size)
            scores[name] = {key: value for key, value in evaluation.aggregate.items() if key != "num_queries"}
        for name in names[1:]:
            scores[name]["largest_difference_to_torch"] = max(
                abs(scores[name][key] - scores["torch"][key]) for key in scores["torch"])
        result["test_metrics"][dataset_name] = scores
        print(dataset_name, json.dumps(scores), flush=True)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(result, indent=2) + "\n")
    print(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
