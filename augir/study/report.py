"""`augir report`: the experiment matrix of a grid, read against its baselines.

Reads the experiments (`dvc exp show --json`; per-query scores from `data/eval/<name>/per_query.json` at each
experiment's revision, through DVC's cache) or a folder of experiment folders (each with `params.yaml`, `metrics/`
and `data/eval/<name>/per_query.json`), and writes into one folder:
- `matrix.md` and `matrix.csv`: one row per setting; per evaluation dataset (in-domain first, then
  out-of-distribution) the metric, its delta against the same retriever fine-tuned without augmentation, and
  the p-value of a paired test over per-query scores (scipy.stats: `ttest_rel`, or `wilcoxon`). BM25 and the
  zero-shot and no-augmentation rows of every retriever are in the same table. The CSV keeps every number at
  full precision, exactly as in the metrics files.
- `scaling.png` (metric against the number of synthetic pairs, per retriever), `generators.png` and
  `strategies.png` (settings that differ only in the generator, or only in the strategy).
- `plots/*.csv` and a `dvc.yaml` holding `dvc plots` definitions of the same curves (`dvc plots show`).
"""

from __future__ import annotations

import csv
import io
import json
import math
import os
import re
import subprocess
import sys
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from augir import layout
from augir.errors import AugirError
from augir.fileio import atomic_folder, write_json_atomic, write_text_atomic
from augir.retrieval.evaluate import PER_QUERY_FILE
from augir.retrieval.metrics import REPORTED_MEASURES
from augir.study.grid import MAPPING_PARAMS, Grid, _absolute_source, _flatten

SCALE = "train.augmented_pairs"
INFUSED = "train.infused_pairs"
EPOCHS = "train.epochs"
SHOWN = ("train.model", "augment.generator", "augment.strategy", SCALE, EPOCHS, "augment.num_passages")
AUGMENTATION_PREFIXES = ("augment.", "filter.", "infuse.")
KINDS = ("bm25", "zero-shot", "no-augmentation", "augmented")
TESTS = ("t-test", "wilcoxon")
SIGNIFICANCE_LEVEL = 0.05
IDENTITY_FILE = "experiment.json"  # in an exported experiment folder: its DVC name and revision
COMPARED = {"augment.generator": "generators", "augment.strategy": "strategies"}


@dataclass
class Experiment:
    """One finished experiment: its params, its metrics files, and a way to read its other files."""

    name: str
    rev: str
    params: dict[str, Any]
    metrics: dict[str, dict[str, Any]]  # repository path (metrics/<name>.json) -> content
    read_file: Callable[[str], str | None] = field(repr=False, default=lambda path: None)

    def flat_params(self) -> dict[str, Any]:
        return _flatten(self.params)


# ------------------------------------------------------------------------------------------------- reading


def experiments_from_exp_show(data: Any, read_file: Callable[[str, str], str | None]) -> list[Experiment]:
    """Experiments in the output of `dvc exp show --json` (the workspace and commits themselves are not)."""
    found: list[Experiment] = []

    def visit_experiment(node: dict[str, Any]) -> None:
        rev = str(node.get("rev") or "")
        body = node.get("data") or {}
        if rev and isinstance(body, dict) and not node.get("error"):
            params = ((body.get("params") or {}).get("params.yaml") or {}).get("data") or {}
            metrics = {
                path: entry["data"]
                for path, entry in (body.get("metrics") or {}).items()
                if isinstance(entry, dict) and isinstance(entry.get("data"), dict)
            }
            if params and metrics:
                name = node.get("name") or rev[:7]
                found.append(Experiment(str(name), rev, params, metrics, lambda path, rev=rev: read_file(rev, path)))
        for child in node.get("experiments") or []:
            visit_group(child)

    def visit_group(group: Any) -> None:
        executor = group.get("executor") if isinstance(group, dict) else None
        if isinstance(executor, dict) and executor.get("state") not in (None, "success"):
            return  # queued, running or failed
        if isinstance(group, dict):
            for node in group.get("revs") or []:
                if isinstance(node, dict):
                    visit_experiment(node)

    if not isinstance(data, list):
        raise AugirError("dvc exp show --json: expected a list of commits")
    for commit in data:
        if isinstance(commit, dict):
            for group in commit.get("experiments") or []:
                visit_group(group)
    return found


def experiments_from_dvc(root: Path = Path("."), all_commits: bool = False) -> list[Experiment]:
    """Run `dvc exp show --json` in `root`; per-query scores are read at each experiment's revision from the cache."""
    command = [sys.executable, "-m", "dvc", "exp", "show", "--json", "--no-fetch"]
    command += ["--all-commits"] if all_commits else []
    result = subprocess.run(command, cwd=root, capture_output=True, text=True)
    if result.returncode != 0:
        lines = [line for line in result.stderr.splitlines() if line.strip()]
        raise AugirError(f"dvc exp show failed in {root}: {lines[-1] if lines else result.returncode}")
    text = result.stdout
    try:
        data = json.loads(text[text.index("["):] if "[" in text else text)
    except ValueError as error:
        raise AugirError(f"dvc exp show --json: output is not JSON ({error})") from error

    return experiments_from_exp_show(data, _revision_reader(root))


def _revision_reader(root: Path) -> Callable[[str, str], str | None]:
    """Files at a revision, git-tracked or DVC-tracked (then from the local cache), None where they cannot be read."""
    from dvc.fs import DVCFileSystem

    systems: dict[str, Any] = {}

    def read_file(rev: str, path: str) -> str | None:
        try:
            if rev not in systems:
                systems[rev] = DVCFileSystem(url=str(root), rev=rev)
            return systems[rev].read_text(path, encoding="utf-8")
        except Exception:  # noqa: BLE001 - missing file, object not in the cache, no remote: no per-query scores
            return None

    return read_file


def experiments_from_folder(folder: Path) -> list[Experiment]:
    """A folder of experiment folders (or one): `params.yaml`, `metrics/**.json`, `data/eval/<name>/per_query.json`."""
    if not folder.is_dir():
        raise AugirError(f"{folder}: no such folder")
    candidates = [folder] if (folder / "params.yaml").is_file() else sorted(p for p in folder.iterdir() if p.is_dir())
    found = []
    for path in candidates:
        if not (path / "params.yaml").is_file():
            continue
        try:
            params = yaml.safe_load((path / "params.yaml").read_text(encoding="utf-8")) or {}
        except yaml.YAMLError as error:
            raise AugirError(f"{path / 'params.yaml'}: not valid YAML") from error
        metrics = {}
        for file in sorted((path / layout.METRICS).rglob("*.json")):
            relative = file.relative_to(path).as_posix()
            try:
                metrics[relative] = json.loads(file.read_text(encoding="utf-8"))
            except ValueError as error:
                raise AugirError(f"{file}: not valid JSON ({error})") from error

        def read_file(relative: str, base: Path = path) -> str | None:
            target = base / relative
            return target.read_text(encoding="utf-8") if target.is_file() else None

        identity = _read_identity(path)
        found.append(Experiment(identity.get("name", path.name), identity.get("rev", path.name), params, metrics,
                                read_file))
    return found


def _read_identity(path: Path) -> dict[str, str]:
    """The name and revision an exported experiment had in DVC (`experiment.json`), if it was exported."""
    file = path / IDENTITY_FILE
    if not file.is_file():
        return {}
    try:
        identity = json.loads(file.read_text(encoding="utf-8"))
    except ValueError as error:
        raise AugirError(f"{file}: not valid JSON ({error})") from error
    return {key: str(identity[key]) for key in ("name", "rev") if key in identity}


def save_experiments(experiments: list[Experiment], folder: Path) -> None:
    """Each experiment as a folder that `experiments_from_folder` reads back into the same report: `params.yaml`,
    `metrics/**.json`, the per-query scores of every evaluation dataset, and its DVC name and revision."""
    with atomic_folder(folder) as staging:
        for number, exp in enumerate(experiments, start=1):
            target = staging / f"{number:02d}-{exp.name}"  # read back sorted by name, so in this order
            write_text_atomic(target / "params.yaml", yaml.safe_dump(exp.params, sort_keys=False))
            write_json_atomic(target / IDENTITY_FILE, {"name": exp.name, "rev": exp.rev})
            for relative, data in exp.metrics.items():
                write_json_atomic(target / relative, data)
            for dataset in (exp.params.get("evaluate") or {}).get("datasets") or []:
                text = exp.read_file(per_query_path(dataset))
                if text is not None:
                    write_text_atomic(target / per_query_path(dataset), text)


def select_grid(experiments: list[Experiment], grid: Grid, root: Path = Path(".")) -> list[Experiment]:
    """The experiments that are cells of `grid` (every param the cell sets is equal)."""
    wanted = [_absolute_cell(cell, root) for cell in grid.cells]
    return [exp for exp in experiments if any(same_settings(exp.flat_params(), cell) for cell in wanted)]


def _absolute_cell(cell: dict[str, Any], root: Path) -> dict[str, Any]:
    out = {}
    for key, value in cell.items():
        if key in MAPPING_PARAMS:
            value = {name: _absolute_source(source, root) for name, source in value.items()}
        elif key.rpartition(".")[0] in MAPPING_PARAMS:
            value = _absolute_source(value, root)
        out[key] = value
    return out


def same_settings(params: dict[str, Any], wanted: dict[str, Any]) -> bool:
    """Whether an experiment's flat params hold every value a grid cell sets (`download.sources` entries one by one)."""
    for key, value in wanted.items():
        parent, _, name = key.rpartition(".")
        if parent in MAPPING_PARAMS:
            mapping = params.get(parent)
            if not isinstance(mapping, dict) or name not in mapping or not _equal(mapping[name], value):
                return False
        elif key not in params or not _equal(params[key], value):
            return False
    return True


def _equal(a: Any, b: Any) -> bool:
    numbers = (int, float)
    if isinstance(a, numbers) and isinstance(b, numbers) and not isinstance(a, bool) and not isinstance(b, bool):
        return math.isclose(float(a), float(b), rel_tol=1e-12, abs_tol=0.0)
    if isinstance(a, str) and isinstance(b, (int, float)) or isinstance(b, str) and isinstance(a, (int, float)):
        try:  # a float that went through `dvc exp run -S` can come back as text ("5e-05")
            return math.isclose(float(a), float(b), rel_tol=1e-12)
        except ValueError:
            return False
    if isinstance(a, dict) and isinstance(b, dict):
        return a.keys() == b.keys() and all(_equal(a[k], b[k]) for k in a)
    if isinstance(a, list) and isinstance(b, list):
        return len(a) == len(b) and all(_equal(x, y) for x, y in zip(a, b))
    return a == b


# ------------------------------------------------------------------------------------------------- the matrix


@dataclass
class Row:
    experiment: str
    rev: str
    kind: str
    retriever: str
    generator: str | None
    strategy: str | None
    scale: int
    settings: dict[str, Any]  # other params that vary across the matrix
    synthetic_pairs: int | None
    values: dict[str, dict[str, float]]  # dataset -> measure -> value
    delta: dict[str, float | None] = field(default_factory=dict)
    p_value: dict[str, float | None] = field(default_factory=dict)
    reference: str | None = None
    series: str = ""  # retriever setting + augmentation, for the curves
    sources: str = ""  # what it trains on (pair_sources)


@dataclass
class Matrix:
    title: str
    description: str
    metric: str
    test: str
    datasets: list[str]  # in-domain first
    roles: dict[str, str]  # dataset -> "in-domain" | "ood"
    setting_keys: list[str]
    rows: list[Row]
    notes: list[str]


def paired_p_value(a: list[float], b: list[float], test: str = "t-test") -> float | None:
    """Two-sided p-value of a paired test over per-query scores; None where it is undefined (no differences)."""
    from scipy import stats

    if len(a) != len(b):
        raise AugirError(f"paired test: {len(a)} and {len(b)} scores")
    if len(a) < 2 or all(x == y for x, y in zip(a, b)):
        return None
    if test == "t-test":
        p = float(stats.ttest_rel(a, b).pvalue)
    elif test == "wilcoxon":
        p = float(stats.wilcoxon(a, b).pvalue)
    else:
        raise AugirError(f"unknown test {test!r}: use {' or '.join(TESTS)}")
    return None if math.isnan(p) else p


def build_matrix(
    experiments: list[Experiment], *, metric: str = "ndcg_at_10", test: str = "t-test", title: str = "experiments",
    description: str = "",
) -> Matrix:
    if metric not in REPORTED_MEASURES:
        raise AugirError(f"unknown metric {metric!r}: use one of {', '.join(REPORTED_MEASURES)}")
    if test not in TESTS:
        raise AugirError(f"unknown test {test!r}: use {' or '.join(TESTS)}")
    notes: list[str] = []
    experiments = _deduplicated(experiments, notes)
    if not experiments:
        raise AugirError("no finished experiments with metrics: queue and run a grid first (`augir grid <name>`)")

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
    datasets = [d for d in datasets if d in in_domain] + [d for d in datasets if d not in in_domain]
    roles = {d: "in-domain" if d in in_domain else "ood" for d in datasets}

    flats = {exp.rev: exp.flat_params() for exp in experiments}
    setting_keys = _varying_keys(experiments, flats)
    references = {}
    for exp in experiments:
        if _kind(flats[exp.rev]) == "no-augmentation":
            references.setdefault(_retriever_key(flats[exp.rev]), exp)

    rows = [_bm25_row(experiments, datasets)] if _has_bm25(experiments, datasets) else []
    if not rows:
        notes.append("no BM25 metrics (metrics/bm25/<name>.json) in these experiments")
    missing_per_query: set[str] = set()
    for exp in experiments:
        flat = flats[exp.rev]
        kind = _kind(flat)
        augmented = kind == "augmented"
        row = Row(
            experiment=exp.name, rev=exp.rev, kind=kind, retriever=_short(flat.get("train.model")),
            generator=_short(flat.get("augment.generator")) if augmented else None,
            strategy=flat.get("augment.strategy") if augmented else None,
            scale=int(flat.get(SCALE) or 0),
            settings={k: flat.get(k) if augmented or not k.startswith(AUGMENTATION_PREFIXES) else None
                      for k in setting_keys},
            synthetic_pairs=0 if not augmented else None,
            values={d: _measures(exp.metrics.get(layout.metrics(d).as_posix())) for d in datasets},
            series=_canonical({k: v for k, v in flat.items() if k not in (SCALE, "augment.num_passages")}),
            sources=pair_sources(flat),
        )
        reference = references.get(_retriever_key(flat)) if augmented else None
        if augmented and reference is None:
            notes.append(f"{exp.name}: no experiment of the same retriever without augmentation, so no delta")
        if reference is not None:
            row.reference = reference.name
            pairs, reference_pairs = _train_pairs(exp), _train_pairs(reference)
            if pairs is not None and reference_pairs is not None:
                row.synthetic_pairs = pairs - reference_pairs
            for d in datasets:
                mine = row.values[d].get(metric)
                theirs = _measures(reference.metrics.get(layout.metrics(d).as_posix())).get(metric)
                row.delta[d] = None if mine is None or theirs is None else mine - theirs
                row.p_value[d] = _p_value(exp, reference, d, metric, test, missing_per_query)
        rows.append(row)
    for name in sorted(missing_per_query):
        notes.append(f"{name}: no per-query scores (data/eval/<name>/{PER_QUERY_FILE}), so no significance test")
    rows.sort(key=_row_order)
    return Matrix(title, description, metric, test, datasets, roles, setting_keys, rows, notes)


def _deduplicated(experiments: list[Experiment], notes: list[str]) -> list[Experiment]:
    seen: dict[str, Experiment] = {}
    for exp in experiments:
        key = _canonical(exp.flat_params())
        if key in seen:
            notes.append(f"{exp.name}: same params as {seen[key].name}, left out")
        else:
            seen[key] = exp
    return list(seen.values())


def _kind(flat: dict[str, Any]) -> str:
    if not _number(flat.get(EPOCHS, 1)):
        return "zero-shot"
    return "no-augmentation" if pair_sources(flat) in ("real", "none") else "augmented"


def pair_sources(flat: dict[str, Any]) -> str:
    """What a cell trains on, by source: `real`, `real + synthetic`, `real + infused`, `synthetic + infused`, ..."""
    real = flat.get("train.real_pairs")
    sources = [name for name, used in (("real", real is None or _number(real) > 0),
                                       ("synthetic", _number(flat.get(SCALE, 0)) > 0),
                                       ("infused", _number(flat.get(INFUSED, 0)) > 0)) if used]
    return " + ".join(sources) or "none"


def _number(value: Any) -> float:
    try:
        return float(value)
    except (TypeError, ValueError):
        return 0.0


def _retriever_key(flat: dict[str, Any]) -> str:
    """Everything but the augmentation: experiments with the same key differ only in their synthetic pairs."""
    return _canonical({k: v for k, v in flat.items()
                       if not k.startswith(AUGMENTATION_PREFIXES) and k not in (SCALE, INFUSED)})


def _varying_keys(experiments: list[Experiment], flats: dict[str, dict[str, Any]]) -> list[str]:
    keys: list[str] = []
    for exp in experiments:
        keys += [k for k in flats[exp.rev] if k not in keys]
    varying = []
    for key in keys:
        if key in SHOWN:
            continue
        relevant = [flats[e.rev] for e in experiments
                    if not key.startswith(AUGMENTATION_PREFIXES) or _kind(flats[e.rev]) == "augmented"]
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


def per_query_path(dataset: str) -> str:
    """Where evaluate@<dataset> keeps per-query scores (inside its DVC-cached output folder)."""
    return (layout.evaluation(dataset) / PER_QUERY_FILE).as_posix()


def _per_query(exp: Experiment, name: str, metric: str) -> dict[str, float] | None:
    path = per_query_path(name)
    text = exp.read_file(path)
    if text is None:
        return None
    try:
        return {str(q): float(v) for q, v in json.loads(text)[metric].items()}
    except (ValueError, KeyError, AttributeError) as error:
        raise AugirError(f"{exp.name}: {path} is not a per-query file ({error})") from error


def _p_value(
    exp: Experiment, reference: Experiment, dataset: str, metric: str, test: str, missing: set[str]
) -> float | None:
    mine, theirs = _per_query(exp, dataset, metric), _per_query(reference, dataset, metric)
    if mine is None or theirs is None:
        missing.add(exp.name if mine is None else reference.name)
        return None
    if set(mine) != set(theirs):
        raise AugirError(f"{exp.name} and {reference.name} scored different queries on {dataset}: not comparable")
    queries = sorted(mine)
    return paired_p_value([mine[q] for q in queries], [theirs[q] for q in queries], test)


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
    return Row(experiment=source.name if source else "", rev=source.rev if source else "", kind="bm25",
               retriever="bm25 (bm25s)", generator=None, strategy=None, scale=0, settings={}, synthetic_pairs=None,
               values=values)


def _row_order(row: Row) -> tuple:
    return (KINDS.index(row.kind) > 0, row.retriever, KINDS.index(row.kind), row.generator or "", row.strategy or "",
            row.scale, _canonical(row.settings))


def _short(value: Any) -> str:
    text = "" if value is None else str(value)
    return Path(text).name if text.startswith(("/", "./", "../", "~")) else text


def _canonical(value: Any) -> str:
    return json.dumps(value, sort_keys=True, default=str)


# ------------------------------------------------------------------------------------------------- writing


def _fmt(value: float | None, digits: int = 4, signed: bool = False) -> str:
    if value is None:
        return ""
    return f"{value:+.{digits}f}" if signed else f"{value:.{digits}f}"


def _fmt_p(value: float | None) -> str:
    if value is None:
        return ""
    text = f"{value:.3f}" if value >= 0.001 else f"{value:.1e}"
    return text + ("*" if value < SIGNIFICANCE_LEVEL else "")


def _dataset_heading(matrix: Matrix, d: str) -> str:
    return f"{d} ({'in-domain' if matrix.roles[d] == 'in-domain' else 'OOD'})"


def _value_text(value: Any) -> str:
    if value is None:
        return "-"
    return _short(value) if isinstance(value, str) else json.dumps(value)


def markdown(matrix: Matrix, images: dict[str, str | None]) -> str:
    metric = matrix.metric
    lines = [f"# {matrix.title}", ""]
    if matrix.description:
        lines += [" ".join(matrix.description.split()), ""]
    test = ("paired t-test (scipy.stats.ttest_rel)" if matrix.test == "t-test"
            else "Wilcoxon signed-rank test (scipy.stats.wilcoxon)")
    in_domain = [d for d in matrix.datasets if matrix.roles[d] == "in-domain"]
    ood = [d for d in matrix.datasets if matrix.roles[d] == "ood"]
    lines += [
        f"{metric} per evaluation dataset; in-domain: {', '.join(in_domain) or 'none'}; out-of-distribution: "
        f"{', '.join(ood) or 'none'}. Δ: against the same retriever fine-tuned without augmentation; p: two-sided "
        f"{test} over per-query {metric} of the same pair, uncorrected for multiple comparisons; * p < "
        f"{SIGNIFICANCE_LEVEL}. Scale: `train.augmented_pairs` asked for; synthetic pairs: those actually added "
        "(queries dropped by clean-up or filtering leave fewer).",
        "",
    ]
    header = ["experiment", "retriever", "kind", "generator", "strategy", "scale", "synthetic pairs",
              *matrix.setting_keys]
    for d in matrix.datasets:
        header += [f"{_dataset_heading(matrix, d)} {metric}", "Δ", "p"]
    lines += ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    for row in matrix.rows:
        kind = f"{row.kind} ({row.sources})" if row.kind == "augmented" else row.kind
        cells = [row.experiment if row.kind != "bm25" else "", row.retriever, kind, row.generator or "-",
                 row.strategy or "-", str(row.scale) if row.kind == "augmented" else "0" if row.kind != "bm25" else "-",
                 "" if row.synthetic_pairs is None else str(row.synthetic_pairs),
                 *[_value_text(row.settings.get(k)) for k in matrix.setting_keys]]
        for d in matrix.datasets:
            cells += [_fmt(row.values[d].get(metric)), _fmt(row.delta.get(d), signed=True), _fmt_p(row.p_value.get(d))]
        lines.append("| " + " | ".join(cells) + " |")
    lines.append("")
    for name, path in images.items():
        lines.append(f"![{name}]({path})" if path else f"{name}: no plot, no settings in the matrix to compare.")
    if matrix.notes:
        lines += ["", "Notes:", *[f"- {note}" for note in matrix.notes]]
    return "\n".join(lines) + "\n"


def csv_text(matrix: Matrix) -> str:
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    header = ["experiment", "rev", "kind", "retriever", "generator", "strategy", "scale", "synthetic_pairs",
              *matrix.setting_keys]
    for d in matrix.datasets:
        prefix = f"{matrix.roles[d]}:{d}:"
        header += [prefix + m for m in REPORTED_MEASURES] + [f"{prefix}delta_{matrix.metric}", f"{prefix}p_value"]
    header += ["reference", "pair_sources"]
    writer.writerow(header)
    for row in matrix.rows:
        out = [row.experiment, row.rev, row.kind, row.retriever, row.generator or "", row.strategy or "",
               row.scale, "" if row.synthetic_pairs is None else row.synthetic_pairs,
               *["" if row.settings.get(k) is None else _value_text(row.settings.get(k)) for k in matrix.setting_keys]]
        for d in matrix.datasets:
            out += [_csv_number(row.values[d].get(m)) for m in REPORTED_MEASURES]
            out += [_csv_number(row.delta.get(d)), _csv_number(row.p_value.get(d))]
        out += [row.reference or "", row.sources]
        writer.writerow(out)
    return buffer.getvalue()


def _csv_number(value: float | None) -> str:
    return "" if value is None else repr(value)  # repr: the exact float of the metrics file


def _slug(text: str) -> str:
    return re.sub(r"[^A-Za-z0-9._-]+", "-", text).strip("-") or "x"


@dataclass
class Curve:
    label: str
    points: list[tuple[int, float]]  # (scale, value), scale 0 = no augmentation


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
        points = [(r.scale, r.values[dataset][matrix.metric]) for r in rows if matrix.metric in r.values[dataset]]
        reference = by_reference.get(first.reference or "")
        if reference is not None and matrix.metric in reference.values[dataset]:
            points.append((0, reference.values[dataset][matrix.metric]))
        extras = [f"{_short(first.settings[k])}" for k in matrix.setting_keys if first.settings.get(k) is not None]
        label = " / ".join([first.retriever, first.generator or "", first.strategy or "", *extras])
        curves.append(Curve(label, sorted(points)))
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
    plt = _pyplot()
    fig, axes = plt.subplots(1, len(matrix.datasets), figsize=(6 * len(matrix.datasets), 4.5), squeeze=False)
    for ax, d in zip(axes[0], matrix.datasets):
        for curve in curves[d]:
            xs, ys = zip(*curve.points)
            ax.plot(xs, ys, marker="o", label=curve.label)
        bm25 = _bm25_value(matrix, d)
        if bm25 is not None:
            ax.axhline(bm25, color="grey", linestyle="--", label="BM25")
        zero_shot = [r for r in matrix.rows if r.kind == "zero-shot" and matrix.metric in r.values[d]]
        for marker, r in zip("xv^<>+1234", zero_shot):
            ax.scatter([0], [r.values[d][matrix.metric]], marker=marker, color="black",
                       label=f"{r.retriever} zero-shot")
        ax.set_title(_dataset_heading(matrix, d))
        ax.set_xlabel("synthetic pairs (train.augmented_pairs)")
        ax.set_ylabel(matrix.metric)
        ax.grid(alpha=0.3)
    axes[0][0].legend(fontsize="small")
    fig.suptitle(f"{matrix.title}: scaling curves (x at 0: zero-shot)")
    fig.tight_layout()
    _save(fig, path)
    return True


def plot_comparison(matrix: Matrix, axis: str, path: Path) -> bool:
    groups = {d: comparisons(matrix, d, axis) for d in matrix.datasets}
    if not any(groups.values()):
        return False
    plt = _pyplot()
    fig, axes = plt.subplots(1, len(matrix.datasets), figsize=(6 * len(matrix.datasets), 4.5), squeeze=False)
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
        ax.set_title(_dataset_heading(matrix, d))
        ax.set_ylabel(matrix.metric)
    axes[0][0].legend(fontsize="small")
    fig.suptitle(f"{matrix.title}: {axis.split('.')[-1]} against {axis.split('.')[-1]} (grey: no augmentation)")
    fig.tight_layout()
    _save(fig, path)
    return True


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
            definitions.append({f"{matrix.title}: scaling, {_dataset_heading(matrix, d)}": {
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
                definitions.append({f"{matrix.title}: {plural}, {_dataset_heading(matrix, d)}": {
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


def write_report(matrix: Matrix, out_dir: Path) -> dict[str, Path]:
    """matrix.md, matrix.csv, the PNG plots and the dvc plots definitions; returns what was written."""
    out_dir.mkdir(parents=True, exist_ok=True)
    written: dict[str, Path] = {}
    images: dict[str, str | None] = {}
    for name, draw in (
        ("scaling.png", lambda p: plot_scaling(matrix, p)),
        ("generators.png", lambda p: plot_comparison(matrix, "augment.generator", p)),
        ("strategies.png", lambda p: plot_comparison(matrix, "augment.strategy", p)),
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
