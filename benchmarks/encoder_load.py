"""What the weights cache saves for `encode.backend` onnx, onnx-int8 and openvino: the retriever converted at the
load (export, quantization, OpenVINO conversion) against read from the cache (augir.retrieval.onnx, .openvino).

Each load runs in a fresh process, as the encode and evaluate stages do, and the two kinds alternate (cold warm
cold warm ...): a cold load gets an empty cache folder, a warm one the folder its cold load filled. Reports the
seconds of `load_encoder` and of the whole process, the ratio per pair and its median, and the largest difference
between the two loads' embeddings of the same texts (0: the cached model computes what the converted one did).

    .venv/bin/python benchmarks/encoder_load.py --pairs 2
    .venv/bin/python benchmarks/encoder_load.py --model models/retriever --backends onnx --pairs 3
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import tempfile
import time
from pathlib import Path

from fresh_process import run_in_fresh_process  # benchmarks/ is the script's folder, on sys.path

RESULTS = Path(__file__).with_name("results")
TEXTS = ["Plants turn light into sugar.", "Iron oxide forms when iron reacts with oxygen and water.", "moon"]


def one_load(model: str, backend: str) -> None:
    from augir.retrieval.encoders import load_encoder

    started = time.perf_counter()
    encoder = load_encoder(model, backend=backend)
    seconds = time.perf_counter() - started
    embeddings = encoder.encode_document(TEXTS, normalize_embeddings=True)
    print(json.dumps({"load_seconds": round(seconds, 2), "embeddings": embeddings.tolist()}))


def run_child(model: str, backend: str, cache: Path) -> dict:
    return run_in_fresh_process(__file__, ["--model", model, "--backends", backend], cache, f"{backend} load of {model}")


def largest_difference(first: list[list[float]], second: list[list[float]]) -> float:
    return max(abs(a - b) for row_a, row_b in zip(first, second, strict=True) for a, b in zip(row_a, row_b, strict=True))


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--model", default="minilm-l2", help="a built-in encoder name or a folder (models/retriever)")
    parser.add_argument("--backends", default="onnx,onnx-int8,openvino")
    parser.add_argument("--pairs", type=int, default=2)
    parser.add_argument("--child", action="store_true")
    parser.add_argument("--out", type=Path, default=None)
    args = parser.parse_args()
    if args.child:
        one_load(args.model, args.backends)
        return
    summary: dict = {"model": args.model, "backends": {}}
    with tempfile.TemporaryDirectory() as scratch:
        for index in range(args.pairs):
            for backend in args.backends.split(","):
                cache = Path(scratch) / f"{backend}-{index}"  # empty: this pair's cold load converts and fills it
                cold, warm = run_child(args.model, backend, cache), run_child(args.model, backend, cache)
                pair = {"cold_load_seconds": cold["load_seconds"], "warm_load_seconds": warm["load_seconds"],
                        "cold_process_seconds": cold["process_seconds"], "warm_process_seconds": warm["process_seconds"],
                        "load_speedup": round(cold["load_seconds"] / warm["load_seconds"], 1),
                        "process_speedup": round(cold["process_seconds"] / warm["process_seconds"], 2),
                        "largest_embedding_difference": largest_difference(cold["embeddings"], warm["embeddings"])}
                summary["backends"].setdefault(backend, {"pairs": []})["pairs"].append(pair)
                print(backend, json.dumps(pair), flush=True)
    for result in summary["backends"].values():
        result["median_load_speedup"] = statistics.median(p["load_speedup"] for p in result["pairs"])
        result["median_process_speedup"] = statistics.median(p["process_speedup"] for p in result["pairs"])
        result["median_seconds_saved_per_process"] = round(statistics.median(
            p["cold_process_seconds"] - p["warm_process_seconds"] for p in result["pairs"]), 2)
    summary["load_average_end"] = os.getloadavg()[0]
    out = args.out or RESULTS / "encoder_load.json"
    out.write_text(json.dumps(summary, indent=2) + "\n")
    print(json.dumps({name: {k: v for k, v in r.items() if k != "pairs"} for name, r in summary["backends"].items()}))


if __name__ == "__main__":
    main()
