"""What clean-up and each filter remove, per strategy, on real passages, with one example query per strategy.

    .venv/bin/python benchmarks/augment_quality.py                     # SciFact from ../shared/datasets
    .venv/bin/python benchmarks/augment_quality.py --passages 96 --examples train

Generation is greedy with SmolLM2-135M; filters are consistency (BM25, top 20) and judge (SmolLM2, grade >= 2).
"""

from __future__ import annotations

import argparse
import json
import tempfile
from pathlib import Path

from augir.augmentation.augment import run_augmentation
from augir.augmentation.backends.transformers_backend import TransformersBackend
from augir.data.beir import load_beir
from augir.fileio import read_jsonl
from augir.filtering.filter import run_filter
from augir.params import AugmentParams, FilterParams

SHARED = Path(__file__).resolve().parents[1].parent / "shared" / "datasets"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--dataset", type=Path, default=SHARED / "scifact")
    parser.add_argument("--passages", type=int, default=48)
    parser.add_argument("--examples", choices=["train", "generic", "none"], default="generic")
    parser.add_argument("--strategies", nargs="+", default=["question", "keyword", "claim", "title", "diverse"])
    parser.add_argument("--out", type=Path, help="also write the numbers as JSON here")
    args = parser.parse_args()

    dataset = load_beir(args.dataset)
    backend = TransformersBackend.load("smollm2-135m")
    report = {}
    for strategy in args.strategies:
        params = AugmentParams(dataset=args.dataset.name, strategy=strategy, examples=args.examples,
                               num_passages=args.passages)
        with tempfile.TemporaryDirectory() as scratch:
            augmented = Path(scratch) / "augmented"
            stats = run_augmentation(dataset, params, augmented, Path(scratch) / "work", backend)
            consistency = run_filter(dataset, augmented, FilterParams(method="consistency"), Path(scratch) / "c")
            judge = run_filter(dataset, augmented, FilterParams(method="judge"), Path(scratch) / "j", backend)
            kept = [r for r in read_jsonl(augmented / "provenance.jsonl") if r["query"]]
        generated = stats.generated
        report[strategy] = {
            "generated": generated,
            "dropped_share": {reason: round(n / generated, 3) for reason, n in stats.dropped.items()},
            "kept_after_cleanup": stats.kept,
            "consistency_bm25_top20_kept_fraction": consistency["kept_fraction"],
            "judge_min_grade_2_kept_fraction": judge["kept_fraction"],
            "judge_unparsable": judge["unparsable"],
            "tokens_per_second": stats.to_json_dict()["tokens_per_second"],
            "example": {"doc_id": kept[0]["doc_id"], "query": kept[0]["query"], "strategy": kept[0]["strategy"]} if kept else None,
        }
        print(strategy, json.dumps(report[strategy]), flush=True)
    if args.out:
        args.out.write_text(json.dumps(report, indent=2) + "\n")


if __name__ == "__main__":
    main()
