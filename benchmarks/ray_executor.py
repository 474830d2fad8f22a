"""What running the augment stage on Ray costs: the local executor against `runtime.executor: ray`, same passages.

Both executors run `run_augmentation` end to end on the same SciFact passages with the same generator folder
(a small random Llama with SmolLM2's tokenizer by default, so that the overhead is what shows; `--generator
smollm2-135m` for the real model), alternating A B A B in one process. Each timed run includes loading the model
(the local executor once, each Ray actor once) and, for Ray, starting the actor pool; the Ray cluster itself is
started once, before the first pair (a cluster outlives runs). Reports each pair's ratio (local seconds / Ray
seconds: above 1, Ray is faster) and the median, and whether both outputs were byte-identical.

    nice -n 19 .venv/bin/python benchmarks/ray_executor.py --passages 32 --pairs 2
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")

RESULTS = Path(__file__).with_name("results")
OUTPUT = ["queries.jsonl", "qrels/train.tsv", "provenance.jsonl"]


def small_generator(folder: Path) -> str:
    """A 2-layer, 64-wide random Llama with SmolLM2's tokenizer, saved to `folder` (seconds to build and load)."""
    import torch
    from transformers import AutoTokenizer, LlamaConfig, LlamaForCausalLM

    from augir.augmentation.generators import gguf_location

    source, filename = gguf_location("smollm2-135m")
    tokenizer = AutoTokenizer.from_pretrained(str(source), gguf_file=filename)
    torch.manual_seed(0)
    config = LlamaConfig(vocab_size=len(tokenizer), hidden_size=64, intermediate_size=128, num_hidden_layers=2,
                         num_attention_heads=2, num_key_value_heads=2, max_position_embeddings=2048,
                         pad_token_id=tokenizer.pad_token_id, eos_token_id=tokenizer.eos_token_id)
    LlamaForCausalLM(config).save_pretrained(folder)
    tokenizer.save_pretrained(folder)
    return str(folder)


def one_run(dataset, params, runtime, out: Path) -> tuple[float, dict[str, bytes], dict]:
    from augir.augmentation.augment import run_augmentation

    started = time.perf_counter()
    stats = run_augmentation(dataset, params, out / "out", out / "work", runtime=runtime)
    seconds = time.perf_counter() - started
    return seconds, {name: (out / "out" / name).read_bytes() for name in OUTPUT}, stats.to_json_dict()


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--passages", type=int, default=32)
    parser.add_argument("--pairs", type=int, default=2)
    parser.add_argument("--batch-size", type=int, default=4)
    parser.add_argument("--actors", type=int, default=2)
    parser.add_argument("--generator", default="small-random", help="small-random, or a generator name or folder")
    parser.add_argument("--max-new-tokens", type=int, default=8)
    parser.add_argument("--out", type=Path, default=RESULTS / "ray_executor.json")
    args = parser.parse_args()

    import ray

    sys.path.insert(0, str(Path(__file__).parent))
    from generation import SCIFACT, default_params

    from augir.data.beir import load_beir
    from augir.params import RuntimeParams

    started = time.perf_counter()
    for attempt in range(3):  # on a loaded machine the raylet can miss Ray's fixed 30 s start deadline
        try:
            ray.init(num_cpus=args.actors, include_dashboard=False, log_to_driver=False)
            break
        except Exception as error:  # noqa: BLE001
            ray.shutdown()
            if attempt == 2 or "timed out during startup" not in str(error):
                raise
    cluster_start = time.perf_counter() - started

    workdir = Path(tempfile.mkdtemp(prefix="ray-bench-"))
    generator = small_generator(workdir / "generator") if args.generator == "small-random" else args.generator
    dataset = load_beir(SCIFACT)
    params = default_params("scifact").model_copy(
        update={"generator": generator, "num_passages": args.passages, "max_new_tokens": args.max_new_tokens})
    runtimes = {
        # one torch thread per actor, and the same CPUs in total for the local executor
        "local": RuntimeParams(batch_size=args.batch_size, threads=args.actors),
        "ray": RuntimeParams(batch_size=args.batch_size, executor="ray", threads=1,
                             ray={"num_actors": args.actors, "num_cpus_per_actor": 1}),
    }
    runs, outputs = [], {}
    for pair in range(args.pairs):
        for name, runtime in runtimes.items():
            seconds, output, stats = one_run(dataset, params, runtime, workdir / f"{name}-{pair}")
            outputs.setdefault(name, output)
            runs.append({"pair": pair, "executor": name, "seconds": round(seconds, 2),
                         "passages_per_second": round(args.passages / seconds, 3), "executor_record": stats["executor"]})
            print(json.dumps(runs[-1]), flush=True)
    ray.shutdown()

    ratios = [round(runs[2 * p]["seconds"] / runs[2 * p + 1]["seconds"], 3) for p in range(args.pairs)]
    report = {
        "generator": args.generator, "passages": args.passages, "batch_size": args.batch_size, "actors": args.actors,
        "max_new_tokens": args.max_new_tokens, "cluster_start_seconds": round(cluster_start, 2), "runs": runs,
        "local_over_ray_per_pair": ratios, "local_over_ray_median": statistics.median(ratios),
        "outputs_identical": outputs["local"] == outputs["ray"],
        "load_average": list(os.getloadavg()), "cpus": os.cpu_count(),
    }
    args.out.write_text(json.dumps(report, indent=2) + "\n")
    print(json.dumps({k: report[k] for k in ["local_over_ray_per_pair", "local_over_ray_median", "outputs_identical"]}))


if __name__ == "__main__":
    main()
