"""The experiment matrix of a study: experiments grouped into cells, replicates aggregated, cells read against their
baselines.

- A cell is a setting: experiments that differ only in their seeds (`train.seed`, `augment.seed`) are its
  replicates. Its value per measure is the mean over replicates; its interval (`augir.study.statistics`) is the t
  interval over seeds (default) or a bootstrap over queries.
- Every augmented cell is read against the cell of the same retriever fine-tuned without augmentation: the delta
  pairs the training seeds both share, the p-value is a paired test over queries of the per-query scores averaged
  over seeds, and the report's p-values are corrected together (Holm by default).
- The cost of a cell is what produced it, from the stages' metrics: generation seconds and tokens (augmented cells
  only, pro rata of the pairs they use; baselines use no synthetic pairs), training seconds, encoding seconds over
  the evaluation datasets.

The experiments are a pandas DataFrame (one row per experiment); cells are its groups.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pandas as pd

from augir import layout
from augir.errors import AugirError
from augir.retrieval.metrics import REPORTED_MEASURES
from augir.study.experiments import Experiment, at_current_params, per_query_path
from augir.study.grid import AUGMENTATION_PREFIXES, EPOCHS, INFUSED, SCALE, SEED_KINDS, TRAINING_DATA_PREFIXES
from augir.study.statistics import (
    Estimate,
    cell_estimate,
    corrected_p_values,
    delta_estimate,
    paired_p_value,
    per_query_mean,
)

SHOWN = ("train.model", "augment.generator", "augment.strategy", SCALE, EPOCHS, "augment.num_passages")
REPLICATE_KEYS = tuple(SEED_KINDS.values())  # train.seed, augment.seed
TRAIN_SEED = SEED_KINDS["train"]
KINDS = ("bm25", "zero-shot", "no-augmentation", "augmented")
TESTS = ("t-test", "wilcoxon")
INTERVALS = ("t", "bootstrap")
CORRECTIONS = ("none", "holm", "bh")
COSTS = ("generation_seconds", "generation_tokens", "train_seconds", "encode_seconds")


@dataclass
class Row:
    """One cell of the matrix (or the BM25 baseline)."""

    experiments: list[Experiment]  # its replicates, in seed order
    kind: str
    retriever: str
    generator: str | None
    strategy: str | None
    scale: int
    settings: dict[str, Any]  # other params that vary across the matrix
    synthetic_pairs: int | None
    values: dict[str, dict[str, float]]  # dataset -> measure -> mean over replicates
    estimate: dict[str, Estimate] = field(default_factory=dict)  # dataset -> the metric's mean and interval
    delta: dict[str, Estimate | None] = field(default_factory=dict)
    p_value: dict[str, float | None] = field(default_factory=dict)
    p_corrected: dict[str, float | None] = field(default_factory=dict)
    cost: dict[str, float | None] = field(default_factory=dict)
    reference: str | None = None  # the baseline cell's experiment
    series: str = ""  # retriever setting + augmentation, for the curves
    sources: str = ""  # what it trains on (`pair_sources`)

    @property
    def experiment(self) -> str:
        return self.experiments[0].name if self.experiments else ""

    @property
    def seeds(self) -> int:
        return len(self.experiments) if self.kind != "bm25" else 0


@dataclass
class Matrix:
    title: str
    description: str
    metric: str
    test: str
    interval: str
    correction: str
    datasets: list[str]  # in-domain first
    roles: dict[str, str]  # dataset -> "in-domain" | "ood"
    setting_keys: list[str]
    rows: list[Row]
    notes: list[str]


def build_matrix(
    experiments: list[Experiment], *, metric: str = "ndcg_at_10", test: str = "t-test", interval: str = "t",
    correction: str = "holm", title: str = "experiments", description: str = "",
) -> Matrix:
    _check_choice("metric", metric, REPORTED_MEASURES)
    _check_choice("test", test, TESTS)
    _check_choice("interval", interval, INTERVALS)
    _check_choice("correction", correction, CORRECTIONS)
    notes: list[str] = []
    experiments = _deduplicated([at_current_params(exp) for exp in experiments], notes)
    if not experiments:
        raise AugirError("no finished experiments with metrics: queue and run a grid first (`augir grid <name>`)")
    datasets, roles = _datasets(experiments)
    frame = experiment_frame(experiments, datasets)
    setting_keys = _varying_keys(frame)

    rows = [_bm25_row(experiments, datasets)] if _has_bm25(experiments, datasets) else []
    if not rows:
        notes.append("no BM25 metrics (metrics/bm25/<name>.json) in these experiments")
    cells = [_cell_row(group, datasets, setting_keys) for _, group in frame.groupby("cell", sort=False)]
    references: dict[str, Row] = {}
    for row in cells:
        if row.kind == "no-augmentation":
            references.setdefault(_retriever_key(row.experiments[0]), row)
    missing_per_query: set[str] = set()
    for row in cells:
        if row.kind != "augmented":
            continue
        reference = references.get(_retriever_key(row.experiments[0]))
        if reference is None:
            notes.append(f"{row.experiment}: no experiment of the same retriever without augmentation, so no delta")
            continue
        _compare(row, reference, datasets, metric, test, notes, missing_per_query)
    for row in cells:
        for d in datasets:
            row.estimate[d] = _estimate(row, d, metric, interval, missing_per_query)
    _correct(cells, datasets, correction)
    for name in sorted(missing_per_query):
        notes.append(f"{name}: no per-query scores (data/eval/<name>/per_query.json), so no test or bootstrap")
    rows += sorted(cells, key=_row_order)
    return Matrix(title, description, metric, test, interval, correction, datasets, roles, setting_keys, rows, notes)


def experiment_frame(experiments: list[Experiment], datasets: list[str]) -> pd.DataFrame:
    """One row per experiment: its flat params, its cell, its seeds, every measure per dataset, its costs."""
    records = []
    for exp in experiments:
        flat = exp.flat_params()
        record: dict[str, Any] = {"experiment": exp, "cell": _cell_key(flat), "kind": _kind(flat),
                                  "train_seed": flat.get(TRAIN_SEED), "params": flat}
        for d in datasets:
            for measure, value in _measures(exp.metrics.get(layout.metrics(d).as_posix())).items():
                record[f"{d}:{measure}"] = value
        record.update(_costs(exp, flat, datasets))
        records.append(record)
    return pd.DataFrame.from_records(records)


def _check_choice(name: str, value: str, choices: tuple[str, ...]) -> None:
    if value not in choices:
        raise AugirError(f"unknown {name} {value!r}: use one of {', '.join(choices)}")


def _datasets(experiments: list[Experiment]) -> tuple[list[str], dict[str, str]]:
    datasets: list[str] = []
    in_domain: set[str] = set()
    for exp in experiments:
        params = exp.params
        for name in (params.get("evaluate") or {}).get("datasets") or []:
            if name not in datasets:
                datasets.append(name)
        in_domain.update((params.get("train") or {}).get("datasets") or [])
        if (params.get("augment") or {}).get("dataset"):
            in_domain.add(params["augment"]["dataset"])
    ordered = [d for d in datasets if d in in_domain] + [d for d in datasets if d not in in_domain]
    return ordered, {d: "in-domain" if d in in_domain else "ood" for d in ordered}


def _cell_row(group: pd.DataFrame, datasets: list[str], setting_keys: list[str]) -> Row:
    group = group.sort_values("train_seed", key=lambda seeds: seeds.map(_number), kind="stable")
    replicates: list[Experiment] = list(group["experiment"])
    flat = replicates[0].flat_params()
    kind = _kind(flat)
    augmented = kind == "augmented"
    # hard negatives or judge labels alone generate nothing: no generator, strategy or augment settings to show
    generated = augmented and (_number(flat.get(SCALE, 0)) > 0 or _number(flat.get(INFUSED, 0)) > 0)
    values = {}
    for d in datasets:
        columns = [f"{d}:{m}" for m in REPORTED_MEASURES if f"{d}:{m}" in group]
        means = group[columns].mean(skipna=False) if columns else pd.Series(dtype=float)
        values[d] = {c.split(":", 1)[1]: float(v) for c, v in means.items() if not math.isnan(v)}
    return Row(
        experiments=replicates, kind=kind, retriever=_short(flat.get("train.model")),
        generator=_short(flat.get("augment.generator")) if generated else None,
        strategy=flat.get("augment.strategy") if generated else None,
        scale=int(_number(flat.get(SCALE))),
        settings={k: flat.get(k) if generated or not k.startswith(AUGMENTATION_PREFIXES) else None
                  for k in setting_keys},
        synthetic_pairs=0 if not augmented else None,
        values=values,
        cost={name: _mean_or_none(group[name]) for name in COSTS},
        series=_canonical({k: v for k, v in flat.items() if k not in (SCALE, "augment.num_passages", *REPLICATE_KEYS)}),
        sources=pair_sources(flat),
    )


def _compare(row: Row, reference: Row, datasets: list[str], metric: str, test: str, notes: list[str],
             missing: set[str]) -> None:
    row.reference = reference.experiment
    pairs, reference_pairs = _train_pairs(row.experiments[0]), _train_pairs(reference.experiments[0])
    if pairs is not None and reference_pairs is not None:
        row.synthetic_pairs = pairs - reference_pairs
    for result in compare_cells(row, reference, datasets, metric, test, missing):
        row.delta[result.dataset] = result.delta
        row.p_value[result.dataset] = result.p_value
        if result.no_shared_seed:
            notes.append(f"{row.experiment}: shares no training seed with {reference.experiment}, so no delta")


@dataclass(frozen=True)
class HeadToHead:
    """Cell a against cell b on one dataset: the delta of the metric paired by training seed, and the paired test
    over per-query scores averaged over seeds. The matrix compares each cell with its baseline this way; two
    augmented cells (two generators, two strategies) are compared the same way."""

    dataset: str
    delta: Estimate | None
    p_value: float | None
    no_shared_seed: bool = False  # both cells have the metric, but no training seed in common: no delta


def compare_cells(a: Row, b: Row, datasets: list[str], metric: str = "ndcg_at_10", test: str = "t-test",
                  missing: set[str] | None = None) -> list[HeadToHead]:
    """`missing` collects the experiments without per-query scores (their p-value is None)."""
    missing = set() if missing is None else missing
    results = []
    for d in datasets:
        mine, theirs = _by_train_seed(a, d, metric), _by_train_seed(b, d, metric)
        shared = bool(set(mine) & set(theirs))
        results.append(HeadToHead(d, delta_estimate(mine, theirs) if shared else None,
                                  _p_value(a, b, d, metric, test, missing),
                                  no_shared_seed=bool(mine and theirs and not shared)))
    return results


def _by_train_seed(row: Row, dataset: str, metric: str) -> dict[int, float]:
    """Training seed -> the metric, averaged over the augmentation seeds trained with it."""
    values: dict[int, list[float]] = {}
    for exp in row.experiments:
        value = _measures(exp.metrics.get(layout.metrics(dataset).as_posix())).get(metric)
        if value is not None:
            values.setdefault(int(_number(exp.flat_params().get(TRAIN_SEED))), []).append(value)
    return {seed: math.fsum(v) / len(v) for seed, v in values.items()}


def _p_value(row: Row, reference: Row, dataset: str, metric: str, test: str, missing: set[str]) -> float | None:
    mine, theirs = _replicate_scores(row, dataset, metric, missing), _replicate_scores(reference, dataset, metric, missing)
    if mine is None or theirs is None:
        return None
    a, b = per_query_mean(mine), per_query_mean(theirs)
    if set(a) != set(b):
        raise AugirError(f"{row.experiment} and {reference.experiment} scored different queries on {dataset}: "
                         "not comparable")
    p = paired_p_value(a, b, test)  # type: ignore[arg-type]
    return None if p is None or math.isnan(p) else p


def _replicate_scores(row: Row, dataset: str, metric: str, missing: set[str]) -> list[dict[str, float]] | None:
    scores = []
    for exp in row.experiments:
        per_query = _per_query(exp, dataset, metric)
        if per_query is None:
            missing.add(exp.name)
            return None
        scores.append(per_query)
    try:
        per_query_mean(scores)
    except ValueError as error:
        raise AugirError(f"{row.experiment}: its replicates scored different queries on {dataset}") from error
    return scores


def _estimate(row: Row, dataset: str, metric: str, interval: str, missing: set[str]) -> Estimate | None:
    value = row.values[dataset].get(metric)
    if value is None:
        return None
    seed_means = [_measures(e.metrics.get(layout.metrics(dataset).as_posix())).get(metric) for e in row.experiments]
    seed_means = [v for v in seed_means if v is not None]
    if interval == "bootstrap":
        scores = _replicate_scores(row, dataset, metric, missing)
        if scores is None:
            return Estimate(value, None, None, len(seed_means))
        estimate = cell_estimate(seed_means, scores, interval="bootstrap")
    else:
        estimate = cell_estimate(seed_means, interval="t")
    return Estimate(value, estimate.low, estimate.high, estimate.seeds)  # the mean exactly as in the table


def _correct(rows: list[Row], datasets: list[str], correction: str) -> None:
    """One family: every (augmented cell, dataset) comparison of the report."""
    slots = [(row, d) for row in rows if row.kind == "augmented" for d in datasets if d in row.p_value]
    adjusted = corrected_p_values([row.p_value[d] for row, d in slots], correction)  # type: ignore[arg-type]
    for (row, d), value in zip(slots, adjusted):
        row.p_corrected[d] = value


def _costs(exp: Experiment, flat: dict[str, Any], datasets: list[str]) -> dict[str, float | None]:
    """Generation is counted pro rata: a grid generates once for its largest scale and the smaller scales take the
    first pairs of it, so a cell costs the share of the generation its pairs used (all of it at the largest)."""
    augment = exp.metrics.get(layout.metrics("augment").as_posix()) or {}
    train = exp.metrics.get(layout.metrics("train").as_posix()) or {}
    encode_seconds = [(exp.metrics.get(layout.encode_metrics(d).as_posix()) or {}).get("seconds") for d in datasets]
    share = 0.0
    if _kind(flat) == "augmented":
        generated, scale = _number(augment.get("generated")), _number(flat.get(SCALE))
        # infused pairs come from every synthetic query; synthetic ones from the first train.augmented_pairs
        share = 1.0 if _number(flat.get(INFUSED)) or not generated else min(1.0, scale / generated)
    seconds, tokens = _number_or_none(augment.get("generation_seconds")), _number_or_none(augment.get("new_tokens"))
    return {
        "generation_seconds": share * seconds if seconds is not None else None if share else 0.0,
        "generation_tokens": share * tokens if tokens is not None else None if share else 0.0,
        "train_seconds": _number_or_none(train.get("seconds")),
        "encode_seconds": math.fsum(encode_seconds)
        if encode_seconds and all(isinstance(s, (int, float)) for s in encode_seconds) else None,
    }


def _deduplicated(experiments: list[Experiment], notes: list[str]) -> list[Experiment]:
    seen: dict[str, Experiment] = {}
    for exp in experiments:
        key = _canonical(exp.flat_params())
        if key in seen:
            notes.append(f"{exp.name}: same params as {seen[key].name}, left out")
        else:
            seen[key] = exp
    return list(seen.values())


def _cell_key(flat: dict[str, Any]) -> str:
    return _canonical({k: v for k, v in flat.items() if k not in REPLICATE_KEYS})


def _kind(flat: dict[str, Any]) -> str:
    if not _number(flat.get(EPOCHS, 1)):
        return "zero-shot"
    return "no-augmentation" if pair_sources(flat) in ("real", "none") else "augmented"


def pair_sources(flat: dict[str, Any]) -> str:
    """What a cell trains on, by source: `real`, `real + synthetic`, `real + infused`, `synthetic + infused`, ...,
    and the training data the judge or a miner adds: `+ labelled`, `+ mined negatives` (`(judged)`: cleaned by
    the judge). A cell with any source but real pairs is compared with its retriever's real-pairs cell."""
    real = flat.get("train.real_pairs")
    negatives = "mined negatives (judged)" if flat.get("negatives.judge") else "mined negatives"
    sources = [name for name, used in (("real", real is None or _number(real) > 0),
                                       ("synthetic", _number(flat.get(SCALE, 0)) > 0),
                                       ("infused", _number(flat.get(INFUSED, 0)) > 0),
                                       ("labelled", bool(flat.get("labels.judge"))),
                                       (negatives, _number(flat.get("negatives.count", 0)) > 0)) if used]
    return " + ".join(sources) or "none"


def _retriever_key(exp: Experiment) -> str:
    """Everything but the augmentation, the training-data settings (hard negatives, the judge) and the seeds: cells
    with the same key differ only in what they train on."""
    return _canonical({k: v for k, v in exp.flat_params().items()
                       if not k.startswith((*AUGMENTATION_PREFIXES, *TRAINING_DATA_PREFIXES))
                       and k not in (SCALE, INFUSED, *REPLICATE_KEYS)})


def _varying_keys(frame: pd.DataFrame) -> list[str]:
    keys: list[str] = []
    for flat in frame["params"]:
        keys += [k for k in flat if k not in keys]
    varying = []
    for key in keys:
        if key in SHOWN or key in REPLICATE_KEYS:
            continue
        relevant = [flat for flat, kind in zip(frame["params"], frame["kind"])
                    if not key.startswith(AUGMENTATION_PREFIXES) or kind == "augmented"]
        if len({_canonical(flat.get(key)) for flat in relevant}) > 1:
            varying.append(key)
    return varying


def _measures(record: dict[str, Any] | None) -> dict[str, float]:
    if not record:
        return {}
    return {key: record[key] for key in REPORTED_MEASURES if isinstance(record.get(key), (int, float))}


def _train_pairs(exp: Experiment) -> int | None:
    value = (exp.metrics.get(layout.metrics("train").as_posix()) or {}).get("pairs")
    return int(value) if isinstance(value, (int, float)) else None


def _per_query(exp: Experiment, name: str, metric: str) -> dict[str, float] | None:
    path = per_query_path(name)
    text = exp.read_file(path)
    if text is None:
        return None
    try:
        return {str(q): float(v) for q, v in json.loads(text)[metric].items()}
    except (ValueError, KeyError, AttributeError) as error:
        raise AugirError(f"{exp.name}: {path} is not a per-query file ({error})") from error


def _has_bm25(experiments: list[Experiment], datasets: list[str]) -> bool:
    return any(layout.bm25_metrics(d).as_posix() in exp.metrics for exp in experiments for d in datasets)


def _bm25_row(experiments: list[Experiment], datasets: list[str]) -> Row:
    """BM25 does not depend on the model: its numbers are those of the first experiment that has them."""
    values: dict[str, dict[str, float]] = {}
    source: Experiment | None = None
    for d in datasets:
        for exp in experiments:
            record = exp.metrics.get(layout.bm25_metrics(d).as_posix())
            if record:
                values[d] = _measures(record)
                source = source or exp
                break
        else:
            values[d] = {}
    return Row(experiments=[source] if source else [], kind="bm25", retriever="bm25 (bm25s)", generator=None,
               strategy=None, scale=0, settings={}, synthetic_pairs=None, values=values)


def _row_order(row: Row) -> tuple:
    return (KINDS.index(row.kind) > 0, row.retriever, KINDS.index(row.kind), row.generator or "", row.strategy or "",
            row.scale, _canonical(row.settings))


def _number(value: Any) -> float:
    try:
        return float(value)
    except (TypeError, ValueError):
        return 0.0


def _number_or_none(value: Any) -> float | None:
    return float(value) if isinstance(value, (int, float)) and not isinstance(value, bool) else None


def _mean_or_none(values: pd.Series) -> float | None:
    present = [float(v) for v in values if v is not None and not (isinstance(v, float) and math.isnan(v))]
    return math.fsum(present) / len(present) if present and len(present) == len(values) else None


def _short(value: Any) -> str:
    text = "" if value is None else str(value)
    return Path(text).name if text.startswith(("/", "./", "../", "~")) else text


def _canonical(value: Any) -> str:
    return json.dumps(value, sort_keys=True, default=str)
