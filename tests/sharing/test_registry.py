"""Versioned augmented sets with real git and DVC: a registry repository pushes, a consumer imports and updates,
a clone reuses augmentations from the run-cache. No mocks: every command is the real `git` or `python -m dvc`.

One registry is built per module and shared; no test depends on another having run (the consumer test adds a
commit to the registry, the others work from v1's revision):
- v0: `augment.source: data/published/hand`, a hand-written set in GPL's layout, committed and pushed;
- v1: a real SmolLM2 generation (4 passages) and the whole pipeline after it, committed and pushed with the
  run-cache. A clone of v1 that wants v0's augmentation back restores it from the run-cache.
"""

from __future__ import annotations

import json
import shutil
import sys
from dataclasses import dataclass
from pathlib import Path

import pytest
import yaml
from repo_copy import copy_repository, run

AUGMENTED_FILES = ("queries.jsonl", "qrels/train.tsv", "provenance.jsonl")
HAND = "data/published/hand"
REAL_TRAIN_PAIRS = 4  # the tiny dataset's train split: q1..q4, one positive each

pytestmark = pytest.mark.integration


def _dvc(repo: Path, *args: str) -> str:
    # Stages import the repository's own `augir` (the code DVC hashes as their dependencies), not the installed one.
    return run([sys.executable, "-m", "dvc", *args], repo, pythonpath=repo)


def _git(cwd: Path, *args: str) -> str:
    return run(["git", "-c", "user.name=t", "-c", "user.email=t@t", *args], cwd)


def _set_params(repo: Path, dataset_dir: Path, encoder_dir: Path, **augment: object) -> None:
    params = yaml.safe_load((repo / "params.yaml").read_text())
    params["download"]["sources"] = {"tiny": f"local:{dataset_dir}"}
    params["augment"].update(dataset="tiny", num_passages=4, max_new_tokens=12, seed=0, **augment)
    params["runtime"]["batch_size"] = 4
    params["train"].update(datasets=["tiny"], model=str(encoder_dir), augmented_pairs=2, batch_size=4)
    params["evaluate"]["datasets"] = ["tiny"]
    (repo / "params.yaml").write_text(yaml.safe_dump(params, sort_keys=False))


def _update_params(repo: Path, section: str, **values: object) -> None:
    params = yaml.safe_load((repo / "params.yaml").read_text())
    params[section].update(values)
    (repo / "params.yaml").write_text(yaml.safe_dump(params, sort_keys=False))


def _new_repository(path: Path, dataset_dir: Path, encoder_dir: Path) -> Path:
    repo = copy_repository(path)
    _set_params(repo, dataset_dir, encoder_dir)
    _git(repo, "init", "-q")
    _git(repo, "add", "-A")
    _git(repo, "commit", "-qm", "small pipeline")
    return repo


def _augmented(repo: Path, folder: str = "data/augmented") -> dict[str, str]:
    return {name: (repo / folder / name).read_text() for name in AUGMENTED_FILES}


def _queries(files: dict[str, str]) -> int:
    return len(files["queries.jsonl"].splitlines())


# A hand-written set in GPL's layout (qgen- prefix, the corpus copied beside it): a foreign layout in a real run.
HAND_QUERIES = {"hand-1": "what do plants make from light", "hand-2": "why do the oceans have tides",
                "hand-3": "what stops bacteria multiplying"}
HAND_QRELS = {"hand-1": "d1", "hand-2": "d5", "hand-3": "d8"}


def _write_hand_set(repo: Path, dataset_dir: Path) -> None:
    folder = repo / "data" / "published" / "hand"
    (folder / "qgen-qrels").mkdir(parents=True)
    lines = [json.dumps({"_id": qid, "text": text}) + "\n" for qid, text in HAND_QUERIES.items()]
    (folder / "qgen-queries.jsonl").write_text("".join(lines))
    rows = ["query-id\tcorpus-id\tscore\n"] + [f"{qid}\t{doc}\t1\n" for qid, doc in HAND_QRELS.items()]
    (folder / "qgen-qrels" / "train.tsv").write_text("".join(rows))
    shutil.copy(dataset_dir / "corpus.jsonl", folder / "corpus.jsonl")


@dataclass(frozen=True)
class Registry:
    path: Path
    v1_rev: str
    v1: dict[str, str]  # data/augmented of the real generation
    hand: dict[str, str]  # data/augmented of v0, augment.source: data/published/hand


@pytest.fixture(scope="module")
def registry(tmp_path_factory, tiny_beir_session_dir, tiny_encoder_dir) -> Registry:
    root = tmp_path_factory.mktemp("registry")
    repo = copy_repository(root / "registry")
    _write_hand_set(repo, tiny_beir_session_dir)
    _set_params(repo, tiny_beir_session_dir, tiny_encoder_dir, source=HAND)
    _git(repo, "init", "-q")
    # A local folder remote, committed so that importers and clones know where the data is.
    _dvc(repo, "remote", "add", "-d", "store", str(root / "remote"))
    _git(repo, "add", "-A")
    _git(repo, "commit", "-qm", "small pipeline, a hand-written set, a remote")

    _dvc(repo, "repro", "augment")
    hand = _augmented(repo)
    _git(repo, "add", "-A")
    _git(repo, "commit", "-qm", "v0: the hand-written set")
    _dvc(repo, "push", "--run-cache")

    _update_params(repo, "augment", source=None)
    _dvc(repo, "repro")  # the real SmolLM2 generator, then everything after it
    v1 = _augmented(repo)
    assert json.loads((repo / "metrics" / "augment.json").read_text())["generated"] == 4
    _git(repo, "add", "-A")
    _git(repo, "commit", "-qm", "v1: generated")
    _dvc(repo, "push", "--run-cache")
    return Registry(repo, _git(repo, "rev-parse", "HEAD").strip(), v1, hand)


def test_consumer_imports_a_registry_set_trains_on_it_and_follows_its_updates(
    registry, tmp_path, tiny_beir_session_dir, tiny_encoder_dir
):
    consumer = _new_repository(tmp_path / "consumer", tiny_beir_session_dir, tiny_encoder_dir)
    _dvc(consumer, "import", str(registry.path), "data/augmented", "-o", "data/published/reg")
    assert _augmented(consumer, "data/published/reg") == registry.v1
    pairs = min(_queries(registry.v1), len(HAND_QUERIES))  # imported pairs that both versions have
    _update_params(consumer, "augment", source="data/published/reg")
    _update_params(consumer, "train", augmented_pairs=pairs)
    _git(consumer, "add", "-A")
    _git(consumer, "commit", "-qm", "use the registry's set")

    first = _dvc(consumer, "repro", "train")  # train and what it needs (encode and evaluate add nothing here)
    for stage in ["download@tiny", "augment", "train"]:
        assert f"Running stage '{stage}'" in first
    stats = json.loads((consumer / "metrics" / "augment.json").read_text())
    assert stats.pop("versions")["augir"]  # the library versions that made the metrics, whatever they are
    assert stats == {
        "source": "data/published/reg", "layout": "augir", "generated": 0,
        "passages": _queries(registry.v1), "queries": _queries(registry.v1), "pairs": _queries(registry.v1),
    }
    assert _augmented(consumer) == registry.v1  # the registry's files, provenance included, unchanged
    assert json.loads((consumer / "metrics" / "train.json").read_text())["pairs"] == REAL_TRAIN_PAIRS + pairs

    # The registry makes v2 (v0's params again: restored from its run-cache, nothing generated) and pushes it.
    _update_params(registry.path, "augment", source=HAND)
    assert "Running stage 'augment'" not in _dvc(registry.path, "repro", "augment")
    _git(registry.path, "commit", "-qam", "v2: the hand-written set")
    _dvc(registry.path, "push")
    before = json.loads(_dvc(consumer, "status", "--json"))  # the import stays at v1 until updated...
    assert "update available" in json.dumps(before["data/published/reg.dvc"]) and "augment" not in before
    _dvc(consumer, "update", "data/published/reg.dvc")
    assert "augment" in json.loads(_dvc(consumer, "status", "--json"))
    second = _dvc(consumer, "repro", "train")
    assert "Running stage 'augment'" in second and "Running stage 'train'" in second
    assert _augmented(consumer) == registry.hand
    assert json.loads((consumer / "metrics" / "augment.json").read_text())["generated"] == 0


def test_a_clone_that_pulls_the_run_cache_restores_augmentations_instead_of_generating(registry, tmp_path):
    clone = tmp_path / "clone"
    _git(tmp_path, "clone", "-q", str(registry.path), str(clone))
    _git(clone, "checkout", "-q", registry.v1_rev)
    _dvc(clone, "pull", "--run-cache")

    reproduced = _dvc(clone, "repro")
    assert "Running stage" not in reproduced  # every stage, augment included, is restored, none re-run
    assert _augmented(clone) == registry.v1

    # v0's augment params, which this checkout's dvc.lock does not describe: found in the pulled run-cache, their
    # outputs fetched (--pull) and checked out instead of running the stage.
    _update_params(clone, "augment", source=HAND)
    restored = _dvc(clone, "repro", "--pull", "augment")
    assert "Running stage 'augment'" not in restored and "Stage 'augment' is cached" in restored
    assert _augmented(clone) == registry.hand
    assert json.loads((clone / "metrics" / "augment.json").read_text())["source"] == HAND


def test_a_real_generation_publishes_and_loads_back_as_a_source(registry, tmp_path, tiny_beir_session_dir):
    # The registry's v1 files and params, as a user publishing them would have: the real generator's provenance.
    augmented = tmp_path / "augmented"
    for name, text in registry.v1.items():
        (augmented / name).parent.mkdir(parents=True, exist_ok=True)
        (augmented / name).write_text(text)
    params = tmp_path / "params.yaml"
    params.write_text(_git(registry.path, "show", f"{registry.v1_rev}:params.yaml"))
    out = tmp_path / "published"
    run([sys.executable, "-m", "augir.cli", "publish", str(augmented), "--out", str(out), "--params", str(params),
          "--corpus-license", "cc-by-4.0"], tmp_path)

    import datasets

    rows = datasets.load_dataset("parquet", data_files=str(out / "data" / "*.parquet"), split="train",
                                 cache_dir=str(tmp_path / "hf-cache"))
    assert rows.num_rows == _queries(registry.v1) and set(rows["generator"]) == {"smollm2-135m"}
    card = yaml.safe_load((out / "README.md").read_text().split("---\n")[1])
    assert card["augir"]["generator"] == "smollm2-135m" and card["augir"]["seed"] == 0
    assert card["augir"]["counts"]["generated"] == 4

    from augir.data.beir import load_beir
    from augir.sharing.published import load_synthetic_set

    back = load_synthetic_set(str(out / "data"), load_beir(tiny_beir_session_dir).corpus)
    assert "".join(json.dumps({"_id": q, "text": t}, ensure_ascii=False) + "\n" for q, t in back.queries.items()) == \
        registry.v1["queries.jsonl"]
