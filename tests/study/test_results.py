"""The committed study (`results/cpu-study/`): its report is what `augir report` makes of the saved experiments,
every number in it is the number in an experiment's metrics file, and the experiments are the cells of the grid."""

import csv
import math
import shutil
from pathlib import Path

import pytest
import yaml

from augir import layout
from augir.retrieval.metrics import REPORTED_MEASURES
from augir.study.grid import apply_cell, load_grid
from augir.study.experiments import Experiment, experiments_from_folder, same_settings, select_grid
from augir.study.matrix import build_matrix
from augir.study.report import write_report

REPO = Path(__file__).resolve().parents[2]
STUDY = REPO / "results" / "cpu-study"


@pytest.fixture(scope="module")
def experiments():
    return experiments_from_folder(STUDY / "experiments")


def test_the_committed_report_is_what_augir_report_makes_of_the_saved_experiments(experiments, tmp_path):
    grid = load_grid(REPO / "grids" / "cpu-study.yaml", REPO / "params.yaml")
    write_report(build_matrix(experiments, title=grid.name, description=grid.description), tmp_path)
    for name in ("matrix.csv", "matrix.md"):
        assert (tmp_path / name).read_text() == (STUDY / name).read_text(), name
    for name in ("scaling.png", "generators.png", "strategies.png", "cost.png"):
        assert (STUDY / name).stat().st_size > 10_000, name


def test_every_number_in_the_table_is_the_number_in_a_metrics_file(experiments):
    by_name = {exp.name: exp for exp in experiments}
    rows = list(csv.DictReader((STUDY / "matrix.csv").open(encoding="utf-8")))
    assert sum(row["kind"] != "bm25" for row in rows) == len(experiments)
    checked = 0
    for row in rows:
        exp = by_name[row["experiment"]]
        for dataset in ("scifact", "cranfield"):
            role = "in-domain" if dataset == "scifact" else "ood"
            path = (layout.bm25_metrics(dataset) if row["kind"] == "bm25" else layout.metrics(dataset)).as_posix()
            for measure in REPORTED_MEASURES:
                assert float(row[f"{role}:{dataset}:{measure}"]) == exp.metrics[path][measure]
                checked += 1
            if row["kind"] == "augmented":
                reference = by_name[row["reference"]].metrics[layout.metrics(dataset).as_posix()]["ndcg_at_10"]
                delta = exp.metrics[layout.metrics(dataset).as_posix()]["ndcg_at_10"] - reference
                assert math.isclose(float(row[f"{role}:{dataset}:delta_ndcg_at_10"]), delta, abs_tol=1e-15)
    assert checked == len(rows) * 2 * len(REPORTED_MEASURES)


def test_the_experiments_are_the_cells_of_the_grid(experiments):
    """One experiment per cell, compared on every param the cell resolves to (the dataset paths, absolute on the
    machine that ran them, are left aside, and so are params added since the study ran, which it cannot hold)."""
    grid = load_grid(REPO / "grids" / "cpu-study.yaml", REPO / "params.yaml")
    params_data = yaml.safe_load((REPO / "params.yaml").read_text(encoding="utf-8"))
    matched = []
    for cell in grid.cells:
        resolved = Experiment("cell", "", apply_cell(params_data, cell), {}).flat_params()
        wanted = {k: v for k, v in resolved.items() if not k.startswith("download.")}
        matched.append([exp.name for exp in experiments
                        if same_settings(exp.flat_params(), {k: v for k, v in wanted.items() if k in exp.flat_params()})])
    assert all(len(names) == 1 for names in matched), matched
    assert len({names[0] for names in matched}) == len(experiments) == len(grid.cells)


def test_the_saved_experiments_are_selected_by_the_grid_from_a_clone_elsewhere(experiments, tmp_path, monkeypatch):
    """Regression: they record the absolute `local:` paths of the machine that ran them (`/work/shared/...`), and
    `augir report --from ... --grid cpu-study` from a clone elsewhere matched none of them."""
    grid = load_grid(REPO / "grids" / "cpu-study.yaml", REPO / "params.yaml")
    monkeypatch.chdir(tmp_path)
    assert len(select_grid(experiments, grid, tmp_path / "another" / "clone")) == len(experiments)


def test_the_readmes_rebuild_command_works_from_a_clone_elsewhere(tmp_path, monkeypatch, capsys):
    """README: `augir report --from results/cpu-study/experiments --grid cpu-study`, as written, from a checkout at
    another path than the machine that saved the experiments (regression: it found "no finished experiments")."""
    from augir.cli import main

    clone = tmp_path / "elsewhere" / "augir"
    shutil.copytree(REPO / "grids", clone / "grids")
    shutil.copytree(STUDY / "experiments", clone / "results" / "cpu-study" / "experiments")
    shutil.copy(REPO / "params.yaml", clone / "params.yaml")
    monkeypatch.chdir(clone)
    assert main(["report", "--from", "results/cpu-study/experiments", "--grid", "cpu-study", "--out", "rebuilt"]) == 0
    assert "17 rows" in capsys.readouterr().out
    for name in ("matrix.csv", "matrix.md"):
        assert (clone / "rebuilt" / name).read_text() == (STUDY / name).read_text(), name


def test_the_committed_negatives_report_is_what_augir_report_makes_of_its_experiments(tmp_path):
    """results/negatives (README, "A fine-tuned judge"): the hard-negatives arms compared with the arm without."""
    folder = REPO / "results" / "negatives"
    grid = load_grid(REPO / "grids" / "negatives.yaml", REPO / "params.yaml")
    experiments = experiments_from_folder(folder / "experiments")
    write_report(build_matrix(experiments, title=grid.name, description=grid.description), tmp_path)
    for name in ("matrix.csv", "matrix.md"):
        assert (tmp_path / name).read_text() == (folder / name).read_text(), name
    rows = {row["experiment"]: row for row in csv.DictReader((folder / "matrix.csv").open(encoding="utf-8"))}
    compared = [row for row in rows.values() if row["kind"] == "augmented"]
    assert len(compared) == 2 and all(rows[row["reference"]]["kind"] == "no-augmentation" for row in compared)


def test_cpu_study_v2_is_what_augir_report_makes_of_its_saved_experiments(tmp_path):
    """results/cpu-study-v2 (README, "What cpu-study found"): the matrix is rebuilt from the saved experiments,
    they are exactly the grid's cells, three training seeds each, and every augmented cell pairs with its baseline."""
    folder = REPO / "results" / "cpu-study-v2"
    grid = load_grid(REPO / "grids" / "cpu-study-v2.yaml", REPO / "params.yaml")
    experiments = experiments_from_folder(folder / "experiments")
    assert len(select_grid(experiments, grid, REPO)) == len(experiments) == len(grid.cells)
    matrix = build_matrix(experiments, title=grid.name, description=grid.description)
    write_report(matrix, tmp_path)
    for name in ("matrix.md", "matrix.csv"):
        assert (tmp_path / name).read_text() == (folder / name).read_text(), name
    assert all(row.seeds == 3 for row in matrix.rows if row.kind != "bm25")
    compared = [row for row in matrix.rows if row.kind == "augmented"]
    assert compared and all(row.reference for row in compared)
    assert not matrix.notes


def test_cpu_study_v2_head_to_head_is_what_its_script_makes(tmp_path):
    import subprocess
    import sys

    script = REPO / "benchmarks" / "cpu_study_v2_head_to_head.py"
    subprocess.run([sys.executable, str(script), "--out", str(tmp_path / "h.md")], check=True, capture_output=True)
    assert (tmp_path / "h.md").read_text() == (REPO / "results" / "cpu-study-v2" / "head-to-head.md").read_text()
