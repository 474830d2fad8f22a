"""Experiment grids: readable YAML files (`grids/<name>.yaml`) that define a matrix of DVC experiments.

A grid file has these keys (all optional but one of `axes`/`include`):

    name: cpu-study                  # defaults to the file name
    description: what the grid is for, what it leaves out
    base:                            # params for every experiment: dotted keys or nested mappings
      download.sources: {scifact: "local:../shared/datasets/scifact"}   # a whole mapping replaces params.yaml's
      train.datasets: [scifact]
    axes:                            # the cartesian product of these values
      train.model: [minilm-l2, minilm-l6]
      train.augmented_pairs: [500, 2000]
      generator:                     # an axis whose values are mappings sets several params together
        - {augment.generator: smollm2-135m}
        - {augment.generator: gemma3-270m, runtime.batch_size: 8}
    exclude:                         # product cells matching every key of one entry are dropped
      - {train.model: minilm-l6, train.augmented_pairs: 500}
    include:                         # extra cells, each on top of `base`
      - {train.model: minilm-l2, augment.strategy: question, train.augmented_pairs: 500}
    seeds:                           # replicates: every cell (baselines too) once per training seed, and
      train: [0, 1, 2]               # augmented cells once per augmentation seed (each a generation of its own:
      augment: [0]                   # `augir grid --dry-run` counts the distinct augmentations, the cost)

What `augir grid` adds, so that every grid reads the same way and repeats no work:
- Baselines, always: for every retriever setting, zero-shot (`train.epochs=0`) and fine-tuned without
  augmentation (`train.augmented_pairs=0`); the zero-shot cell drops the training-data settings (`negatives.*`,
  `labels.*`, `judge.*`), and cells that come to the same baseline share it. They take the augmentation settings of the grid's first augmented
  cell, so they add no generation of their own (with no synthetic pairs, those settings do not change training).
  The BM25 baseline is the pipeline's `bm25@<name>` stage, in every experiment.
- Scale is a subsample: cells that differ only in `train.augmented_pairs` share one augmentation, generated for
  the largest of them (`augment.num_passages` is set to it unless the grid sets it), and DVC's run-cache restores
  it in the other experiments. A cell with 0 pairs is the no-augmentation baseline whatever its generator.
- `local:` sources with relative paths are made absolute (queued experiments run in a temporary folder).
"""

from __future__ import annotations

import copy
import itertools
import json
import math
import os
import re
import shlex
import shutil
import subprocess
import sys
import typing
import dataclasses
from collections import Counter
from dataclasses import dataclass
from decimal import Decimal
from pathlib import Path
from typing import Any

import yaml
from pydantic import BaseModel, ValidationError

from augir.errors import AugirError
from augir.params import Params, first_problem

GRIDS_DIR = Path("grids")
TOP_LEVEL_KEYS = ("name", "description", "passage_margin", "seeds", "base", "axes", "exclude", "include")
SEED_KINDS = {"train": "train.seed", "augment": "augment.seed"}
# params whose value is a free-form mapping: given whole, it replaces the mapping in params.yaml
MAPPING_PARAMS = frozenset({"download.sources"})
# runtime.* (speed knobs often set with a generator, such as its batch size) travels with the augmentation too.
AUGMENTATION_PREFIXES = ("augment.", "filter.", "infuse.", "runtime.")
SCALE = "train.augmented_pairs"
INFUSED = "train.infused_pairs"  # pairs from label infusion: augmentation too, a second scale beside SCALE
# What only shapes the training data: a zero-shot cell (nothing trained) drops them, so that cells differing in them
# share one zero-shot baseline
TRAINING_DATA_PREFIXES = ("negatives.", "labels.", "judge.")
JUDGE_PREFIX = "judge."
JUDGE_USERS = ("negatives.judge", "labels.judge")  # where the trained judge shapes the real training data
EPOCHS = "train.epochs"
NUM_PASSAGES = "augment.num_passages"
_PLAIN = re.compile(r"[A-Za-z0-9_./:@][A-Za-z0-9_./:@+-]*")  # Hydra reads these unquoted as the same text
_NUMBER = re.compile(r"[-+]?(\d[\d_]*)?\.?\d*([eE][-+]?\d+)?|[-+]?(inf|nan)", re.IGNORECASE)

Cell = dict[str, Any]  # dotted parameter -> value


@dataclass(frozen=True)
class Grid:
    name: str
    description: str
    path: Path
    cells: list[Cell]  # every experiment, baselines first; each holds all the params the grid sets

    shard: str = ""  # "i/n" when this is one part of a grid split across machines

    def augmentations(self) -> int:
        """How many distinct augmentations (generations) the grid needs."""
        return len({_augmentation_key(cell) for cell in self.cells})

    def part(self, index: int, count: int) -> Grid:
        """The index-th (from 1) of `count` disjoint parts, for `count` machines. Cells go by augmentation: all
        cells that share one (its baselines too) are in the same part, so each is generated on one machine only
        and the cells that reuse it restore it from that machine's run-cache. Parts are balanced by number of cells
        (largest group first onto the part with the fewest); cells keep the grid's order inside a part."""
        groups: dict[str, list[Cell]] = {}
        for cell in self.cells:
            groups.setdefault(_augmentation_key(cell), []).append(cell)
        order = list(groups)
        loads = [0] * count
        owner: dict[str, int] = {}
        for key in sorted(order, key=lambda k: (-len(groups[k]), order.index(k))):
            owner[key] = min(range(count), key=lambda i: (loads[i], i))
            loads[owner[key]] += len(groups[key])
        cells = [cell for cell in self.cells if owner[_augmentation_key(cell)] == index - 1]
        return dataclasses.replace(self, cells=cells, shard=f"{index}/{count}")


def parse_shard(text: str) -> tuple[int, int]:
    """`--shard i/n` (1 <= i <= n) as (i, n)."""
    match = re.fullmatch(r"(\d+)/(\d+)", text.strip())
    if not match or not 1 <= int(match[1]) <= int(match[2]):
        raise AugirError(f"--shard {text!r}: expected i/n with 1 <= i <= n, such as 1/2")
    return int(match[1]), int(match[2])


def find_grid(name: str, root: Path = Path(".")) -> Path:
    """grids/<name>.yaml under `root`, or `name` itself when it is a path to a file."""
    candidate = Path(name)
    if candidate.suffix in (".yaml", ".yml") or os.sep in name:
        path = candidate if candidate.is_absolute() else root / candidate
    else:
        path = root / GRIDS_DIR / f"{name}.yaml"
    if not path.is_file():
        known = sorted(p.stem for p in (root / GRIDS_DIR).glob("*.yaml"))
        raise AugirError(f"no grid {name!r}: {path} does not exist (grids here: {', '.join(known) or 'none'})")
    return path


def load_grid(path: Path, params_path: Path = Path("params.yaml")) -> Grid:
    """Read and check a grid file; every cell is validated against the params schema."""
    try:
        raw = yaml.safe_load(path.read_text(encoding="utf-8"))
    except OSError as error:
        raise AugirError(f"{path}: cannot read ({error.strerror})") from error
    except yaml.YAMLError as error:
        raise AugirError(f"{path}: not valid YAML ({' '.join(str(error).split())})") from error
    try:
        params_data = yaml.safe_load(params_path.read_text(encoding="utf-8")) or {}
    except (OSError, yaml.YAMLError) as error:
        raise AugirError(f"{params_path}: cannot read the params the grid applies to ({error})") from error
    return _GridReader(path, params_data).read(raw)


class _GridReader:
    def __init__(self, path: Path, params_data: dict[str, Any]):
        self.path = path
        self.params_data = params_data

    def fail(self, message: str) -> AugirError:
        return AugirError(f"{self.path}: {message}")

    def read(self, raw: Any) -> Grid:
        if not isinstance(raw, dict):
            raise self.fail("a grid file is a mapping with keys " + ", ".join(TOP_LEVEL_KEYS))
        for key in raw:
            if key not in TOP_LEVEL_KEYS:
                raise self.fail(f"unknown key {key!r} (a grid has {', '.join(TOP_LEVEL_KEYS)})")
        name = raw.get("name", self.path.stem)
        description = raw.get("description", "")
        for key, value in (("name", name), ("description", description)):
            if not isinstance(value, str):
                raise self.fail(f"{key}: expected text, got {value!r}")
        # Clean-up drops some generations: generate for this many passages per synthetic pair the largest scale needs.
        self.passage_margin = raw.get("passage_margin", 1.0)
        if isinstance(self.passage_margin, bool) or not isinstance(self.passage_margin, (int, float)) or self.passage_margin < 1:
            raise self.fail(f"passage_margin: expected a number >= 1, got {self.passage_margin!r}")
        base = self.params_mapping(raw.get("base") or {}, "base")
        axes = self.axes(raw.get("axes") or {})
        exclude = [self.params_mapping(entry, f"exclude[{i}]") for i, entry in enumerate(self.entries(raw, "exclude"))]
        include = [self.params_mapping(entry, f"include[{i}]") for i, entry in enumerate(self.entries(raw, "include"))]
        if not axes and not include:
            raise self.fail("axes: a grid needs axes or include cells")

        cells = [{**base, **choice} for choice in _product(axes)] if axes else []
        cells = [cell for cell in cells if not any(self.matches(cell, entry) for entry in exclude)]
        cells += [{**base, **entry} for entry in include]
        if not cells:
            raise self.fail("exclude: every cell of the grid is excluded")
        for cell in cells:
            self.validate(cell)
        cells = self.with_baselines(cells)
        cells = self.with_num_passages(cells)
        cells = self.with_seeds(cells, self.seeds(raw.get("seeds")))
        cells = _unique(cells)
        for cell in cells:
            self.validate(cell)
        return Grid(name=name, description=description, path=self.path, cells=cells)

    # --------------------------------------------------------------------------------------------- parsing

    def entries(self, raw: dict[str, Any], key: str) -> list[Any]:
        value = raw.get(key) or []
        if not isinstance(value, list):
            raise self.fail(f"{key}: expected a list of mappings (param: value)")
        return value

    def axes(self, raw: Any) -> list[list[Cell]]:
        if not isinstance(raw, dict):
            raise self.fail("axes: expected a mapping (param: [values])")
        axes = []
        for key, values in raw.items():
            where = f"axes.{key}"
            if not isinstance(values, list) or not values:
                raise self.fail(f"{where}: expected a non-empty list of values")
            choices = []
            for i, value in enumerate(values):
                if isinstance(value, dict) and key not in MAPPING_PARAMS:  # several params set together
                    choices.append(self.params_mapping(value, f"{where}[{i}]"))
                else:
                    choices.append(self.params_mapping({key: value}, where))
            axes.append(choices)
        return axes

    def params_mapping(self, raw: Any, where: str) -> Cell:
        if not isinstance(raw, dict):
            raise self.fail(f"{where}: expected a mapping (param: value), got {raw!r}")
        flat = _flatten(raw)
        for key in flat:
            if not _known_param(key):
                raise self.fail(f"{where}: unknown parameter {key!r}")
        return flat

    # --------------------------------------------------------------------------------------------- cells

    def resolved(self, cell: Cell) -> dict[str, Any]:
        return apply_cell(self.params_data, cell)

    def validated(self, cell: Cell) -> Params:
        """The cell's params as the stages will see them: checked, with defaults; a problem is one line."""
        try:
            return Params.model_validate(self.resolved(cell))
        except ValidationError as error:
            raise self.fail(f"{first_problem(error)} (cell {cell_label(cell)})") from error

    def value(self, cell: Cell, key: str) -> Any:
        node: Any = self.validated(cell)
        for part in key.split("."):
            node = node.get(part) if isinstance(node, dict) else getattr(node, part, None)
        return node

    def matches(self, cell: Cell, entry: Cell) -> bool:
        return all(self.value(cell, key) == value for key, value in entry.items())

    def with_baselines(self, cells: list[Cell]) -> list[Cell]:
        """Zero-shot and no-augmentation cells for every retriever setting, first; 0-pair cells become them."""
        for cell in cells:
            if self.value(cell, EPOCHS) == 0:
                cell[SCALE] = 0
                if self.value(cell, INFUSED):
                    cell[INFUSED] = 0
        augmented = [cell for cell in cells if self.augmented(cell)]
        reference = augmented[0] if augmented else cells[0]
        reference_augmentation = {k: v for k, v in reference.items() if k.startswith(AUGMENTATION_PREFIXES)}

        def baseline(cell: Cell, **extra: Any) -> Cell:
            kept = {k: v for k, v in cell.items() if not k.startswith(AUGMENTATION_PREFIXES) and k != INFUSED}
            if not any(cell.get(key) for key in JUDGE_USERS):
                # a judge that only filters synthetic pairs belongs to the augmentation: the baseline trains none
                kept = {k: v for k, v in kept.items() if not k.startswith(JUDGE_PREFIX)}
            no_infused = {INFUSED: 0} if any(INFUSED in c for c in cells) else {}
            return {**kept, **reference_augmentation, SCALE: 0, **no_infused, **extra}

        def zero_shot(cell: Cell) -> Cell:
            kept = {k: v for k, v in baseline(cell, **{EPOCHS: 0}).items() if not k.startswith(TRAINING_DATA_PREFIXES)}
            return kept

        baselines: list[Cell] = []
        for cell in cells:
            no_augmentation = baseline(cell)
            for candidate in (zero_shot(cell), no_augmentation):
                # a zero-shot cell is its own no-augmentation baseline; cells can share their baselines
                if candidate not in baselines:
                    baselines.append(candidate)
        return baselines + augmented

    def with_num_passages(self, cells: list[Cell]) -> list[Cell]:
        """Each augmentation is generated once, for the largest scale that uses it."""
        largest: dict[str, int] = {}
        keys = []
        for cell in cells:
            params = self.validated(cell)
            scale = params.train.augmented_pairs
            needed = math.ceil(scale * self.passage_margin / params.augment.queries_per_passage)
            if NUM_PASSAGES in cell and params.augment.num_passages < needed:
                raise self.fail(
                    f"{NUM_PASSAGES}: {params.augment.num_passages} passages cannot give {SCALE}={scale} "
                    f"(cell {cell_label(cell)})"
                )
            augment = params.augment.model_dump()
            augment["num_passages"] = cell.get(NUM_PASSAGES)  # part of the identity only where the grid sets it
            keys.append(_canonical(augment))
            largest[keys[-1]] = max(largest.get(keys[-1], 0), needed)
        return [
            {**cell, NUM_PASSAGES: largest[key]} if NUM_PASSAGES not in cell and largest[key] > 0 else cell
            for cell, key in zip(cells, keys)
        ]

    def seeds(self, raw: Any) -> dict[str, list[int]]:
        """`seeds: {train: [0, 1, 2], augment: [0, 1]}`: replicates; a bare list means training seeds."""
        if raw is None:
            return {}
        if isinstance(raw, list):
            raw = {"train": raw}
        if not isinstance(raw, dict):
            raise self.fail("seeds: expected a list of training seeds or a mapping {train: [...], augment: [...]}")
        seeds = {}
        for kind, values in raw.items():
            if kind not in SEED_KINDS:
                raise self.fail(f"seeds.{kind}: unknown kind of seed (use {', '.join(SEED_KINDS)})")
            if (not isinstance(values, list) or not values or len(set(map(str, values))) != len(values)
                    or not all(isinstance(v, int) and not isinstance(v, bool) for v in values)):
                raise self.fail(f"seeds.{kind}: expected a non-empty list of distinct integers, got {values!r}")
            seeds[kind] = values
        return seeds

    def with_seeds(self, cells: list[Cell], seeds: dict[str, list[int]]) -> list[Cell]:
        """Every cell once per training seed; augmented cells also once per augmentation seed (a new generation
        each). Baselines take only the first augmentation seed: with no synthetic pairs their result cannot depend
        on it, and so they add no generation of their own."""
        for kind, key in SEED_KINDS.items():
            if kind in seeds and any(key in cell for cell in cells):
                raise self.fail(f"seeds.{kind}: the grid also sets {key} itself; set it in one place")
        replicated = []
        for cell in cells:
            augment_seeds = seeds.get("augment", [None])
            if not self.augmented(cell):
                augment_seeds = augment_seeds[:1]
            for augment_seed in augment_seeds:
                for train_seed in seeds.get("train", [None]):
                    replica = dict(cell)
                    if augment_seed is not None:
                        replica[SEED_KINDS["augment"]] = augment_seed
                    if train_seed is not None:
                        replica[SEED_KINDS["train"]] = train_seed
                    replicated.append(replica)
        return replicated

    def augmented(self, cell: Cell) -> bool:
        """Trained on synthetic or infused pairs (or both): not a baseline."""
        return self.value(cell, SCALE) > 0 or self.value(cell, INFUSED) > 0

    def validate(self, cell: Cell) -> None:
        self.validated(cell)


# ------------------------------------------------------------------------------------------------- params


def apply_cell(params_data: dict[str, Any], cell: Cell) -> dict[str, Any]:
    """params.yaml's data with the cell's values set (what `dvc exp run -S` will write)."""
    data = copy.deepcopy(params_data)
    for key, value in cell.items():
        parts = key.split(".")
        node = data
        for part in parts[:-1]:
            node = node.setdefault(part, {})
        node[parts[-1]] = copy.deepcopy(value)
    return data


def _known_param(key: str) -> bool:
    model: type[BaseModel] = Params
    parts = key.split(".")
    for i, part in enumerate(parts):
        field = model.model_fields.get(part)
        if field is None:
            return False
        rest = parts[i + 1:]
        if not rest:
            return True
        annotation = field.annotation
        if isinstance(annotation, type) and issubclass(annotation, BaseModel):
            model = annotation
            continue
        return typing.get_origin(annotation) is dict and len(rest) == 1
    return False


def _flatten(raw: dict[Any, Any], prefix: str = "") -> Cell:
    flat: Cell = {}
    for key, value in raw.items():
        full = f"{prefix}{key}"
        if isinstance(value, dict) and full not in MAPPING_PARAMS:
            flat.update(_flatten(value, full + "."))
        else:
            flat[full] = value
    return flat


_MISSING = object()


def _get(data: dict[str, Any], key: str, default: Any = None) -> Any:
    """The value at a dotted key of nested mappings, or `default` where the path does not exist."""
    node: Any = data
    for part in key.split("."):
        if not isinstance(node, dict) or part not in node:
            return default
        node = node[part]
    return node


def _has(data: dict[str, Any], key: str) -> bool:
    return _get(data, key, _MISSING) is not _MISSING


def _product(axes: list[list[Cell]]) -> list[Cell]:
    return [{k: v for choice in combination for k, v in choice.items()} for combination in itertools.product(*axes)]


def _canonical(value: Any) -> str:
    return json.dumps(value, sort_keys=True, default=str)


def _unique(cells: list[Cell]) -> list[Cell]:
    seen: set[str] = set()
    out = []
    for cell in cells:
        key = _canonical(cell)
        if key not in seen:
            seen.add(key)
            out.append(cell)
    return out


def _augmentation_key(cell: Cell) -> str:
    """What identifies one generation run among a grid's cells (which all share base and params.yaml)."""
    return _canonical({k: v for k, v in sorted(cell.items()) if k.startswith("augment.")})


def cell_label(cell: Cell) -> str:
    keys = ("train.model", "augment.generator", "augment.strategy", SCALE, INFUSED, EPOCHS, "augment.seed", "train.seed")
    return ", ".join(f"{key}={cell[key]}" for key in keys if key in cell) or "base"


# ------------------------------------------------------------------------------------------------- dvc commands


def format_value(value: Any) -> str:
    """A value as a Hydra override (what `dvc exp run -S` parses): plain when safe, else quoted."""
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int):
        return str(value)
    if isinstance(value, float):
        if not math.isfinite(value):
            raise AugirError(f"cannot pass the value {value!r} to dvc exp run -S")
        text = format(Decimal(repr(value)), "f")  # positional: PyYAML reads 5e-05 as text, 0.00005 as a number
        return text if "." in text else text + ".0"
    if isinstance(value, list):
        return "[" + ",".join(format_value(item) for item in value) + "]"
    if isinstance(value, str):
        if _PLAIN.fullmatch(value) and yaml.safe_load(value) == value and not _NUMBER.fullmatch(value):
            return value
        return "'" + value.replace("\\", "\\\\").replace("'", "\\'") + "'"
    raise AugirError(f"cannot pass the value {value!r} to dvc exp run -S")


def _absolute_source(source: Any, root: Path) -> Any:
    if isinstance(source, str) and source.startswith("local:"):
        folder = Path(source.removeprefix("local:")).expanduser()
        if not folder.is_absolute():
            return f"local:{(root / folder).resolve()}"
    return source


def missing_local_sources(grid: Grid, root: Path) -> set[str]:
    """`local:` folders the grid names that are not there (every experiment would fail in its download stage)."""
    missing = set()
    for cell in grid.cells:
        sources = list((cell.get("download.sources") or {}).values())
        sources += [v for k, v in cell.items() if k.rpartition(".")[0] in MAPPING_PARAMS]
        for source in sources:
            source = _absolute_source(source, root)
            if isinstance(source, str) and source.startswith("local:"):
                folder = Path(source.removeprefix("local:")).expanduser()
                if not folder.is_dir():
                    missing.add(str(folder))
    return missing


def missing_generators(grid: Grid, params_data: dict[str, Any]) -> dict[str, tuple[int, str]]:
    """Built-in generators the grid's cells use whose optional weights package is missing: name -> (cells, hint)."""
    from augir.augmentation.generators import missing_weights_package

    default = _get(params_data, "augment.generator")
    used = Counter(str(cell.get("augment.generator", default)) for cell in grid.cells)  # baselines run augment too
    found = {name: (count, missing_weights_package(name)) for name, count in used.items()}
    return {name: (count, hint) for name, (count, hint) in found.items() if hint is not None}


def overrides(cell: Cell, params_data: dict[str, Any], root: Path = Path(".")) -> list[str]:
    """The `-S` values that turn params.yaml into the cell's params (`+key`: a key params.yaml lacks, `~key`: drop)."""
    out = []
    sections = list(params_data) + [key.split(".")[0] for key in cell]
    for key, value in sorted(cell.items(), key=lambda item: sections.index(item[0].split(".")[0])):  # stable
        if key in MAPPING_PARAMS:
            current = _get(params_data, key) or {}
            for name, entry in value.items():
                prefix = "" if name in current else "+"
                out.append(f"{prefix}{key}.{name}={format_value(_absolute_source(entry, root))}")
            out += [f"~{key}.{name}" for name in current if name not in value]
            continue
        if key.rpartition(".")[0] in MAPPING_PARAMS:
            value = _absolute_source(value, root)
        prefix = "" if _has(params_data, key) else "+"
        out.append(f"{prefix}{key}={format_value(value)}")
    return out


def exp_run_args(cell_overrides: list[str], *, now: bool = False, pull: bool = False) -> list[str]:
    """`dvc exp run --queue -S ...`, or with `now` `dvc exp run --temp -S ...` (runs at once, no queue worker);
    `pull` adds `--pull`: a stage found in the run-cache whose outputs are not here is fetched from the remote."""
    args = ["exp", "run", "--temp" if now else "--queue", *(["--pull"] if pull else [])]
    for override in cell_overrides:
        args += ["-S", override]
    return args


def command_line(args: list[str]) -> str:
    return "dvc " + " ".join(shlex.quote(arg) for arg in args)


def _dvc_env() -> dict[str, str]:
    """Stage commands say `python`: make it this environment's, unless the `python` on PATH already runs it (a
    wrapper that logs or profiles stage launches, say, which must stay first)."""
    path = os.environ.get("PATH", "")
    if not _runs_this_environment(shutil.which("python", path=path)):
        path = f"{Path(sys.executable).parent}{os.pathsep}{path}"
    return {**os.environ, "PATH": path}


def _runs_this_environment(python: str | None) -> bool:
    if python is None:
        return False
    found = subprocess.run([python, "-c", "import sys; print(sys.prefix)"], capture_output=True, text=True)
    return found.returncode == 0 and found.stdout.strip() == sys.prefix


def queue_grid(grid: Grid, params_data: dict[str, Any], root: Path, *, dry_run: bool, run: bool,
               pull: bool = False) -> int:
    """Queue every cell (`dvc exp run --queue`) or, with `run`, run them now, one after the other.

    Running does not go through DVC's queue worker: `dvc exp run --run-all` was seen not to return once its queue
    was empty (dvc 3.67, its worker child left defunct). Each cell is instead its own `dvc exp run --temp`, which
    runs in a temporary copy of the repository like a queued experiment, in this process's foreground; cells run in
    grid order, so later ones restore shared stages (the augmentation) from the run-cache.
    """
    part = f", part {grid.shard} (the other parts run elsewhere)" if grid.shard else ""
    print(f"# grid {grid.name} ({grid.path}){part}: {len(grid.cells)} experiments, "
          f"{grid.augmentations()} distinct augmentations, each generated once")
    for folder in sorted(missing_local_sources(grid, root)):
        if not dry_run:
            raise AugirError(f"{grid.path}: download.sources: the local folder {folder} does not exist")
        print(f"# warning: the local folder {folder} does not exist")
    for generator, (cells, hint) in sorted(missing_generators(grid, params_data).items()):
        problem = f"{cells} of {len(grid.cells)} cells use augment.generator {generator}, which is not installed: {hint}"
        if not dry_run:
            raise AugirError(f"{grid.path}: {problem}")
        print(f"# warning: {problem}")
    env = _dvc_env()
    if pull and not dry_run:  # what other machines ran: their run-cache entries, then their outputs as needed
        _dvc_checked(["fetch", "--run-cache"], root, "fetch the run-cache")
    for number, cell in enumerate(grid.cells, start=1):
        args = exp_run_args(overrides(cell, params_data, root), now=run, pull=pull)
        print(command_line(args), flush=True)
        if dry_run:
            continue
        if run:
            print(f"# experiment {number} of {len(grid.cells)}: {cell_label(cell)}", flush=True)
            result = subprocess.run([sys.executable, "-m", "dvc", *args], cwd=root, env=env)
            if result.returncode != 0:
                raise AugirError(f"dvc exp run failed for the cell {cell_label(cell)} (exit status "
                                 f"{result.returncode}): see its output above")
            continue
        result = subprocess.run([sys.executable, "-m", "dvc", *args], cwd=root, env=env,
                                capture_output=True, text=True)
        if result.returncode != 0:
            lines = [line for line in (result.stderr + result.stdout).splitlines() if line.strip()]
            raise AugirError(f"dvc exp run --queue failed for the cell {cell_label(cell)}: "
                             f"{lines[-1] if lines else 'exit status ' + str(result.returncode)}")
    if dry_run:
        return 0
    if run:
        print(f"done: `augir report --grid {grid.name}` writes the matrix")
    else:
        print(f"queued {len(grid.cells)} experiments: run them one at a time (so that later ones reuse earlier "
              f"stages) with `dvc queue start -j 1` or `dvc exp run --run-all`, then `augir report --grid {grid.name}`"
              f" (or queue nothing and run them now: `augir grid {grid.name} --run`)")
    return len(grid.cells)


def push_results(git_remote: str, root: Path = Path(".")) -> None:
    """This machine's experiments (git refs), their cached outputs and the run-cache, to the shared remotes, so
    that `augir report --pull` on any clone builds the one matrix and later runs restore instead of re-running."""
    _dvc_checked(["exp", "push", git_remote, "--run-cache"], root, "push the experiments")


def pull_results(git_remote: str, root: Path = Path("."), all_commits: bool = False) -> None:
    """Every machine's experiments of HEAD (or of every commit) and their cached outputs, from the shared remotes."""
    _dvc_checked(["exp", "pull", git_remote, *(["--all-commits"] if all_commits else [])], root, "pull the experiments")


def _dvc_checked(args: list[str], root: Path, what: str) -> None:
    print(command_line(args), flush=True)
    result = subprocess.run([sys.executable, "-m", "dvc", *args], cwd=root, env=_dvc_env(), capture_output=True,
                            text=True)
    if result.returncode != 0:
        lines = [line for line in (result.stderr + result.stdout).splitlines() if line.strip()]
        raise AugirError(f"could not {what} ({command_line(args)}): "
                         f"{lines[-1] if lines else 'exit status ' + str(result.returncode)}")
