"""What the converted-weights cache saves: loading a built-in GGUF generator converted at the load against read
from the cache (augir.weights_cache).

Each load runs in a fresh process, as every `dvc repro` stage does, and the two kinds alternate (cold warm cold
warm ...): a cold load gets an empty cache folder, a warm one a folder a cold load filled. Reports the seconds of
`load_generator` and of the whole process, the ratio per pair and its median, and whether the two loads gave the
same tensors (a hash of the state dict).

    .venv/bin/python benchmarks/generator_load.py --pairs 3
    .venv/bin/python benchmarks/generator_load.py --generator gemma3-270m --pairs 2
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


def one_load(generator: str) -> None:
    import hashlib

    import numpy as np

    from augir.augmentation.generators import load_generator

    started = time.perf_counter()
    loaded = load_generator(generator)
    seconds = time.perf_counter() - started
    digest = hashlib.sha256()
    for name, tensor in sorted(loaded.model.state_dict().items()):
        digest.update(name.encode())
        digest.update(np.ascontiguousarray(tensor.detach().numpy()).tobytes())
    print(json.dumps({"load_seconds": round(seconds, 2), "weights": loaded.weights, "tensors": digest.hexdigest()}))


def run_child(generator: str, cache: Path) -> dict:
    return run_in_fresh_process(__file__, ["--generator", generator], cache, f"load of {generator}")


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--generator", default="smollm2-135m")
    parser.add_argument("--pairs", type=int, default=3)
    parser.add_argument("--child", action="store_true")
    parser.add_argument("--out", type=Path, default=None)
    args = parser.parse_args()
    if args.child:
        one_load(args.generator)
        return
    pairs = []
    with tempfile.TemporaryDirectory() as scratch:
        for index in range(args.pairs):
            cache = Path(scratch) / f"cache-{index}"  # empty: this pair's cold load converts and fills it
            cold = run_child(args.generator, cache)
            warm = run_child(args.generator, cache)
            pairs.append({"cold": cold, "warm": warm,
                          "load_speedup": round(cold["load_seconds"] / warm["load_seconds"], 1),
                          "process_speedup": round(cold["process_seconds"] / warm["process_seconds"], 2),
                          "same_tensors": cold["tensors"] == warm["tensors"]})
            print(json.dumps(pairs[-1]), flush=True)
    summary = {
        "generator": args.generator,
        "pairs": pairs,
        "median_load_speedup": statistics.median(p["load_speedup"] for p in pairs),
        "median_process_speedup": statistics.median(p["process_speedup"] for p in pairs),
        "all_same_tensors": all(p["same_tensors"] for p in pairs),
        "kinds": sorted({p["cold"]["weights"] for p in pairs} | {p["warm"]["weights"] for p in pairs}),
        "load_average": os.getloadavg()[0],
    }
    out = args.out or RESULTS / f"generator_load_{args.generator}.json"
    out.write_text(json.dumps(summary, indent=2) + "\n")
    print(json.dumps({k: v for k, v in summary.items() if k != "pairs"}))


if __name__ == "__main__":
    main()
