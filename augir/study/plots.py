"""The report's pictures: scaling curves, generator and strategy comparisons, gain against generation cost, and the
same curves as `dvc plots` definitions (CSV files and a dvc.yaml) so that `dvc plots show` renders them too."""

from __future__ import annotations

import csv
import io
import json
import os
import re
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from augir.fileio import write_text_atomic
from augir.study.matrix import Matrix, Row, _canonical, _short

COMPARED = {"augment.generator": "generators", "augment.strategy": "strategies"}


def dataset_heading(matrix: Matrix, d: str) -> str:
    return f"{d} ({'in-domain' if matrix.roles[d] == 'in-domain' else 'OOD'})"


def _slug(text: str) -> str:
    return re.sub(r"[^A-Za-z0-9._-]+", "-", text).strip("-") or "x"


@dataclass
class Curve:
    label: str
    points: list[tuple[int, float]]  # (scale, value), scale 0 = no augmentation
    intervals: dict[int, tuple[float, float]]  # scale -> 95% interval, where the cell has one (replicate seeds)


def scaling_curves(matrix: Matrix, dataset: str) -> list[Curve]:
    """Per retriever and augmentation: the no-augmentation point and the augmented scales (single-scale
    comparison cells, such as another strategy at one scale, are left to the comparison plots)."""
    by_reference = {row.experiment: row for row in matrix.rows if row.kind == "no-augmentation"}
    series: dict[str, list[Row]] = {}
    for row in matrix.rows:
        if row.kind == "augmented":
            series.setdefault(row.series, []).append(row)
    by_retriever: dict[str, list[list[Row]]] = {}
    for rows in series.values():
        by_retriever.setdefault(rows[0].reference or rows[0].retriever, []).append(rows)
    keep = []
    for group in by_retriever.values():  # per retriever its curves (two scales or more), else its longest series
        keep += [rows for rows in group if len({r.scale for r in rows}) >= 2] or [max(group, key=len)]
    curves = []
    for rows in keep:
        first = rows[0]
        reference = by_reference.get(first.reference or "")
        cells = [(r.scale, r) for r in rows] + ([(0, reference)] if reference is not None else [])
        cells = [(scale, r) for scale, r in cells if matrix.metric in r.values[dataset]]
        points = sorted((scale, r.values[dataset][matrix.metric]) for scale, r in cells)
        intervals = {scale: (estimate.low, estimate.high) for scale, r in cells
                     if (estimate := r.estimate.get(dataset)) is not None and estimate.low is not None
                     and estimate.high is not None}
        extras = [f"{_short(first.settings[k])}" for k in matrix.setting_keys if first.settings.get(k) is not None]
        label = " / ".join([first.retriever, first.generator or "", first.strategy or "", *extras])
        curves.append(Curve(label, points, intervals))
    return sorted(curves, key=lambda c: c.label)


@dataclass
class Comparison:
    setting: str  # what the compared rows share
    bars: dict[str, float]  # compared value (or "no augmentation") -> metric


def comparisons(matrix: Matrix, dataset: str, axis: str) -> list[Comparison]:
    """Augmented rows that share every setting but `axis` (generator or strategy), with two or more values of it."""
    groups: dict[str, list[Row]] = {}
    for row in matrix.rows:
        if row.kind == "augmented":
            others = json.loads(row.series)
            others.pop(axis, None)
            groups.setdefault(_canonical(others) + f"|{row.scale}", []).append(row)
    references = {row.experiment: row for row in matrix.rows if row.kind == "no-augmentation"}
    out = []
    for rows in groups.values():
        label_of = (lambda r: r.generator) if axis == "augment.generator" else (lambda r: r.strategy)
        if len({label_of(r) for r in rows}) < 2:
            continue
        first = rows[0]
        other = first.strategy if axis == "augment.generator" else first.generator
        setting = f"{first.retriever}, {other}, {first.scale}"
        bars: dict[str, float] = {}
        reference = references.get(first.reference or "")
        if reference is not None and matrix.metric in reference.values[dataset]:
            bars["no augmentation"] = reference.values[dataset][matrix.metric]
        for r in sorted(rows, key=lambda r: str(label_of(r))):
            if matrix.metric in r.values[dataset]:
                bars[str(label_of(r))] = r.values[dataset][matrix.metric]
        out.append(Comparison(setting, bars))
    return sorted(out, key=lambda c: c.setting)


def _bm25_value(matrix: Matrix, dataset: str) -> float | None:
    for row in matrix.rows:
        if row.kind == "bm25":
            return row.values[dataset].get(matrix.metric)
    return None


def plot_scaling(matrix: Matrix, path: Path) -> bool:
    curves = {d: scaling_curves(matrix, d) for d in matrix.datasets}
    if not any(curves.values()):
        return False
    fig, axes = _figure(matrix)
    for ax, d in zip(axes[0], matrix.datasets):
        for curve in curves[d]:
            xs, ys = zip(*curve.points)
            line, = ax.plot(xs, ys, marker="o", label=curve.label)
            if curve.intervals:
                bounded = [(x, y) for x, y in curve.points if x in curve.intervals]
                ax.errorbar([x for x, _ in bounded], [y for _, y in bounded], fmt="none", ecolor=line.get_color(),
                            capsize=3, yerr=[[y - curve.intervals[x][0] for x, y in bounded],
                                             [curve.intervals[x][1] - y for x, y in bounded]])
        bm25 = _bm25_value(matrix, d)
        if bm25 is not None:
            ax.axhline(bm25, color="grey", linestyle="--", label="BM25")
        zero_shot = [r for r in matrix.rows if r.kind == "zero-shot" and matrix.metric in r.values[d]]
        for marker, r in zip("xv^<>+1234", zero_shot):
            ax.scatter([0], [r.values[d][matrix.metric]], marker=marker, color="black",
                       label=f"{r.retriever} zero-shot")
        ax.set_title(dataset_heading(matrix, d))
        ax.set_xlabel("synthetic pairs (train.augmented_pairs)")
        ax.set_ylabel(matrix.metric)
        ax.grid(alpha=0.3)
    axes[0][0].legend(fontsize="small")
    fig.suptitle(f"{matrix.title}: scaling curves (x at 0: zero-shot; bars: 95% intervals over seeds)")
    fig.tight_layout()
    _save(fig, path)
    return True


def plot_comparison(matrix: Matrix, axis: str, path: Path) -> bool:
    groups = {d: comparisons(matrix, d, axis) for d in matrix.datasets}
    if not any(groups.values()):
        return False
    fig, axes = _figure(matrix)
    for ax, d in zip(axes[0], matrix.datasets):
        names = sorted({name for group in groups[d] for name in group.bars}, key=lambda n: (n != "no augmentation", n))
        width = 0.8 / max(len(names), 1)
        for i, name in enumerate(names):
            xs = [j + i * width for j, group in enumerate(groups[d]) if name in group.bars]
            ys = [group.bars[name] for group in groups[d] if name in group.bars]
            ax.bar(xs, ys, width=width, label=name, color="lightgrey" if name == "no augmentation" else None)
        ax.set_xticks([j + 0.4 - width / 2 for j in range(len(groups[d]))], [g.setting for g in groups[d]],
                      rotation=15, fontsize="small")
        bm25 = _bm25_value(matrix, d)
        if bm25 is not None:
            ax.axhline(bm25, color="grey", linestyle="--", label="BM25")
        ax.set_title(dataset_heading(matrix, d))
        ax.set_ylabel(matrix.metric)
    axes[0][0].legend(fontsize="small")
    fig.suptitle(f"{matrix.title}: {axis.split('.')[-1]} against {axis.split('.')[-1]} (grey: no augmentation)")
    fig.tight_layout()
    _save(fig, path)
    return True


def gain_and_cost(matrix: Matrix, dataset: str) -> list[tuple[Row, float, float]]:
    """(augmented cell, its generation seconds, its delta) where both are known."""
    out = []
    for row in matrix.rows:
        delta, seconds = row.delta.get(dataset), row.cost.get("generation_seconds")
        if row.kind == "augmented" and delta is not None and seconds is not None:
            out.append((row, seconds, delta.mean))
    return out


def plot_cost(matrix: Matrix, path: Path) -> bool:
    """The study's cost-effectiveness question as a picture: delta against the generation time that bought it."""
    points = {d: gain_and_cost(matrix, d) for d in matrix.datasets}
    if not any(points.values()):
        return False
    fig, axes = _figure(matrix)
    for ax, d in zip(axes[0], matrix.datasets):
        by_retriever: dict[str, list[tuple[Row, float, float]]] = {}
        for point in points[d]:
            by_retriever.setdefault(point[0].retriever, []).append(point)
        for retriever, cells in sorted(by_retriever.items()):
            xs, ys = [x for _, x, _ in cells], [y for _, _, y in cells]
            errors = [row.delta[d] for row, _, _ in cells]
            low = [y - e.low if e.low is not None else 0.0 for y, e in zip(ys, errors)]
            high = [e.high - y if e.high is not None else 0.0 for y, e in zip(ys, errors)]
            ax.errorbar(xs, ys, yerr=[low, high], fmt="o", capsize=3, label=retriever)
            for row, x, y in cells:
                ax.annotate(f"{row.generator}/{row.strategy}/{row.scale}", (x, y), fontsize="x-small",
                            textcoords="offset points", xytext=(3, 3))
        ax.axhline(0.0, color="grey", linestyle="--")
        ax.set_title(dataset_heading(matrix, d))
        ax.set_xlabel("generation seconds of the cell's synthetic pairs (pro rata)")
        ax.set_ylabel(f"Δ {matrix.metric} against no augmentation")
        ax.grid(alpha=0.3)
    axes[0][0].legend(fontsize="small")
    fig.suptitle(f"{matrix.title}: gain against generation cost (bars: 95% intervals over seeds)")
    fig.tight_layout()
    _save(fig, path)
    return True


def _figure(matrix: Matrix) -> tuple[Any, Any]:
    """One panel per evaluation dataset, side by side."""
    return _pyplot().subplots(1, len(matrix.datasets), figsize=(6 * len(matrix.datasets), 4.5), squeeze=False)


def _pyplot():
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def _save(fig: Any, path: Path) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    staging = path.with_name(f".{path.name}.tmp.png")
    fig.savefig(staging, dpi=120)
    os.replace(staging, path)
    _pyplot().close(fig)


def dvc_plots(matrix: Matrix, out_dir: Path) -> dict[str, Any]:
    """CSV files under out_dir/plots and the `dvc plots` definitions (a dvc.yaml in out_dir) of the same curves."""
    metric = matrix.metric
    definitions: list[dict[str, Any]] = []
    files: dict[str, str] = {}
    for d in matrix.datasets:
        y = {}
        for curve in scaling_curves(matrix, d):
            name = f"plots/scaling-{_slug(d)}-{_slug(curve.label)}.csv"
            files[name] = _csv_rows(["scale", metric], [(x, v) for x, v in curve.points])
            y[name] = metric
        if y:
            definitions.append({f"{matrix.title}: scaling, {dataset_heading(matrix, d)}": {
                "template": "linear", "x": "scale", "y": y, "x_label": "synthetic pairs", "y_label": metric}})
        for axis, plural in COMPARED.items():
            y = {}
            by_value: dict[str, list[tuple[str, float]]] = {}
            for group in comparisons(matrix, d, axis):
                for value, number in group.bars.items():
                    by_value.setdefault(value, []).append((group.setting, number))
            for value, rows in by_value.items():
                name = f"plots/{plural}-{_slug(d)}-{_slug(value)}.csv"
                files[name] = _csv_rows(["setting", metric], rows)
                y[name] = "setting"
            if y:
                definitions.append({f"{matrix.title}: {plural}, {dataset_heading(matrix, d)}": {
                    "template": "bar_horizontal", "x": metric, "y": y, "x_label": metric, "y_label": "setting"}})
    for stale in (out_dir / "plots").glob("*.csv"):
        stale.unlink()
    for name, text in files.items():
        write_text_atomic(out_dir / name, text)
    config = {"plots": definitions}
    header = "# Written by `augir report`: `dvc plots show` renders the report's curves from the CSV files beside.\n"
    write_text_atomic(out_dir / "dvc.yaml", header + yaml.safe_dump(config, sort_keys=False, allow_unicode=True))
    return config


def _csv_rows(header: list[str], rows: Iterable[tuple[Any, ...]]) -> str:
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow(header)
    for row in rows:
        writer.writerow([repr(v) if isinstance(v, float) else v for v in row])
    return buffer.getvalue()
