"""`augir report`: the experiment matrix of a grid as tables and pictures, in one folder.

- `matrix.md` and `matrix.csv` (pandas): one row per cell; per evaluation dataset (in-domain first, then
  out-of-distribution) the metric's mean over replicate seeds with its 95% interval, the delta against the same
  retriever fine-tuned without augmentation with its interval, the raw p-value of a paired test over per-query
  scores and the p-value corrected over the report's comparisons; the cost that produced each cell. BM25 and the
  zero-shot and no-augmentation rows of every retriever are in the same table. The CSV keeps every number at full
  precision, exactly as in the metrics files (a cell of one seed) or their mean.
- `scaling.png`, `generators.png`, `strategies.png`, `cost.png` and their `dvc plots` definitions (`augir.study.plots`).

How cells, intervals and tests are computed: `augir.study.matrix` and `augir.study.statistics`.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pandas as pd

from augir.fileio import write_text_atomic
from augir.retrieval.metrics import REPORTED_MEASURES
from augir.study.matrix import COSTS, Matrix, _short
from augir.study.plots import dataset_heading, dvc_plots, plot_comparison, plot_cost, plot_scaling
from augir.study.statistics import Estimate

SIGNIFICANCE_LEVEL = 0.05
TEST_NAMES = {"t-test": "paired t-test (scipy.stats.ttest_rel)", "wilcoxon": "Wilcoxon signed-rank test (scipy.stats.wilcoxon)"}
INTERVAL_NAMES = {"t": "t interval over seeds", "bootstrap": "BCa bootstrap over queries of the seed-averaged scores"}
CORRECTION_NAMES = {"none": "uncorrected", "holm": "Holm", "bh": "Benjamini-Hochberg"}
COST_HEADINGS = {"generation_seconds": "gen s", "generation_tokens": "gen tokens", "train_seconds": "train s",
                 "encode_seconds": "encode s"}


def markdown(matrix: Matrix, images: dict[str, str | None]) -> str:
    metric = matrix.metric
    in_domain = [d for d in matrix.datasets if matrix.roles[d] == "in-domain"]
    ood = [d for d in matrix.datasets if matrix.roles[d] == "ood"]
    correction = CORRECTION_NAMES[matrix.correction]
    lines = [f"# {matrix.title}", ""]
    if matrix.description:
        lines += [" ".join(matrix.description.split()), ""]
    lines += [
        f"{metric} per evaluation dataset; in-domain: {', '.join(in_domain) or 'none'}; out-of-distribution: "
        f"{', '.join(ood) or 'none'}. Seeds: replicates of the cell; its value is their mean, [low, high] its 95% "
        f"{INTERVAL_NAMES[matrix.interval]} (none with one seed). Δ: against the same retriever fine-tuned without "
        f"augmentation, paired by training seed, with its 95% t interval over the shared seeds. p: two-sided "
        f"{TEST_NAMES[matrix.test]} over per-query {metric} averaged over seeds"
        + (f", uncorrected over the report's {_comparisons(matrix)} comparisons" if matrix.correction == "none" else
           f"; p ({correction}): corrected over the report's {_comparisons(matrix)} comparisons")
        + f"; * p < {SIGNIFICANCE_LEVEL}. Scale: `train.augmented_pairs` "
        "asked for; synthetic pairs: those actually added (queries dropped by clean-up or filtering leave fewer). "
        "Cost, mean over seeds: generation seconds and new tokens of the cell's synthetic pairs (the generation's "
        "total times train.augmented_pairs / generated: a grid generates once for its largest scale; a baseline uses "
        "none), training seconds, encoding seconds over the evaluation datasets (blank: not recorded).",
        "",
        _table(matrix).to_markdown(index=False, disable_numparse=True),
        "",
    ]
    for name, path in images.items():
        lines.append(f"![{name}]({path})" if path else f"{name}: no plot, no settings in the matrix to compare.")
    if matrix.notes:
        lines += ["", "Notes:", *[f"- {note}" for note in matrix.notes]]
    return "\n".join(lines) + "\n"


def _table(matrix: Matrix) -> pd.DataFrame:
    correction = CORRECTION_NAMES[matrix.correction]
    records = []
    for row in matrix.rows:
        record: dict[str, str] = {
            "experiment": row.experiment if row.kind != "bm25" else "", "retriever": row.retriever,
            "kind": f"{row.kind} ({row.sources})" if row.kind == "augmented" else row.kind,
            "generator": row.generator or "-", "strategy": row.strategy or "-",
            "scale": str(row.scale) if row.kind == "augmented" else "0" if row.kind != "bm25" else "-",
            "synthetic pairs": "" if row.synthetic_pairs is None else str(row.synthetic_pairs),
            "seeds": str(row.seeds) if row.kind != "bm25" else "-",
        }
        record.update({key: _value_text(row.settings.get(key)) for key in matrix.setting_keys})
        for d in matrix.datasets:
            heading = dataset_heading(matrix, d)
            record[f"{heading} {matrix.metric}"] = _with_interval(row.values[d].get(matrix.metric), row.estimate.get(d))
            delta = row.delta.get(d)
            record[f"{heading} Δ"] = _with_interval(delta.mean if delta else None, delta, signed=True)
            record[f"{heading} p"] = _fmt_p(row.p_value.get(d))
            record[f"{heading} p ({correction})"] = _fmt_p(row.p_corrected.get(d)) if matrix.correction != "none" else ""
        record.update({heading: _fmt_cost(row.cost.get(name)) for name, heading in COST_HEADINGS.items()})
        records.append(record)
    table = pd.DataFrame.from_records(records)
    if matrix.correction == "none":
        table = table.drop(columns=[c for c in table.columns if c.endswith(f"p ({correction})")])
    return table


def csv_text(matrix: Matrix) -> str:
    """Every number at full precision (Python's repr of the float), empty where there is none."""
    records = []
    for row in matrix.rows:
        record: dict[str, Any] = {
            "experiment": " ".join(e.name for e in row.experiments), "rev": " ".join(e.rev for e in row.experiments),
            "kind": row.kind, "retriever": row.retriever, "generator": row.generator or "",
            "strategy": row.strategy or "", "scale": row.scale,
            "synthetic_pairs": "" if row.synthetic_pairs is None else row.synthetic_pairs,
            "seeds": row.seeds if row.kind != "bm25" else "",
        }
        record.update({key: "" if row.settings.get(key) is None else _value_text(row.settings.get(key))
                       for key in matrix.setting_keys})
        for d in matrix.datasets:
            prefix = f"{matrix.roles[d]}:{d}:"
            record.update({prefix + m: _number(row.values[d].get(m)) for m in REPORTED_MEASURES})
            estimate, delta = row.estimate.get(d), row.delta.get(d)
            record[f"{prefix}{matrix.metric}_low"] = _number(estimate.low if estimate else None)
            record[f"{prefix}{matrix.metric}_high"] = _number(estimate.high if estimate else None)
            record[f"{prefix}delta_{matrix.metric}"] = _number(delta.mean if delta else None)
            record[f"{prefix}delta_low"] = _number(delta.low if delta else None)
            record[f"{prefix}delta_high"] = _number(delta.high if delta else None)
            record[f"{prefix}p_value"] = _number(row.p_value.get(d))
            record[f"{prefix}p_{matrix.correction}"] = _number(row.p_corrected.get(d))
        record.update({name: _number(row.cost.get(name)) for name in COSTS})
        record["reference"] = row.reference or ""
        record["pair_sources"] = row.sources
        records.append(record)
    return pd.DataFrame.from_records(records, columns=list(records[0]) if records else None).to_csv(
        index=False, lineterminator="\n")


def write_report(matrix: Matrix, out_dir: Path) -> dict[str, Path]:
    """matrix.md, matrix.csv, the PNG plots and the dvc plots definitions; returns what was written."""
    out_dir.mkdir(parents=True, exist_ok=True)
    written: dict[str, Path] = {}
    images: dict[str, str | None] = {}
    for name, draw in (
        ("scaling.png", lambda p: plot_scaling(matrix, p)),
        ("generators.png", lambda p: plot_comparison(matrix, "augment.generator", p)),
        ("strategies.png", lambda p: plot_comparison(matrix, "augment.strategy", p)),
        ("cost.png", lambda p: plot_cost(matrix, p)),
    ):
        path = out_dir / name
        if draw(path):
            images[name] = name
            written[name] = path
        else:
            images[name] = None
            if path.exists():
                path.unlink()  # a stale plot of an earlier report would contradict the table
    write_text_atomic(out_dir / "matrix.md", markdown(matrix, images))
    write_text_atomic(out_dir / "matrix.csv", csv_text(matrix))
    written["matrix.md"] = out_dir / "matrix.md"
    written["matrix.csv"] = out_dir / "matrix.csv"
    dvc_plots(matrix, out_dir)
    written["dvc.yaml"] = out_dir / "dvc.yaml"
    return written


def _comparisons(matrix: Matrix) -> int:
    return sum(p is not None for row in matrix.rows for p in row.p_value.values())


def _fmt(value: float | None, digits: int = 4, signed: bool = False) -> str:
    if value is None:
        return ""
    return f"{value:+.{digits}f}" if signed else f"{value:.{digits}f}"


def _with_interval(value: float | None, estimate: Estimate | None, signed: bool = False) -> str:
    """`0.3662 [0.3601, 0.3723]`; the value alone where there is no interval (one seed)."""
    text = _fmt(value, signed=signed)
    if not text or estimate is None or estimate.low is None or estimate.high is None:
        return text
    return f"{text} [{_fmt(estimate.low, signed=signed)}, {_fmt(estimate.high, signed=signed)}]"


def _fmt_p(value: float | None) -> str:
    if value is None:
        return ""
    text = f"{value:.3f}" if value >= 0.001 else f"{value:.1e}"
    return text + ("*" if value < SIGNIFICANCE_LEVEL else "")


def _fmt_cost(value: float | None) -> str:
    return "" if value is None else f"{value:.0f}"


def _value_text(value: Any) -> str:
    if value is None:
        return "-"
    return _short(value) if isinstance(value, str) else json.dumps(value)


def _number(value: float | None) -> str:
    return "" if value is None else repr(float(value))  # repr: the exact float of the metrics file
