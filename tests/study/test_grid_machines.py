"""A grid split across two machines (two clones sharing a git remote and a DVC remote), reported on a third.

Each distinct augmentation must be generated on one machine only; the report built from the pushed experiments on
a clone that ran nothing must be the one a single machine running the whole grid builds.
"""

import csv
import io
import os
import shutil
import sys
from pathlib import Path

import pytest
import yaml
from repo_copy import copy_repository, run

GIT = ["git", "-c", "user.name=t", "-c", "user.email=t@t"]
NAMES = ("experiment", "rev", "reference")  # DVC names each machine's experiments its own way


def _grid(tiny_beir_dir: Path, encoder: Path) -> dict:
    return {
        "name": "tiny",
        "base": {
            "download.sources": {"tiny": f"local:{tiny_beir_dir}"},
            "augment.dataset": "tiny", "runtime.batch_size": 4, "augment.max_new_tokens": 12,
            "train.datasets": ["tiny"], "train.batch_size": 4, "train.epochs": 2, "train.learning_rate": 0.01,
            "train.model": str(encoder), "evaluate.datasets": ["tiny"],
        },
        "axes": {"augment.strategy": ["question"], "train.augmented_pairs": [2]},
        "include": [{"augment.strategy": "claim", "train.augmented_pairs": 2}],
        "passage_margin": 2,
    }


def _table(path: Path) -> list[dict[str, str]]:
    """The report's rows without the experiments' names, in the report's order."""
    return [{k: v for k, v in row.items() if k not in NAMES} for row in csv.DictReader(io.StringIO(path.read_text()))]


@pytest.mark.integration
def test_two_machines_generate_each_augmentation_once_and_a_third_reports_the_one_matrix(
    tmp_path, tiny_beir_dir, tiny_encoder_dir
):
    source = copy_repository(tmp_path / "source")
    (source / "grids" / "tiny.yaml").write_text(yaml.safe_dump(_grid(tiny_beir_dir, tiny_encoder_dir), sort_keys=False))
    launches = tmp_path / "launches.log"
    wrapper_dir = tmp_path / "bin"
    wrapper_dir.mkdir()
    # Every stage process, with the folder it runs in: which machine (clone) executed it.
    (wrapper_dir / "python").write_text(f'#!/bin/sh\necho "$PWD $*" >> {launches}\nexec {sys.executable} "$@"\n')
    (wrapper_dir / "python").chmod(0o755)
    env = {**os.environ, "PATH": f"{wrapper_dir}{os.pathsep}{os.environ['PATH']}", "DVC_NO_ANALYTICS": "1",
           "PYTHONPATH": str(source)}
    remote = tmp_path / "dvc-store"
    run(["git", "init", "-q"], source, env)
    run([sys.executable, "-m", "dvc", "remote", "add", "-d", "store", str(remote)], source, env)
    run(["git", "add", "-A"], source, env)
    run([*GIT, "commit", "-qm", "grid"], source, env)
    origin = tmp_path / "origin.git"
    run(["git", "clone", "-q", "--bare", str(source), str(origin)], tmp_path, env)

    clones = {}
    for name in ("machine-1", "machine-2", "reporter", "single"):
        clones[name] = tmp_path / name
        run(["git", "clone", "-q", str(origin), str(clones[name])], tmp_path, env)

    for number, machine in ((1, "machine-1"), (2, "machine-2")):
        output = run([sys.executable, "-m", "augir.cli", "grid", "tiny", "--shard", f"{number}/2", "--run",
                      "--push", "origin"], clones[machine], env)
        assert f"part {number}/2" in output
    executions = [line.split() for line in launches.read_text().splitlines()]
    augment_by_machine = {machine: sum(1 for where, script, *_ in executions if script == "stages/augment.py"
                                       and where.startswith(str(clones[machine]))) for machine in clones}
    print(f"augment executions by machine: {augment_by_machine}")
    # two distinct augmentations (question with the baselines, claim): each generated once, on its own machine
    assert augment_by_machine == {"machine-1": 1, "machine-2": 1, "reporter": 0, "single": 0}

    run([sys.executable, "-m", "augir.cli", "report", "--grid", "tiny", "--pull", "origin"], clones["reporter"], env)
    reported = clones["reporter"] / "reports" / "tiny" / "matrix.csv"
    rows = _table(reported)
    assert [row["kind"] for row in rows] == ["bm25", "zero-shot", "no-augmentation", "augmented", "augmented"]
    assert all(row["in-domain:tiny:ndcg_at_10"] for row in rows)  # metrics and per-query scores were pulled

    # The single machine runs the whole grid; with the others' run-cache (--pull), it restores every stage.
    launches.write_text("")
    run([sys.executable, "-m", "augir.cli", "grid", "tiny", "--run", "--pull"], clones["single"], env)
    assert not [line for line in launches.read_text().splitlines() if " stages/augment.py" in line]
    run([sys.executable, "-m", "augir.cli", "report", "--grid", "tiny"], clones["single"], env)
    assert rows == _table(clones["single"] / "reports" / "tiny" / "matrix.csv")
    shutil.rmtree(remote)  # the store is this test's alone
