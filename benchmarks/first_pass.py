"""Is the first pass in a fresh process slower than the next, and does OpenMP's wait policy explain it?

Each configuration runs in a fresh process (as every `dvc repro` stage does): load SmolLM2, then read the same
augir-built SciFact prompts three times (`max_new_tokens=1`: prompt reading is ~90% of generation time). The
processes alternate configurations (A B A B ...). Reports each pass's seconds, first/second ratios, and the
ratio between configurations pair by pair.

    .venv/bin/python benchmarks/first_pass.py --prompts 8 --pairs 1
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path

# An empty value keeps libgomp's own default (spin, then sleep) and stops augir from setting PASSIVE.
CONFIGS = {"default": {"OMP_WAIT_POLICY": ""}, "passive": {"OMP_WAIT_POLICY": "PASSIVE"}}
RESULTS = Path(__file__).with_name("results")


def one_process(prompts: int, batch_size: int) -> None:
    import torch

    from augir.augmentation.augment import PromptBuilder, choose_passages, plan_jobs
    from augir.augmentation.backends import Sampling
    from augir.augmentation.backends.transformers_backend import TransformersBackend
    from augir.data.beir import load_beir

    sys.path.insert(0, str(Path(__file__).parent))
    from generation import SCIFACT, default_params

    dataset = load_beir(SCIFACT)
    params = default_params("scifact")
    jobs = plan_jobs(choose_passages(dataset, prompts, params.seed), params)
    builder = PromptBuilder(dataset, params)
    batch = [builder.prompt(job) for job in jobs]
    backend = TransformersBackend.load(params.generator, reuse_prefix=False)
    seconds = []
    for _ in range(3):
        started = time.perf_counter()
        for start in range(0, len(batch), batch_size):
            backend.complete(batch[start : start + batch_size], [0] * batch_size, Sampling(max_new_tokens=1))
        seconds.append(round(time.perf_counter() - started, 2))
    print(json.dumps({"seconds": seconds, "threads": torch.get_num_threads()}))


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--prompts", type=int, default=8)
    parser.add_argument("--batch-size", type=int, default=8)
    parser.add_argument("--pairs", type=int, default=1)
    parser.add_argument("--child", action="store_true")
    args = parser.parse_args()
    if args.child:
        one_process(args.prompts, args.batch_size)
        return
    runs = []
    for pair in range(args.pairs):
        for name, env in CONFIGS.items():
            command = [sys.executable, __file__, "--child", "--prompts", str(args.prompts), "--batch-size",
                       str(args.batch_size)]
            output = subprocess.run(command, env={**os.environ, **env}, capture_output=True, text=True, check=True)
            result = json.loads(output.stdout.strip().splitlines()[-1])
            runs.append({"pair": pair, "config": name, **result})
            print(runs[-1], flush=True)
    first_over_second = {n: [r["seconds"][0] / r["seconds"][1] for r in runs if r["config"] == n] for n in CONFIGS}
    default_over_passive = [
        statistics.mean(a["seconds"]) / statistics.mean(b["seconds"])
        for a, b in zip(runs[0::2], runs[1::2])
    ]
    summary = {
        "runs": runs,
        "first_over_second_median": {n: round(statistics.median(v), 3) for n, v in first_over_second.items()},
        "default_over_passive_per_pair": [round(x, 3) for x in default_over_passive],
        "default_over_passive_median": round(statistics.median(default_over_passive), 3),
        "load_average": os.getloadavg(),
        "cpus": os.cpu_count(),
    }
    RESULTS.mkdir(exist_ok=True)
    (RESULTS / "first_pass.json").write_text(json.dumps(summary, indent=2) + "\n")
    print(json.dumps(summary, indent=2))


if __name__ == "__main__":
    main()
