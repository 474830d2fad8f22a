"""Generation engines on the prompts augir builds, alternating paired runs (A B C A B C ...) in one process.

Engines, all greedy with the default generator (SmolLM2-135M, params.yaml's augment settings, SciFact passages):
- `today`: augir's transformers path as it was when the speed issue was filed, kept here as it was: every prompt
  computed whole, batches of 16 in passage order, left-padded, one `model.generate` per batch;
- `prefix`: augir's backend, the shared instruction + few-shot prefix computed once, batches in passage order, each
  batch read in chunks of similar length (runtime.prefill_tokens) and decoded as one pool that drops stopped rows;
- `sorted`: augir's default path, `prefix` with batches cut from the prompts sorted by length (runtime.sort_by_length),
  queries compared passage by passage;
- `bare`: a plain batched `model.generate` loop over the whole prompts, no augir code (the engine's own call);
- `ct2`, `ct2-int8`: augir's CTranslate2 backend (augment.backend: ctranslate2), float32 or int8, the shared
  prefix as its cached static prompt; `ct2-bare`: CTranslate2's own `generate_batch` on the whole prompts (extra
  "ctranslate2"; the model is converted into the weights cache on first use, outside the timed runs).
Per run: seconds, passages/s, prompt and new tokens/s; per pair: each engine's speed ratio to `today`; medians;
queries identical to `today`'s out of N; the process's peak memory. Results: benchmarks/results/generation.json.

    .venv/bin/python benchmarks/generation.py --passages 16 --pairs 2
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import statistics
import time
from pathlib import Path
from typing import Any

import yaml

from augir.augmentation.augment import PromptBuilder, by_prompt_length, choose_passages, plan_jobs, sampling_of
from augir.augmentation.backends.transformers_backend import TransformersBackend
from augir.augmentation.prompts import Prompt
from augir.params import AugmentParams, RuntimeParams

REPO = Path(__file__).resolve().parents[1]
SCIFACT = REPO.parent / "shared" / "datasets" / "scifact"
RESULTS = Path(__file__).with_name("results")
TODAY_BATCH_SIZE = 16  # augment.batch_size when the speed issue was filed


def default_runtime() -> RuntimeParams:
    return RuntimeParams(**yaml.safe_load((REPO / "params.yaml").read_text())["runtime"])


def default_params(dataset: str) -> AugmentParams:
    """The default run's augment params (params.yaml), for another dataset."""
    values = yaml.safe_load((REPO / "params.yaml").read_text())["augment"]
    return AugmentParams(**{**values, "dataset": dataset})


def today_generate(backend: TransformersBackend, prompts: list[Prompt], max_new_tokens: int) -> list[str]:
    """The transformers path before the speed work, frozen as the baseline: whole prompts, 16 a batch, generate."""
    import torch

    tokenizer, model, pad = backend.generator.tokenizer, backend.generator.model, backend.generator.tokenizer.pad_token_id
    texts = []
    for start in range(0, len(prompts), TODAY_BATCH_SIZE):
        rows = [tokenizer(p.text)["input_ids"] for p in prompts[start : start + TODAY_BATCH_SIZE]]
        width = max(len(row) for row in rows)
        with torch.inference_mode():
            output = model.generate(input_ids=torch.tensor([[pad] * (width - len(r)) + r for r in rows]),
                                    attention_mask=torch.tensor([[0] * (width - len(r)) + [1] * len(r) for r in rows]),
                                    max_new_tokens=max_new_tokens, do_sample=False, pad_token_id=pad,
                                    eos_token_id=backend.generator.stop_token_ids)
        texts += tokenizer.batch_decode(output[:, width:], skip_special_tokens=True)
    return texts


def bare_generate(backend: TransformersBackend, prompts: list[Prompt], batch_size: int, max_new_tokens: int) -> list[str]:
    import torch

    tokenizer, model = backend.generator.tokenizer, backend.generator.model
    texts = []
    for start in range(0, len(prompts), batch_size):
        encoded = tokenizer([p.text for p in prompts[start : start + batch_size]], return_tensors="pt", padding=True)
        with torch.inference_mode():
            output = model.generate(**encoded, max_new_tokens=max_new_tokens, do_sample=False,
                                    pad_token_id=tokenizer.pad_token_id, eos_token_id=backend.generator.stop_token_ids)
        texts += tokenizer.batch_decode(output[:, encoded["input_ids"].shape[1] :], skip_special_tokens=True)
    return texts


def ct2_bare_generate(backend: Any, prompts: list[Prompt], batch_size: int, max_new_tokens: int) -> list[str]:
    tokenizer = backend.generator.tokenizer
    texts = []
    for start in range(0, len(prompts), batch_size):
        tokens = [tokenizer.convert_ids_to_tokens(tokenizer(p.text)["input_ids"]) for p in prompts[start : start + batch_size]]
        results = backend.engine.generate_batch(tokens, max_length=max_new_tokens, sampling_topk=1,
                                                end_token=backend.generator.stop_token_ids, return_end_token=True,
                                                include_prompt_in_result=False)
        texts += [tokenizer.decode(r.sequences_ids[0], skip_special_tokens=True) for r in results]
    return texts


def augir_generate(backend: Any, prompts: list[Prompt], batch_size: int, params: AugmentParams) -> tuple[list[str], dict[str, int]]:
    texts, counts = [], {"prompt_tokens": 0, "cached_prompt_tokens": 0, "new_tokens": 0}
    for start in range(0, len(prompts), batch_size):
        batch = prompts[start : start + batch_size]
        for completion in backend.complete(batch, [0] * len(batch), sampling_of(params)):
            texts.append(completion.text)
            counts["prompt_tokens"] += completion.prompt_tokens or 0
            counts["cached_prompt_tokens"] += completion.cached_prompt_tokens or 0
            counts["new_tokens"] += completion.new_tokens
    return texts, counts


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--passages", type=int, default=16)
    parser.add_argument("--pairs", type=int, default=2)
    parser.add_argument("--batch-size", type=int, default=default_runtime().batch_size,
                        help="augir's engines (default: runtime.batch_size); `today` keeps 16")
    parser.add_argument("--engines", default="today,prefix,bare")
    parser.add_argument("--threads", type=int, default=None, help="torch threads (default: torch's)")
    parser.add_argument("--dataset", default="scifact", help="scifact (../shared/datasets) or semanlink (the default run's)")
    parser.add_argument("--out", default="generation.json", help="file name under benchmarks/results")
    args = parser.parse_args()
    if args.threads:
        import torch

        torch.set_num_threads(args.threads)

    from augir.data.beir import load_beir

    if args.dataset == "semanlink":
        from augir.data.semanlink import build_semanlink

        dataset = build_semanlink(seed=0, test_fraction=0.5)
    else:
        dataset = load_beir(SCIFACT)
    params = default_params(args.dataset)
    jobs = plan_jobs(choose_passages(dataset, args.passages, params.seed), params)
    builder = PromptBuilder(dataset, params)
    prompts = [builder.prompt(job) for job in jobs]
    position = {job.query_id: index for index, job in enumerate(jobs)}
    sorted_order = [position[job.query_id] for job in by_prompt_length(jobs, builder)]
    started = time.perf_counter()
    backend = TransformersBackend.load(params.generator, prefill_tokens=default_runtime().prefill_tokens)
    load_seconds = time.perf_counter() - started
    tokenizer = backend.generator.tokenizer
    prompt_tokens = sum(len(tokenizer(p.text)["input_ids"]) for p in prompts)
    rest_lengths = [len(backend.tokenized(p).rest_ids) for p in prompts]  # what the prefix cache leaves to read

    def padding(order: list[int]) -> int:
        batches = [[rest_lengths[i] for i in order[start : start + args.batch_size]]
                   for start in range(0, len(order), args.batch_size)]
        return sum(max(batch) * len(batch) - sum(batch) for batch in batches)

    engines = args.engines.split(",")
    ct2 = {}
    for engine in engines:
        if engine.startswith("ct2"):
            from augir.augmentation.backends.ctranslate2_backend import CTranslate2Backend

            compute_type = "int8" if engine == "ct2-int8" else "float32"
            if compute_type not in ct2:
                ct2[compute_type] = CTranslate2Backend.load(params.generator, compute_type=compute_type,
                                                            threads=args.threads)
    runs: list[dict[str, Any]] = []
    for pair in range(args.pairs):
        for engine in engines:
            started, cpu_started = time.perf_counter(), time.process_time()
            if engine == "today":
                texts, counts = today_generate(backend, prompts, params.max_new_tokens), {}
            elif engine == "bare":
                texts, counts = bare_generate(backend, prompts, args.batch_size, params.max_new_tokens), {}
            elif engine == "ct2-bare":
                texts, counts = ct2_bare_generate(ct2["float32"], prompts, args.batch_size, params.max_new_tokens), {}
            elif engine.startswith("ct2"):
                texts, counts = augir_generate(ct2["int8" if engine == "ct2-int8" else "float32"], prompts,
                                               args.batch_size, params)
            elif engine == "sorted":
                backend.reuse_prefix = True
                in_order, counts = augir_generate(backend, [prompts[i] for i in sorted_order], args.batch_size, params)
                texts = [""] * len(prompts)
                for index, text in zip(sorted_order, in_order):
                    texts[index] = text  # back to passage order, to compare with the other engines
            else:
                backend.reuse_prefix = engine == "prefix"
                texts, counts = augir_generate(backend, prompts, args.batch_size, params)
            seconds = time.perf_counter() - started
            cpu_seconds = time.process_time() - cpu_started  # less sensitive than wall time to other load
            new_tokens = counts.get("new_tokens") or sum(len(tokenizer(t)["input_ids"]) for t in texts)
            runs.append({"pair": pair, "engine": engine, "seconds": round(seconds, 2), "cpu_seconds": round(cpu_seconds, 2),
                         "passages_per_s": round(len(prompts) / seconds, 3),
                         "prompt_tokens_per_s": round(prompt_tokens / seconds, 1),
                         "new_tokens_per_s": round(new_tokens / seconds, 2), **counts, "texts": texts})
            print({k: v for k, v in runs[-1].items() if k != "texts"}, flush=True)

    reference = {run["pair"]: run for run in runs if run["engine"] == "today"}
    summary: dict[str, Any] = {}
    for engine in engines:
        mine = [run for run in runs if run["engine"] == engine]
        speedups = [reference[run["pair"]]["seconds"] / run["seconds"] for run in mine] if reference else []
        cpu_speedups = [reference[run["pair"]]["cpu_seconds"] / run["cpu_seconds"] for run in mine] if reference else []
        summary[engine] = {
            "cpu_speedup_vs_today_per_pair": [round(x, 3) for x in cpu_speedups],
            "cpu_speedup_vs_today_median": round(statistics.median(cpu_speedups), 3) if cpu_speedups else None,
            "speedup_vs_today_per_pair": [round(x, 3) for x in speedups],
            "speedup_vs_today_median": round(statistics.median(speedups), 3) if speedups else None,
            "passages_per_s_median": statistics.median(run["passages_per_s"] for run in mine),
            "prompt_tokens_per_s_median": statistics.median(run["prompt_tokens_per_s"] for run in mine),
            "new_tokens_per_s_median": statistics.median(run["new_tokens_per_s"] for run in mine),
            "identical_to_today": [
                sum(a == b for a, b in zip(run["texts"], reference[run["pair"]]["texts"])) for run in mine
            ] if reference else None,
        }
    if "ct2-bare" in engines and "ct2" in engines:
        pairs = [(r, b) for r in runs for b in runs if r["pair"] == b["pair"] and r["engine"] == "ct2" and b["engine"] == "ct2-bare"]
        summary["ct2_over_ct2_bare_speed_median"] = round(statistics.median(b["seconds"] / r["seconds"] for r, b in pairs), 3)
    if "bare" in engines and "today" in engines:
        pairs = [(r, b) for r in runs for b in runs if r["pair"] == b["pair"] and r["engine"] == "today" and b["engine"] == "bare"]
        summary["today_over_bare_speed_median"] = round(statistics.median(b["seconds"] / r["seconds"] for r, b in pairs), 3)
        summary["today_over_bare_cpu_speed_median"] = round(
            statistics.median(b["cpu_seconds"] / r["cpu_seconds"] for r, b in pairs), 3)
    result = {
        "dataset": args.dataset, "passages": len(prompts), "batch_size": args.batch_size,
        "today_batch_size": TODAY_BATCH_SIZE, "prefill_tokens": backend.prefill_tokens, "pairs": args.pairs, "generator": params.generator,
        "prompt_tokens": prompt_tokens,
        "prefix_tokens": len(tokenizer(prompts[0].prefix)["input_ids"]) if prompts[0].prefix else 0,
        "load_seconds": round(load_seconds, 2),
        "passage_tokens_after_prefix": sum(rest_lengths),
        "padding_tokens": {"passage_order": padding(list(range(len(prompts)))), "sorted": padding(sorted_order)},
        "peak_rss_mb": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024),
        "load_average_end": os.getloadavg(), "cpus": os.cpu_count(),
        "omp_wait_policy": os.environ.get("OMP_WAIT_POLICY"), "threads": args.threads,
        "summary": summary,
        "runs": [{k: v for k, v in run.items() if k != "texts"} for run in runs],
        "queries": {engine: next(run["texts"] for run in runs if run["engine"] == engine) for engine in engines},
    }
    RESULTS.mkdir(exist_ok=True)
    (RESULTS / args.out).write_text(json.dumps(result, indent=2) + "\n")
    print(json.dumps(summary, indent=2))


if __name__ == "__main__":
    main()
