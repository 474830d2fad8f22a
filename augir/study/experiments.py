"""The experiments a report reads: from `dvc exp show --json` (per-query scores at each experiment's revision,
through DVC's cache), or from a folder of saved experiment folders (`params.yaml`, `metrics/**.json`,
`data/eval/<name>/per_query.json`), and which of them are the cells of a grid.

Saved experiments travel: a grid cell's dataset sources match an experiment's by dataset name and, for `local:`
folders, by the folder's name, since the absolute paths of the machine that ran them exist nowhere else.
"""

from __future__ import annotations

import dataclasses
import json
import math
import subprocess
import sys
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path, PurePath
from typing import Any

import yaml

from augir import layout
from augir.errors import AugirError
from augir.fileio import atomic_folder, write_json_atomic, write_text_atomic
from augir.retrieval.evaluate import PER_QUERY_FILE
from augir.study.grid import MAPPING_PARAMS, Grid, _absolute_source, _flatten, apply_cell

LOCAL = "local:"
IDENTITY_FILE = "experiment.json"  # in an exported experiment folder: its DVC name and revision


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


def is_finished(exp: Experiment) -> bool:
    """Whether an experiment wrote the metrics of every dataset it evaluates on (its last stage for each)."""
    datasets = (exp.params.get("evaluate") or {}).get("datasets") or []
    return bool(datasets) and all((layout.METRICS / f"{name}.json").as_posix() in exp.metrics for name in datasets)


def unfinished_cells(grid: Grid, experiments: list[Experiment], params_data: dict[str, Any],
                     root: Path = Path(".")) -> Grid:
    """`grid` without the cells a finished experiment already ran: what is left of a grid run that was stopped, or
    run in parts, on a machine that no longer has its DVC experiments but has them saved (`augir report
    --save-experiments`). Every param of the cell applied to `params_data` must be equal, not only those the cell
    sets (a no-augmentation cell sets no `train.epochs` and must not count as done by its zero-shot twin), except
    the speed knobs (`runtime.*`). A param added to `params.yaml` after an experiment ran (absent from its saved
    params) is taken to be at its default, which keeps the old behaviour, unless the cell sets it. The code is not
    compared: resume on a commit whose stages compute what the finished ones computed."""
    done = [exp.flat_params() for exp in experiments if is_finished(exp)]

    def is_done(cell: dict[str, Any]) -> bool:
        flat = _flatten(apply_cell(params_data, cell))
        wanted = _absolute_cell({key: value for key, value in flat.items() if not key.startswith("runtime.")}, root)
        return any(same_settings(params, {key: value for key, value in wanted.items() if key in params or key in cell})
                   for params in done)

    return dataclasses.replace(grid, cells=[cell for cell in grid.cells if not is_done(cell)])


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
    """Whether an experiment's flat params hold every value a grid cell sets (`download.sources` entries one by one,
    each matched by `same_source`)."""
    for key, value in wanted.items():
        parent, _, name = key.rpartition(".")
        if key in MAPPING_PARAMS:
            mapping = params.get(key)
            if not isinstance(mapping, dict) or not isinstance(value, dict) or mapping.keys() != value.keys():
                return False
            if not all(same_source(mapping[n], value[n]) for n in value):
                return False
        elif parent in MAPPING_PARAMS:
            mapping = params.get(parent)
            if not isinstance(mapping, dict) or name not in mapping or not same_source(mapping[name], value):
                return False
        elif key not in params or not _equal(_current_name(key, params[key]), _current_name(key, value)):
            return False
    return True


def at_current_params(exp: Experiment) -> Experiment:
    """The experiment with its params as params.yaml names them now: a param added after it ran (absent from its
    saved params) at its default (`augir.params.param_defaults`, the value that keeps the old behaviour), an old
    value name under the current one. Reports compare these, so that a cell saved before `train.loss` existed
    still pairs with a baseline saved after."""
    from augir.params import param_defaults

    params = _with_defaults(exp.params, param_defaults())
    encode = params.get("encode")
    if isinstance(encode, dict) and "index" in encode:
        params["encode"] = {**encode, "index": _current_name("encode.index", encode["index"])}
    return dataclasses.replace(exp, params=params)


def _with_defaults(recorded: dict[str, Any], defaults: dict[str, Any], prefix: str = "") -> dict[str, Any]:
    merged = dict(recorded)
    for key, default in defaults.items():
        full = f"{prefix}{key}"
        if key not in merged:
            merged[key] = default
        elif isinstance(default, dict) and isinstance(merged[key], dict) and full not in MAPPING_PARAMS:
            merged[key] = _with_defaults(merged[key], default, full + ".")
    return merged


def _current_name(key: str, value: Any) -> Any:
    """A value under the name params.yaml uses now: experiments saved before `encode.index` took factory strings
    recorded `flat_ip`, the same exact index as `Flat`."""
    if key == "encode.index" and isinstance(value, str):
        from augir.retrieval.factory import ALIASES

        return ALIASES.get(value, value)
    return value


def same_source(recorded: Any, wanted: Any) -> bool:
    """Two dataset sources are the same if equal, or if both are `local:` folders of the same name: an experiment
    records the absolute path of the machine that ran it, which a clone elsewhere does not have."""
    if recorded == wanted:
        return True
    if isinstance(recorded, str) and isinstance(wanted, str) and recorded.startswith(LOCAL) and wanted.startswith(LOCAL):
        return PurePath(recorded[len(LOCAL):].rstrip("/")).name == PurePath(wanted[len(LOCAL):].rstrip("/")).name
    return False


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


def per_query_path(dataset: str) -> str:
    """Where evaluate@<dataset> keeps per-query scores (inside its DVC-cached output folder)."""
    return (layout.evaluation(dataset) / PER_QUERY_FILE).as_posix()
