"""Throughput of augir's augment code path against a bare `model.generate` loop, side by side in one run.

Both generate for the same passages with the same prompts and settings (SmolLM2-135M, greedy, batch 16, stop at
the end of the first line). The ratio of their throughputs (goal >= 0.95) is what augir's own work costs: prompt
building, clean-up, shards, provenance. Then tokens per second at batch sizes 1, 8 and 16.

    .venv/bin/python benchmarks/augment.py                    # SciFact from ../shared/datasets, else Semanlink
    .venv/bin/python benchmarks/augment.py --passages 64 --repeats 3
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time
from pathlib import Path

import torch

from augir.augmentation.augment import PromptBuilder, choose_passages, plan_jobs, run_augmentation, sampling_of
from augir.augmentation.backends.transformers_backend import TransformersBackend
from augir.data.beir import BeirDataset, load_beir
from augir.params import AugmentParams

SHARED_SCIFACT = Path(__file__).resolve().parents[1].parent / "shared" / "datasets" / "scifact"


def load_dataset() -> tuple[str, BeirDataset]:
    if SHARED_SCIFACT.is_dir():
        return "scifact", load_beir(SHARED_SCIFACT)
    from augir.data.semanlink import build_semanlink

    return "semanlink", build_semanlink(seed=0, test_fraction=0.5)


def bare_loop(backend: TransformersBackend, texts: list[str], batch_size: int, max_new_tokens: int) -> float:
    """Seconds for a plain batched generate loop over `texts` (the reference)."""
    tokenizer, model = backend.generator.tokenizer, backend.generator.model
    started = time.perf_counter()
    for start in range(0, len(texts), batch_size):
        encoded = tokenizer(texts[start : start + batch_size], return_tensors="pt", padding=True)
        with torch.inference_mode():
            output = model.generate(**encoded, max_new_tokens=max_new_tokens, do_sample=False,
                                    pad_token_id=tokenizer.pad_token_id, eos_token_id=backend.generator.stop_token_ids)
        tokenizer.batch_decode(output[:, encoded["input_ids"].shape[1] :], skip_special_tokens=True)
    return time.perf_counter() - started


def augir_path(backend: TransformersBackend, dataset: BeirDataset, params: AugmentParams) -> float:
    """Seconds for augir's whole augment path: prompts, generation, clean-up, shards, output files."""
    with tempfile.TemporaryDirectory() as scratch:
        started = time.perf_counter()
        run_augmentation(dataset, params, Path(scratch) / "out", Path(scratch) / "work", backend)
        return time.perf_counter() - started


def tokens_per_second(backend: TransformersBackend, builder: PromptBuilder, params: AugmentParams, batch_size: int,
                      count: int) -> tuple[float, float]:
    jobs = plan_jobs(choose_passages(builder.dataset, count, params.seed), params)
    prompts = [builder.prompt(job) for job in jobs]
    tokens, started = 0, time.perf_counter()
    for start in range(0, len(prompts), batch_size):
        chunk = jobs[start : start + batch_size]
        completions = backend.complete(prompts[start : start + batch_size], [j.seed for j in chunk], sampling_of(params))
        tokens += sum(c.new_tokens for c in completions)
    seconds = time.perf_counter() - started
    return tokens / seconds, len(prompts) / seconds


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--passages", type=int, default=32)
    parser.add_argument("--repeats", type=int, default=2)
    parser.add_argument("--sweep-passages", type=int, default=16)
    args = parser.parse_args()

    name, dataset = load_dataset()
    params = AugmentParams(dataset=name, num_passages=args.passages)  # runtime.batch_size defaults to 16
    backend = TransformersBackend.load(params.generator)
    builder = PromptBuilder(dataset, params)
    texts = [backend.render(builder.prompt(job)) for job in plan_jobs(choose_passages(dataset, args.passages, params.seed), params)]
    print(f"dataset {name}, {args.passages} passages, batch 16, greedy, max_new_tokens {params.max_new_tokens}, "
          f"torch threads {torch.get_num_threads()}")

    bare_times, augir_times = [], []
    for _ in range(args.repeats):  # alternate, so drift in machine load hits both alike
        bare_times.append(bare_loop(backend, texts, 16, params.max_new_tokens))
        augir_times.append(augir_path(backend, dataset, params))
    bare, ours = statistics.median(bare_times), statistics.median(augir_times)
    print(f"bare generate loop : {args.passages / bare:6.3f} passages/s  (runs: {', '.join(f'{t:.1f}s' for t in bare_times)})")
    print(f"augir augment path : {args.passages / ours:6.3f} passages/s  (runs: {', '.join(f'{t:.1f}s' for t in augir_times)})")
    print(f"ratio augir / bare : {bare / ours:6.3f}  (goal >= 0.95)")

    print("\nbatch  new tokens/s  passages/s")
    for batch_size in (1, 8, 16):
        tps, pps = tokens_per_second(backend, builder, params, batch_size, args.sweep_passages)
        print(f"{batch_size:5d}  {tps:12.2f}  {pps:10.3f}")


if __name__ == "__main__":
    main()
