"""Nothing lost: writers refuse folders augir did not write, and a killed writer leaves the old or the new output.

The fault-injection loop kills a forked writer with `os._exit` (what `kill -9` does: no `finally`, no clean-up) at
every file-system step it takes, counted by an audit hook (opens, mkdirs, renames, removals), so also between the
two renames of a swap; the next run must then find the old or the new complete output and no leftovers.
"""

from __future__ import annotations

import errno
import json
import os
import sys
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest

from augir.errors import AugirError
from augir.fileio import atomic_folder, check_replaceable, recover_swap, write_json_atomic, write_text_atomic

KILL_EVENTS = {"open", "os.mkdir", "os.rename", "os.replace", "os.remove", "os.rmdir", "shutil.rmtree", "os.chmod"}


def snapshot(path: Path) -> dict[str, bytes] | None:
    """Every file under `path` (or `path` itself) with its bytes; None when `path` does not exist."""
    if path.is_file():
        return {".": path.read_bytes()}
    if not path.exists():
        return None
    return {p.relative_to(path).as_posix(): p.read_bytes() for p in sorted(path.rglob("*")) if p.is_file()}


def leftovers(path: Path) -> list[str]:
    return sorted(p.name for p in path.parent.iterdir() if p.name.startswith(f".{path.name}."))


def _run_in_child(write: Callable[[], None], kill_at: int | None) -> int:
    """Run `write` in a forked child killed before its `kill_at`-th file-system step; returns the steps it took."""
    read_end, write_end = os.pipe()
    pid = os.fork()
    if pid == 0:  # the child: count steps, die at the chosen one
        os.close(read_end)
        steps = 0

        def hook(event: str, args: tuple) -> None:
            nonlocal steps
            if event in KILL_EVENTS:
                steps += 1
                if steps == kill_at:
                    os._exit(137)

        sys.addaudithook(hook)
        try:
            write()
        except BaseException:
            os._exit(1)
        os.write(write_end, str(steps).encode())
        os._exit(0)
    os.close(write_end)
    _, status = os.waitpid(pid, 0)
    message = os.read(read_end, 64).decode()
    os.close(read_end)
    code = os.waitstatus_to_exitcode(status)
    assert code in (0, 137), f"the writer failed (exit {code}) instead of being killed"
    return int(message) if code == 0 else -1


def assert_old_or_new_after_kills(target: Path, write_old: Callable[[], None] | None, write_new: Callable[[], None],
                                  recover: Callable[[Path], None] = recover_swap) -> int:
    """Kill `write_new` at each of its steps; after each kill the next run finds the old or the new output."""
    if write_old:
        write_old()
    old = snapshot(target)
    write_new()
    new = snapshot(target)
    assert old != new, "the test needs two different outputs"
    _reset(target)
    if write_old:
        write_old()
    steps = _run_in_child(write_new, kill_at=None)  # counted from the state each kill starts from
    assert steps > 3
    for kill_at in range(1, steps + 1):
        _reset(target)
        if write_old:
            write_old()
        assert _run_in_child(write_new, kill_at) == -1
        recover(target)
        assert snapshot(target) in (old, new), f"killed at step {kill_at} of {steps}: neither old nor new output"
        assert leftovers(target) == [], f"killed at step {kill_at}: leftovers after recovery"
        write_new()  # and the next run completes
        assert snapshot(target) == new and leftovers(target) == []
    return steps


def _reset(target: Path) -> None:
    import shutil

    for path in [target, *target.parent.glob(f".{target.name}.*")]:
        if path.is_dir():
            shutil.rmtree(path)
        elif path.exists():
            path.unlink()


# ------------------------------------------------------------------------------------------ fault injection

needs_fork = pytest.mark.skipif(not hasattr(os, "fork"), reason="fault injection forks the writer (POSIX only)")


class FixedBackend:
    """Answers every prompt with one text: two of these give two different augmented sets."""

    name = "transformers"

    def __init__(self, text: str) -> None:
        self.text = text

    def complete(self, prompts, seeds, sampling):
        from augir.augmentation.backends import Completion

        return [Completion(text=f"{self.text} {seed % 97}", new_tokens=3) for seed in seeds]


def _augment_writer(dataset, target: Path, text: str) -> Callable[[], None]:
    from augir.augmentation.augment import run_augmentation
    from augir.params import AugmentParams, RuntimeParams

    params = AugmentParams(dataset="tiny", num_passages=4, num_examples=1)
    return lambda: run_augmentation(dataset, params, target, target.parent / ".work", backend=FixedBackend(text),
                                    runtime=RuntimeParams(batch_size=2))


@needs_fork
def test_killed_augment_leaves_the_old_or_the_new_set(tmp_path, tiny_dataset):
    target = tmp_path / "augmented"
    assert_old_or_new_after_kills(target, _augment_writer(tiny_dataset, target, "which sugar"),
                                  _augment_writer(tiny_dataset, target, "what gravity"))


@needs_fork
def test_killed_filter_leaves_the_old_or_the_new_set(tmp_path, tiny_dataset):
    from augir.filtering.filter import run_filter
    from augir.params import FilterParams

    first, second = tmp_path / "a1", tmp_path / "a2"
    _augment_writer(tiny_dataset, first, "which sugar")()
    _augment_writer(tiny_dataset, second, "what gravity")()
    target = tmp_path / "filtered"
    params = FilterParams(method="none")
    assert_old_or_new_after_kills(target, lambda: run_filter(tiny_dataset, first, params, target),
                                  lambda: run_filter(tiny_dataset, second, params, target))


@needs_fork
def test_killed_download_leaves_the_old_or_the_new_dataset(tmp_path, tiny_dataset):
    from augir.data.beir import BeirDataset, write_beir

    smaller = BeirDataset(corpus=dict(list(tiny_dataset.corpus.items())[:6]), queries=tiny_dataset.queries,
                          qrels=tiny_dataset.qrels)
    target = tmp_path / "raw"
    assert_old_or_new_after_kills(target, lambda: write_beir(smaller, target), lambda: write_beir(tiny_dataset, target))


@needs_fork
def test_killed_encode_leaves_the_old_or_the_new_index(tmp_path):
    from augir.retrieval.index import build_index, save_index

    def writer(seed: int) -> Callable[[], None]:
        embeddings = np.random.default_rng(seed).standard_normal((5, 8)).astype(np.float32)
        return lambda: save_index(build_index([f"d{i}" for i in range(5)], embeddings), embeddings, target)

    target = tmp_path / "index"
    assert_old_or_new_after_kills(target, writer(1), writer(2))


@needs_fork
def test_killed_evaluate_leaves_the_old_or_the_new_run(tmp_path):
    from augir.retrieval.evaluate import write_run_outputs
    from augir.retrieval.metrics import evaluate_run

    qrels = {"q1": {"d1": 1}, "q2": {"d2": 1}}

    def writer(score: float) -> Callable[[], None]:
        run = {"q1": {"d1": score, "d2": 0.1}, "q2": {"d1": 0.2, "d2": score}}
        return lambda: write_run_outputs(run, evaluate_run(qrels, run), target, tag="t")

    target = tmp_path / "eval"
    assert_old_or_new_after_kills(target, writer(0.5), writer(0.9))
    assert_old_or_new_after_kills(tmp_path / "m.json", lambda: write_json_atomic(tmp_path / "m.json", {"a": 1}),
                                  lambda: write_json_atomic(tmp_path / "m.json", {"a": 2}))


class FakeEncoder:
    """Saves like a SentenceTransformer (modules.json plus a weights file), without a model."""

    def __init__(self, weights: bytes) -> None:
        self.weights = weights

    def save(self, folder: str) -> None:
        Path(folder, "modules.json").write_text("[]", encoding="utf-8")
        Path(folder, "model.safetensors").write_bytes(self.weights)


@needs_fork
def test_killed_train_leaves_the_old_or_the_new_model_and_no_partial_file(tmp_path, monkeypatch):
    from augir.params import TrainParams
    from augir.training import train

    target = tmp_path / "retriever"
    params = TrainParams(datasets=["tiny"], epochs=0)

    def writer(weights: bytes, out: Path = target) -> Callable[[], None]:
        def write() -> None:
            monkeypatch.setattr(train, "load_encoder", lambda *args, **kwargs: FakeEncoder(weights))
            train.train_encoder([], params, out)

        return write

    assert_old_or_new_after_kills(target, writer(b"old" * 1000), writer(b"new" * 2000))
    assert_old_or_new_after_kills(tmp_path / "first", None, writer(b"x" * 10, tmp_path / "first"))


# ------------------------------------------------------------------------------------------ the swap's states


def test_a_swap_stopped_between_its_renames_is_undone_by_the_next_writer(tmp_path):
    target = tmp_path / "index"
    target.mkdir()
    (target / "index.faiss").write_text("old")
    # what a kill between the two renames leaves: the old copy aside, the new one staged, no target
    os.rename(target, tmp_path / ".index.old-abc123")
    (tmp_path / ".index.tmp-def456").mkdir()
    (tmp_path / ".index.tmp-def456" / "index.faiss").write_text("new, maybe incomplete")
    (tmp_path / ".index.tmp-old999").mkdir()  # an earlier run's staging folder (a killed train's partial file)
    (tmp_path / ".index.tmp-old999" / "model.safetensors").write_bytes(b"\0" * 1000)
    with atomic_folder(target, signature="index.faiss") as staging:
        assert (target / "index.faiss").read_text() == "old"  # restored before anything else
        (staging / "index.faiss").write_text("newer")
    assert (target / "index.faiss").read_text() == "newer"
    assert leftovers(target) == []


def test_leftovers_beside_a_complete_output_are_removed_and_it_is_kept(tmp_path):
    target = tmp_path / "eval"
    target.mkdir()
    (target / "run.trec").write_text("new")
    (tmp_path / ".eval.old-1").mkdir()  # killed while removing the old copy
    (tmp_path / ".eval.tmp-2").mkdir()
    (tmp_path / ".m.json.tmp-3").write_text("{")  # a killed metrics write
    recover_swap(target)
    write_text_atomic(tmp_path / "m.json", "{}")
    assert (target / "run.trec").read_text() == "new"
    assert leftovers(target) == [] and leftovers(tmp_path / "m.json") == []


# ------------------------------------------------------------------------------------------ refusing foreign folders


def _users_folder(path: Path) -> Path:
    path.mkdir()
    (path / "thesis.txt").write_text("three years of work")
    return path


def test_a_folder_augir_did_not_write_is_refused_and_kept(tmp_path):
    folder = _users_folder(tmp_path / "out")
    with pytest.raises(AugirError, match=r"--out .*out: exists and is not an earlier augir output \(no index.faiss\)"):
        with atomic_folder(folder, signature="index.faiss") as staging:
            (staging / "index.faiss").write_text("x")
    assert (folder / "thesis.txt").read_text() == "three years of work"
    assert leftovers(folder) == []


def test_overwrite_replaces_a_foreign_folder_and_empty_or_earlier_outputs_need_no_flag(tmp_path):
    folder = _users_folder(tmp_path / "out")
    with atomic_folder(folder, signature="index.faiss", overwrite=True) as staging:
        (staging / "index.faiss").write_text("x")
    assert snapshot(folder) == {"index.faiss": b"x"}
    check_replaceable(folder, "index.faiss")  # an earlier output
    (tmp_path / "empty").mkdir()
    check_replaceable(tmp_path / "empty", "index.faiss")
    (tmp_path / "file").write_text("x")
    with pytest.raises(AugirError, match="exists and is not a folder"):
        check_replaceable(tmp_path / "file", "index.faiss")


def _cli(args: list[str], capsys) -> tuple[int, str]:
    from augir.cli import main

    status = main(args)
    return status, capsys.readouterr().err


def test_augment_refuses_a_users_folder_before_generating(tmp_path, tiny_beir_dir, capsys):
    folder = _users_folder(tmp_path / "out")
    status, err = _cli(["augment", "--dataset", str(tiny_beir_dir), "--generator", "no-such-model", "--out", str(folder)],
                       capsys)
    assert status == 1 and err.count("\n") == 1 and "refusing to replace it" in err  # not the generator's error
    assert (folder / "thesis.txt").exists()


def test_filter_refuses_a_users_folder(tmp_path, tiny_beir_dir, tiny_dataset, capsys):
    augmented = tmp_path / "augmented"
    _augment_writer(tiny_dataset, augmented, "which sugar")()
    folder = _users_folder(tmp_path / "out")
    status, err = _cli(["filter", "--dataset", str(tiny_beir_dir), "--augmented", str(augmented), "--method", "none",
                        "--out", str(folder)], capsys)
    assert status == 1 and "refusing to replace it" in err and (folder / "thesis.txt").exists()
    assert _cli(["filter", "--dataset", str(tiny_beir_dir), "--augmented", str(augmented), "--method", "none",
                 "--out", str(folder), "--overwrite"], capsys)[0] == 0
    assert not (folder / "thesis.txt").exists() and (folder / "provenance.jsonl").exists()


def test_train_refuses_a_users_folder_before_training(tmp_path, tiny_beir_dir, capsys):
    folder = _users_folder(tmp_path / "out")
    status, err = _cli(["train", "--dataset", str(tiny_beir_dir), "--model", "no-such-model", "--out", str(folder)], capsys)
    assert status == 1 and "no modules.json" in err and (folder / "thesis.txt").exists()


def test_encode_refuses_a_users_folder_before_encoding(tmp_path, tiny_beir_dir, capsys):
    folder = _users_folder(tmp_path / "out")
    status, err = _cli(["encode", "--model", "no-such-model", "--dataset", str(tiny_beir_dir), "--out", str(folder)], capsys)
    assert status == 1 and "no index.json" in err and (folder / "thesis.txt").exists()


def test_evaluate_refuses_a_users_run_dir_and_a_folder_as_out_before_encoding(tmp_path, tiny_beir_dir, capsys):
    folder = _users_folder(tmp_path / "eval")
    base = ["evaluate", "--model", "no-such-model", "--dataset", str(tiny_beir_dir)]
    status, err = _cli([*base, "--run-dir", str(folder), "--out", str(tmp_path / "m.json")], capsys)
    assert status == 1 and "--run-dir" in err and "no run.trec" in err and (folder / "thesis.txt").exists()
    status, err = _cli([*base, "--out", str(folder)], capsys)
    assert status == 1 and err.count("\n") == 1 and "is a folder" in err


# ------------------------------------------------------------------------------------------ permissions, full disk


def test_outputs_honour_the_umask(tmp_path):
    previous = os.umask(0o022)
    try:
        with atomic_folder(tmp_path / "out") as staging:
            (staging / "f").write_text("x")
        write_json_atomic(tmp_path / "m.json", {})
    finally:
        os.umask(previous)
    assert (tmp_path / "out").stat().st_mode & 0o777 == 0o755
    assert (tmp_path / "m.json").stat().st_mode & 0o777 == 0o644


def test_a_full_disk_is_one_line_naming_the_output_and_nothing_is_replaced(tmp_path):
    target = tmp_path / "out"
    target.mkdir()
    (target / "run.trec").write_text("old")
    with pytest.raises(AugirError, match=r"out: cannot write \(No space left on device\); nothing was replaced"):
        with atomic_folder(target, signature="run.trec"):
            raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))
    assert snapshot(target) == {"run.trec": b"old"} and leftovers(target) == []


def test_a_full_disk_while_writing_metrics_is_one_line(tmp_path, monkeypatch):
    import augir.fileio

    def full(fd, text):  # the disk fills up during the write
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))

    write_json_atomic(tmp_path / "m.json", {"old": 1})
    monkeypatch.setattr(augir.fileio.os, "fdopen", lambda fd, *a, **k: _Full(fd))
    with pytest.raises(AugirError, match=r"m.json: cannot write \(No space left on device\)"):
        write_json_atomic(tmp_path / "m.json", {"new": 1})
    assert json.loads((tmp_path / "m.json").read_text()) == {"old": 1} and leftovers(tmp_path / "m.json") == []


class _Full:
    def __init__(self, fd: int) -> None:
        os.close(fd)

    def __enter__(self) -> _Full:
        return self

    def __exit__(self, *exc: object) -> None:
        return None

    def write(self, text: str) -> int:
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))
