"""cpu-study v2's head-to-head comparisons: cells compared with each other, not with their baseline.

The report (`augir report`) compares every augmented cell with the same retriever trained without augmentation;
finding 2 of the 2025 study (a small generator augments as well as a larger one) and the strategy and infusion
questions are about two augmented cells. This script compares them with the matrix's own statistics
(`augir.study.matrix.compare_cells`: delta paired by training seed with its 95% t interval, paired t-test over
per-query nDCG@10 averaged over seeds), Holm-corrected over its own comparisons, and writes a Markdown table.

    .venv/bin/python benchmarks/cpu_study_v2_head_to_head.py   # -> results/cpu-study-v2/head-to-head.md
"""

from __future__ import annotations

import argparse
from pathlib import Path

from augir.study.experiments import experiments_from_folder
from augir.study.matrix import Row, build_matrix, compare_cells
from augir.study.statistics import corrected_p_values

REPO = Path(__file__).resolve().parents[1]
FOLDER = REPO / "results" / "cpu-study-v2"


def judged(row: Row) -> bool:
    return row.settings.get("filter.method", "none") == "judge"


def cell(rows: list[Row], generator: str, strategy: str, scale: int, sources: str = "real + synthetic") -> Row:
    found = [r for r in rows if r.retriever == "minilm-l2" and r.generator == generator and r.strategy == strategy
             and r.scale == scale and r.sources == sources and not judged(r)]
    if len(found) != 1:
        raise SystemExit(f"{len(found)} cells for {generator} {strategy} {scale} {sources}")
    return found[0]


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--experiments", type=Path, default=FOLDER / "experiments")
    parser.add_argument("--out", type=Path, default=FOLDER / "head-to-head.md")
    args = parser.parse_args()
    matrix = build_matrix(experiments_from_folder(args.experiments), title="cpu-study-v2")
    rows = [r for r in matrix.rows if r.kind == "augmented"]
    comparisons = []
    for scale in (100, 250):
        claim = cell(rows, "smollm2-135m", "claim", scale)
        comparisons.append((f"Gemma 3 270M vs SmolLM2-135M claims, {scale} pairs",
                            cell(rows, "gemma3-270m", "claim", scale), claim))
        for strategy in ("question", "diverse"):
            comparisons.append((f"SmolLM2 {strategy} vs claim, {scale} pairs",
                                cell(rows, "smollm2-135m", strategy, scale), claim))
    infused = [r for r in rows if r.sources.startswith("real + infused")]
    if infused:
        comparisons.append(("SKIM: 100 infused pairs vs 100 plain synthetic pairs (Gemma claims)", infused[0],
                            cell(rows, "gemma3-270m", "claim", 100)))
    filtered = [r for r in rows if judged(r)]
    if filtered:
        comparisons.append(("judge-filtered vs unfiltered Gemma claims, 100 pairs", filtered[0],
                            cell(rows, "gemma3-270m", "claim", 100)))
    results = [(label, compare_cells(a, b, matrix.datasets)) for label, a, b in comparisons]
    flat = [h.p_value for _, per_dataset in results for h in per_dataset]
    holm = iter(corrected_p_values(flat, "holm"))
    header = "| comparison (a vs b, minilm-l2) | " + " | ".join(
        f"{d} Δ (a − b) [95% t over seeds] | p | p (Holm)" for d in matrix.datasets) + " |"
    lines = [
        "# cpu-study v2, head to head",
        "",
        f"nDCG@10, three training seeds per cell; Δ paired by training seed; p: paired t-test over per-query nDCG@10 "
        f"averaged over seeds; Holm over these {len(flat)} comparisons (the matrix corrects its own separately). "
        f"Made by `benchmarks/cpu_study_v2_head_to_head.py` from `experiments/`.",
        "",
        header,
        "|" + "---|" * (1 + 3 * len(matrix.datasets)),
    ]
    for label, per_dataset in results:
        cells = []
        for h in per_dataset:
            d = h.delta
            interval = f" [{d.low:+.4f}, {d.high:+.4f}]" if d and d.low is not None else ""
            corrected = next(holm)
            cells += [f"{d.mean:+.4f}{interval}" if d else "", f"{h.p_value:.2g}" if h.p_value is not None else "",
                      f"{corrected:.2g}" if corrected is not None else ""]
        lines.append(f"| {label} | " + " | ".join(cells) + " |")
    args.out.write_text("\n".join(lines) + "\n")
    print("\n".join(lines))


if __name__ == "__main__":
    main()
