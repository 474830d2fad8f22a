"""Does capping queries repeated across passages (`augment.max_repeats`) help the retriever? Measured, not assumed.

SmolLM2-135M writes one claim for each of N SciFact passages (3-shot, examples from SciFact's train queries,
greedy: the committed study's setting, where 449 of the first 1,000 SmolLM2 claims shared their text with another
passage's). The augment stage's own code then cleans the same generations once per cap (a replay backend hands it
the texts generated once, so every variant differs only in the rule). For each variant and seed, MiniLM-L2 (the
default run's retriever and training settings) is fine-tuned on SciFact's real train pairs plus every kept
synthetic pair, and evaluated on SciFact's test split (in domain) and Cranfield's (out of domain); the variant
without synthetic pairs is the reference. Deltas against the uncapped set are paired by seed (t interval over
seeds), p-values are paired t-tests over queries of the seed-averaged scores (augir.study.statistics).

    OMP_WAIT_POLICY=PASSIVE HF_HUB_OFFLINE=1 .venv/bin/python benchmarks/repeat_cap.py --passages 1000 --caps 1,3 --seeds 0,1,2
"""

from __future__ import annotations

import argparse
import json
import tempfile
import time
from pathlib import Path
from typing import Any

from augir.augmentation.augment import run_augmentation
from augir.augmentation.backends.base import Completion
from augir.augmentation.backends.transformers_backend import TransformersBackend
from augir.augmentation.prompts import Prompt
from augir.data.beir import load_beir
from augir.fileio import read_jsonl
from augir.params import load_params
from augir.retrieval.encoders import load_encoder
from augir.retrieval.evaluate import evaluate_model
from augir.study.statistics import delta_estimate, paired_p_value, per_query_mean
from augir.training.pairs import real_pairs, synthetic_pairs
from augir.training.train import train_encoder

REPO = Path(__file__).resolve().parents[1]
SHARED = REPO.parent / "shared" / "datasets"
RESULTS = Path(__file__).with_name("results")
MEASURE = "ndcg_at_10"


class ReplayBackend:
    """Hands back the texts an earlier run generated for the same prompts: the clean-up runs again, generation not."""

    name = "transformers"

    def __init__(self, provenance: list[dict[str, Any]]):
        self.raw = {json.dumps(record["prompt"]): record for record in provenance}

    def complete(self, prompts: list[Prompt], seeds: list[int], sampling: Any) -> list[Completion]:
        records = [self.raw[json.dumps(prompt.as_record())] for prompt in prompts]
        return [Completion(r["raw"], r["new_tokens"], r["prompt_tokens"]) for r in records]


def augmented_variants(dataset: Any, params: Any, runtime: Any, caps: list[int], work: Path) -> dict[str, dict[str, Any]]:
    """name -> {folder, kept, dropped}: the uncapped set (generated) and one per cap (replayed)."""
    variants: dict[str, dict[str, Any]] = {}
    backend: Any = TransformersBackend.load(params.generator)
    for name, cap in [("uncapped", None)] + [(f"max_repeats={cap}", cap) for cap in caps]:
        folder = work / name
        started = time.perf_counter()
        stats = run_augmentation(dataset, params.model_copy(update={"max_repeats": cap}), folder, work / f"{name}-shards",
                                 backend, runtime)
        variants[name] = {"folder": folder, "kept": stats.kept, "dropped": dict(stats.dropped),
                          "seconds": round(time.perf_counter() - started, 1)}
        print(name, {k: v for k, v in variants[name].items() if k != "folder"}, flush=True)
        if cap is None:
            backend = ReplayBackend(list(read_jsonl(folder / "provenance.jsonl")))
    return variants


def train_and_evaluate(pairs: list[Any], train: Any, seed: int, datasets: dict[str, Any], work: Path) -> dict[str, Any]:
    model_dir = work / f"model-{seed}"
    train_encoder(pairs, train.model_copy(update={"seed": seed}), model_dir, overwrite=True)
    encoder = load_encoder(str(model_dir))
    scores = {}
    for name, dataset in datasets.items():
        _, evaluation = evaluate_model(encoder, dataset, split="test", top_k=100)
        scores[name] = {"mean": evaluation.aggregate[MEASURE], "per_query": evaluation.per_query[MEASURE]}
    return scores


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--passages", type=int, default=1000)
    parser.add_argument("--caps", default="1,3")
    parser.add_argument("--seeds", default="0,1,2")
    parser.add_argument("--out", default="repeat_cap.json", help="file name under benchmarks/results")
    args = parser.parse_args()
    caps = [int(c) for c in args.caps.split(",")]
    seeds = [int(s) for s in args.seeds.split(",")]
    scifact = load_beir(SHARED / "scifact")
    datasets = {"scifact": scifact, "cranfield": load_beir(SHARED / "cranfield")}
    defaults = load_params(REPO / "params.yaml")  # the default run's settings, on SciFact
    params = defaults.augment.model_copy(update={"dataset": "scifact", "strategy": "claim", "examples": "train",
                                                 "num_passages": args.passages, "max_repeats": None})
    real = real_pairs(scifact, "scifact")
    with tempfile.TemporaryDirectory() as scratch:
        work = Path(scratch)
        variants = augmented_variants(scifact, params, defaults.runtime, caps, work)
        cells: dict[str, dict[int, dict[str, Any]]] = {}
        for seed in seeds:  # seeds outermost: an interrupted run still has every variant for the first seeds
            for name in ["no synthetic pairs", *variants]:
                synthetic = [] if name not in variants else synthetic_pairs(
                    variants[name]["folder"], scifact, variants[name]["kept"])
                started = time.perf_counter()
                cells.setdefault(name, {})[seed] = train_and_evaluate(real + synthetic, defaults.train, seed,
                                                                    datasets, work)
                print(name, seed, len(synthetic), {d: round(s["mean"], 4) for d, s in cells[name][seed].items()},
                      round(time.perf_counter() - started), "s", flush=True)
    RESULTS.mkdir(exist_ok=True)
    raw = RESULTS / args.out.replace(".json", "_per_query.json")  # first, so the summary can be recomputed from it
    raw.write_text(json.dumps({name: {str(seed): cell for seed, cell in by_seed.items()}
                               for name, by_seed in cells.items()}) + "\n")
    summary: dict[str, Any] = {}
    for name, by_seed in cells.items():
        entry: dict[str, Any] = {"synthetic_pairs": variants[name]["kept"] if name in variants else 0}
        if name in variants:
            entry["dropped"] = variants[name]["dropped"]
        for dataset in datasets:
            means = {seed: by_seed[seed][dataset]["mean"] for seed in seeds}
            per_query = per_query_mean([by_seed[seed][dataset]["per_query"] for seed in seeds])
            result: dict[str, Any] = {"per_seed": means, "mean": sum(means.values()) / len(means)}
            for reference in ("uncapped", "no synthetic pairs"):
                if name == reference:
                    continue
                other = cells[reference]
                delta = delta_estimate(means, {seed: other[seed][dataset]["mean"] for seed in seeds})
                reference_query = per_query_mean([other[seed][dataset]["per_query"] for seed in seeds])
                result[f"delta_vs_{reference}"] = {"mean": delta.mean, "low": delta.low, "high": delta.high,
                                                   "p_value": paired_p_value(per_query, reference_query)}
            entry[dataset] = result
        summary[name] = entry
    out = {"generator": params.generator, "strategy": params.strategy, "passages": args.passages, "seeds": seeds,
           "retriever": defaults.train.model, "measure": MEASURE,
           "generation_seconds": variants["uncapped"]["seconds"], "variants": summary}
    (RESULTS / args.out).write_text(json.dumps(out, indent=2) + "\n")
    print(json.dumps(summary, indent=2))


if __name__ == "__main__":
    main()
