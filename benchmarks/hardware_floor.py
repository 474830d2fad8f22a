"""How close the default run's hot paths come to this machine's matrix-multiply speed.

For each hot path of the default run (augment's generation, train's steps, encode's corpus pass) it counts the
floating-point operations the path executes (torch's `FlopCounterMode`: matrix products, padding included), times
the same work without the counter, and divides: achieved GFLOP/s. The machine's own rate is a float32 `torch.mm`
at the model's shapes, measured between the workloads (peak, generation, peak, training, peak, encoding, ... for
`--rounds`), so each workload's share of the peak is read against a peak measured beside it. From the FLOPs per
unit it gives the seconds the default run's workload would take at the measured peak: the floor no engine that
keeps float32 arithmetic can go below on this machine.

    OMP_WAIT_POLICY=PASSIVE HF_HUB_OFFLINE=1 .venv/bin/python benchmarks/hardware_floor.py --rounds 2
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import time
from pathlib import Path
from typing import Any, Callable

import torch
from torch.utils.flop_counter import FlopCounterMode

REPO = Path(__file__).resolve().parents[1]
RESULTS = Path(__file__).with_name("results")
DEFAULT_RUN = {"generation": 200, "training": 56, "encoding": 1851}  # passages, steps of 32 pairs, documents


def matmul_gflops(rows: int = 4096, inner: int = 576, cols: int = 1536, repeats: int = 20) -> float:
    x, w = torch.randn(rows, inner), torch.randn(inner, cols)
    for _ in range(3):
        x @ w
    started = time.perf_counter()
    for _ in range(repeats):
        x @ w
    return 2 * rows * inner * cols * repeats / (time.perf_counter() - started) / 1e9


def counted_flops(work: Callable[[], Any]) -> int:
    counter = FlopCounterMode(display=False)
    with counter:
        work()
    return counter.get_total_flops()


def timed(work: Callable[[], Any]) -> float:
    started = time.perf_counter()
    work()
    return time.perf_counter() - started


def generation_work(dataset: Any, passages: int) -> tuple[Callable[[], Any], int]:
    """augir's default generation path (prefix cache, length-sorted batches of runtime.batch_size) on the default
    run's prompts."""
    from augir.augmentation.augment import PromptBuilder, by_prompt_length, choose_passages, plan_jobs, sampling_of
    from augir.augmentation.backends.transformers_backend import TransformersBackend
    from augir.params import load_params

    all_params = load_params(REPO / "params.yaml")
    params, size = all_params.augment, all_params.runtime.batch_size
    builder = PromptBuilder(dataset, params)
    jobs = by_prompt_length(plan_jobs(choose_passages(dataset, passages, params.seed), params), builder)
    prompts = [builder.prompt(job) for job in jobs]
    backend = TransformersBackend.load(params.generator)
    backend.complete(prompts[:2], [0, 0], sampling_of(params))  # the prefix's cache, computed once per run

    def work() -> None:
        for start in range(0, len(prompts), size):
            batch = prompts[start : start + size]
            backend.complete(batch, [job.seed for job in jobs[start : start + size]], sampling_of(params))

    return work, len(prompts)


def semanlink_texts(dataset: Any) -> tuple[list[tuple[str, str]], list[str]]:
    from augir.data.beir import document_text

    pairs = [(dataset.queries[q], document_text(dataset.corpus[d])) for q, docs in dataset.qrels["train"].items()
             for d in docs if d in dataset.corpus and q in dataset.queries]
    return pairs, [document_text(doc) for doc in dataset.corpus.values()]


def training_work(steps: int, pairs: list[tuple[str, str]]) -> tuple[Callable[[], Any], int]:
    """The train stage's step: MiniLM-L2 at 128 tokens, its loss (augir.training.train.make_loss), 32 pairs, AdamW."""
    from augir.params import load_params
    from augir.retrieval.encoders import load_encoder
    from augir.training.train import make_loss

    params = load_params(REPO / "params.yaml").train
    encoder = load_encoder(params.model, max_seq_length=params.max_seq_length)
    loss = make_loss(encoder, params)
    optimizer = torch.optim.AdamW(encoder.parameters(), lr=params.learning_rate)

    def work() -> None:
        for step in range(steps):
            batch = pairs[step * params.batch_size : (step + 1) * params.batch_size]
            features = [encoder.tokenize([text for text, _ in batch]), encoder.tokenize([text for _, text in batch])]
            optimizer.zero_grad()
            loss(features, None).backward()
            optimizer.step()

    return work, steps


def encoding_work(documents: list[str]) -> tuple[Callable[[], Any], int]:
    """The encode stage's pass: MiniLM-L2 at 128 tokens, batches of 64."""
    from augir.retrieval.encoders import load_encoder

    encoder = load_encoder("minilm-l2", max_seq_length=128)

    def work() -> None:
        encoder.encode_document(documents, batch_size=64, show_progress_bar=False)

    return work, len(documents)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--passages", type=int, default=32)
    parser.add_argument("--steps", type=int, default=4)
    parser.add_argument("--documents", type=int, default=256)
    args = parser.parse_args()
    from augir.data.semanlink import build_semanlink

    dataset = build_semanlink(seed=0, test_fraction=0.5)  # the default run's corpus and split
    pairs, documents = semanlink_texts(dataset)
    works = {
        "generation": generation_work(dataset, args.passages),
        "training": training_work(args.steps, pairs),
        "encoding": encoding_work(documents[: args.documents]),
    }
    flops = {name: counted_flops(work) for name, (work, _) in works.items()}
    runs: list[dict[str, Any]] = []
    for round_number in range(args.rounds):
        for name, (work, _) in works.items():
            peak_before = matmul_gflops()
            seconds = timed(work)
            peak_after = matmul_gflops()
            peak = (peak_before + peak_after) / 2
            achieved = flops[name] / seconds / 1e9
            runs.append({"round": round_number, "workload": name, "seconds": round(seconds, 2),
                         "gflops": round(achieved, 1), "peak_gflops": round(peak, 1),
                         "share_of_peak": round(achieved / peak, 3)})
            print(runs[-1], flush=True)
    summary = {}
    for name, (_, units) in works.items():
        mine = [run for run in runs if run["workload"] == name]
        peak = statistics.median(run["peak_gflops"] for run in mine)
        per_unit = flops[name] / units
        seconds_per_unit = statistics.median(run["seconds"] for run in mine) / units
        summary[name] = {
            "gflop_per_unit": round(per_unit / 1e9, 3),
            "share_of_peak_median": statistics.median(run["share_of_peak"] for run in mine),
            "default_run_units": DEFAULT_RUN[name],
            "default_run_seconds_at_peak": round(per_unit * DEFAULT_RUN[name] / (peak * 1e9), 1),
            "default_run_seconds_at_measured_rate": round(seconds_per_unit * DEFAULT_RUN[name], 1),
        }
    result = {"units": {"generation": "passage", "training": "step of 32 pairs", "encoding": "document"},
              "cpus": os.cpu_count(), "threads": torch.get_num_threads(), "load_average_end": os.getloadavg(),
              "omp_wait_policy": os.environ.get("OMP_WAIT_POLICY"), "summary": summary, "runs": runs}
    RESULTS.mkdir(exist_ok=True)
    (RESULTS / "hardware_floor.json").write_text(json.dumps(result, indent=2) + "\n")
    print(json.dumps(summary, indent=2))


if __name__ == "__main__":
    main()
