"""Fine-tune the SmolLM2-135M judge (LoRA) on judge-train and measure held-out agreement: tuned vs untuned vs cosine.

The judge stage's own code path (augir.judging.run.train_and_measure) on a shared test collection. SciFact: its
train split's queries are divided by query into judge-train/judge-test (test queries are never used). Cranfield
has only a test split: its queries are divided with the seed, so this judge has seen Cranfield test judgments.

    .venv/bin/python benchmarks/judge.py --dataset scifact
    .venv/bin/python benchmarks/judge.py --dataset cranfield --max-grade 4 --source-split test
Writes benchmarks/results/judge-<dataset>.json (agreement, example counts, wall times) and prints a Markdown row.
"""

from __future__ import annotations

import argparse
import json
import tempfile
import time
from pathlib import Path

import torch

from augir.data.beir import load_beir
from augir.judging.run import train_and_measure
from augir.params import JudgeParams
from augir.versions import with_versions

SHARED = Path(__file__).resolve().parents[1].parent / "shared" / "datasets"
RESULTS = Path(__file__).resolve().parent / "results"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--dataset", default="scifact", choices=["scifact", "cranfield"])
    parser.add_argument("--source-split", default="train")
    parser.add_argument("--max-grade", type=int, default=1)
    parser.add_argument("--examples", type=int, default=64, help="judge-train examples (balanced over grades)")
    parser.add_argument("--test-examples", type=int, default=64)
    parser.add_argument("--max-length", type=int, default=128)
    parser.add_argument("--epochs", type=float, default=1)
    parser.add_argument("--learning-rate", type=float, default=1e-3)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    torch.set_num_threads(2)

    params = JudgeParams(
        enabled=True, dataset=args.dataset, source_split=args.source_split, max_grade=args.max_grade,
        max_examples=args.examples, max_test_examples=args.test_examples, max_length=args.max_length,
        epochs=args.epochs, learning_rate=args.learning_rate, seed=args.seed,
    )
    dataset = load_beir(SHARED / args.dataset)
    started = time.perf_counter()
    with tempfile.TemporaryDirectory() as work:
        metrics = train_and_measure(dataset, params, Path(work) / "judge", progress=True)
    metrics["wall_s"] = round(time.perf_counter() - started, 1)
    metrics["params"] = params.model_dump()
    RESULTS.mkdir(parents=True, exist_ok=True)
    out = RESULTS / f"judge-{args.dataset}.json"
    out.write_text(json.dumps(with_versions(metrics), indent=2, sort_keys=True) + "\n", encoding="utf-8")
    print(json.dumps(metrics["agreement"], indent=2))
    print("| judge | accuracy | kappa | quadratic kappa | Kendall tau |")
    for judge, values in metrics["agreement"].items():
        print(f"| {judge} | {values['accuracy']:.3f} | {values['kappa']:.3f} | {values['quadratic_kappa']:.3f} "
              f"| {values['kendall_tau']:.3f} |")
    print(f"wall {metrics['wall_s']} s; {metrics['timings_s']}; {out}")


if __name__ == "__main__":
    main()
