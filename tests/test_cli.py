"""The `augir` command: every stage usable without DVC, and bad input gives one line, exit 1, no output."""

import json
import subprocess
import sys
from pathlib import Path

import pytest

from augir.cli import main


def _corrupt_copy(source, target, name, line_number, replacement):
    import shutil

    shutil.copytree(source, target)
    path = target / name
    lines = path.read_text().splitlines(keepends=True)
    lines[line_number - 1] = replacement
    path.write_text("".join(lines))
    return target


@pytest.mark.parametrize(
    ("name", "line", "replacement", "message"),
    [
        ("corpus.jsonl", 2, '{"_id": "d2", "title": "x", "text": \n', "corpus.jsonl:2"),
        ("corpus.jsonl", 3, '{"title": "no id", "text": "t"}\n', "corpus.jsonl:3"),
        ("corpus.jsonl", 3, '{"_id": "d1", "title": "again", "text": "dup"}\n', "corpus.jsonl:3"),
        ("queries.jsonl", 1, '{"_id": "q1"}\n', "queries.jsonl:1"),
        ("qrels/train.tsv", 2, "q1\tnot-a-doc\t1\n", "train.tsv:2"),
        ("qrels/test.tsv", 2, "nobody\td5\t1\n", "test.tsv:2"),
    ],
)
def test_bad_input_is_one_line_naming_file_and_line_and_writes_nothing(
    tmp_path, tiny_beir_dir, capsys, name, line, replacement, message
):
    bad = _corrupt_copy(tiny_beir_dir, tmp_path / "bad", name, line, replacement)
    strict = ["--strict"] if name.startswith("qrels/") else []  # unknown ids are kept (and warned about) otherwise
    status = main(["download", "--source", f"local:{bad}", "--out", str(tmp_path / "out"), *strict])
    err = capsys.readouterr().err
    assert status == 1
    assert err.count("\n") == 1 and err.startswith("augir: error: ") and message in err
    assert not (tmp_path / "out").exists()


def test_unknown_ids_in_qrels_are_kept_with_one_warning_unless_strict(tmp_path, tiny_beir_dir, capsys):
    bad = _corrupt_copy(tiny_beir_dir, tmp_path / "bad", "qrels/test.tsv", 2, "nobody\td5\t1\n")
    assert main(["download", "--source", f"local:{bad}", "--out", str(tmp_path / "out")]) == 0
    err = capsys.readouterr().err
    assert err.count("judged queries are not in the queries (first: 'nobody')") == 1
    assert "nobody\td5\t1" in (tmp_path / "out" / "qrels" / "test.tsv").read_text()


def test_empty_corpus_is_refused(tmp_path, tiny_beir_dir, capsys):
    bad = _corrupt_copy(tiny_beir_dir, tmp_path / "bad", "corpus.jsonl", 1, "")
    (bad / "corpus.jsonl").write_text("")
    assert main(["download", "--source", f"local:{bad}", "--out", str(tmp_path / "out")]) == 1
    assert "corpus.jsonl" in capsys.readouterr().err
    assert not (tmp_path / "out").exists()


def test_a_failed_download_keeps_the_previous_output(tmp_path, tiny_beir_dir, capsys):
    out = tmp_path / "out"
    assert main(["download", "--source", f"local:{tiny_beir_dir}", "--out", str(out)]) == 0
    before = (out / "corpus.jsonl").read_text()
    bad = _corrupt_copy(tiny_beir_dir, tmp_path / "bad", "corpus.jsonl", 1, "not json\n")
    assert main(["download", "--source", f"local:{bad}", "--out", str(out)]) == 1
    assert (out / "corpus.jsonl").read_text() == before


def test_unknown_source_scheme(tmp_path, capsys):
    assert main(["download", "--source", "ftp:somewhere", "--out", str(tmp_path / "out")]) == 1
    assert "ftp:somewhere" in capsys.readouterr().err


def test_hub_source_fails_fast_offline(tmp_path, capsys, monkeypatch):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    assert main(["download", "--source", "hf:mteb/scifact", "--out", str(tmp_path / "out")]) == 1
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "network" in err


def test_train_encode_evaluate_without_dvc(tmp_path, tiny_beir_dir, tiny_encoder_dir):
    model = tmp_path / "model"
    assert main(["train", "--dataset", str(tiny_beir_dir), "--model", str(tiny_encoder_dir), "--epochs", "1",
                 "--batch-size", "2", "--out", str(model)]) == 0
    assert main(["encode", "--model", str(model), "--dataset", str(tiny_beir_dir), "--out", str(tmp_path / "index")]) == 0
    out = tmp_path / "metrics.json"
    assert main(["evaluate", "--model", str(model), "--dataset", str(tiny_beir_dir), "--split", "test",
                 "--index", str(tmp_path / "index"), "--run-dir", str(tmp_path / "eval"), "--out", str(out)]) == 0
    metrics = json.loads(out.read_text())
    assert {"ndcg_at_10", "recall_at_100", "mrr_at_10", "num_queries"} <= set(metrics)
    assert metrics["num_queries"] == 2 and metrics["self_hits_removed"] is True
    run_lines = (tmp_path / "eval" / "run.trec").read_text().splitlines()
    assert len(run_lines) == 2 * 8 and run_lines[0].split()[3] == "1"


def test_unknown_split_is_a_clear_error(tmp_path, tiny_beir_dir, tiny_encoder_dir, capsys):
    status = main(["evaluate", "--model", str(tiny_encoder_dir), "--dataset", str(tiny_beir_dir), "--split", "dev",
                   "--out", str(tmp_path / "m.json")])
    assert status == 1 and "dev" in capsys.readouterr().err
    assert not (tmp_path / "m.json").exists()


def test_unknown_split_is_reported_before_the_model_is_loaded_or_the_corpus_encoded(tmp_path, tiny_beir_dir, capsys,
                                                                                   monkeypatch):
    import augir.retrieval.encoders

    def never(*args, **kwargs):
        raise AssertionError("the encoder was loaded before the split was checked")

    monkeypatch.setattr(augir.retrieval.encoders, "load_encoder", never)
    status = main(["evaluate", "--model", "minilm-l2", "--dataset", str(tiny_beir_dir), "--split", "dev",
                   "--out", str(tmp_path / "m.json")])
    err = capsys.readouterr().err
    assert status == 1 and err == "augir: error: split 'dev' is not in the dataset; available splits: test, train\n"


def test_the_console_script_exits_non_zero_with_one_line(tmp_path):
    result = subprocess.run(
        [sys.executable, "-m", "augir.cli", "download", "--source", f"local:{tmp_path / 'missing'}", "--out", str(tmp_path / "o")],
        capture_output=True, text=True,
    )
    assert result.returncode == 1
    assert result.stderr.count("\n") == 1 and "missing" in result.stderr


@pytest.fixture(scope="module")
def tiny_generator_dir(tmp_path_factory, tiny_generator):
    folder = tmp_path_factory.mktemp("generator") / "tiny-llama"
    tiny_generator.model.save_pretrained(folder)
    tiny_generator.tokenizer.save_pretrained(folder)
    return folder


@pytest.mark.parametrize("strategy", ["question", "keyword", "claim", "title", "diverse"])
def test_augment_writes_the_three_files_for_each_strategy(tmp_path, tiny_beir_dir, tiny_generator_dir, strategy):
    out = tmp_path / "augmented"
    status = main(["augment", "--dataset", str(tiny_beir_dir), "--generator", str(tiny_generator_dir),
                   "--strategy", strategy, "--num-passages", "4", "--seed", "7", "--max-new-tokens", "4",
                   "--out", str(out), "--metrics", str(tmp_path / "augment.json")])
    assert status == 0
    assert {p.relative_to(out).as_posix() for p in out.rglob("*") if p.is_file()} == {
        "queries.jsonl", "qrels/train.tsv", "provenance.jsonl"}
    provenance = [json.loads(line) for line in (out / "provenance.jsonl").read_text().splitlines()]
    assert len(provenance) == 4 and all(r["seed"] is not None and r["strategy"] for r in provenance)
    assert json.loads((tmp_path / "augment.json").read_text())["generated"] == 4


def test_augment_bad_option_is_one_line(tmp_path, tiny_beir_dir, capsys):
    status = main(["augment", "--dataset", str(tiny_beir_dir), "--queries-per-passage", "2", "--out", str(tmp_path / "o")])
    err = capsys.readouterr().err
    assert status == 1 and err.count("\n") == 1 and "temperature" in err
    assert not (tmp_path / "o").exists()


# ------------------------------------------------------------------------------------------ a full disk (issue 10)


def _disk_full(*args, **kwargs):
    import errno
    import os

    raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))


def test_a_full_disk_during_download_is_one_line_and_writes_nothing(tmp_path, tiny_beir_dir, capsys, monkeypatch):
    import augir.data.beir

    monkeypatch.setattr(augir.data.beir, "_write_lines", _disk_full)
    status = main(["download", "--source", f"local:{tiny_beir_dir}", "--out", str(tmp_path / "raw")])
    err = capsys.readouterr().err
    assert status == 1 and err == f"augir: error: {tmp_path / 'raw'}: cannot write (No space left on device); nothing was replaced\n"
    assert [p.name for p in tmp_path.iterdir()] == ["tiny"]  # the source only


def test_a_full_disk_during_augment_is_one_line_naming_the_file(tmp_path, tiny_beir_dir, tiny_generator_dir, capsys,
                                                               monkeypatch):
    import augir.fileio

    from pathlib import Path

    real_open = Path.open

    def open_fails_for_shards(self, mode="r", *args, **kwargs):
        if "w" in mode and self.suffix == ".partial":
            raise OSError(28, "No space left on device")
        return real_open(self, mode, *args, **kwargs)

    monkeypatch.setattr(augir.fileio.Path, "open", open_fails_for_shards)
    status = main(["augment", "--dataset", str(tiny_beir_dir), "--generator", str(tiny_generator_dir),
                   "--num-passages", "2", "--max-new-tokens", "2", "--out", str(tmp_path / "out")])
    last = capsys.readouterr().err.strip().splitlines()[-1]
    assert status == 1 and last.startswith("augir: error: ") and ".partial: cannot write (No space left on device)" in last
    assert not (tmp_path / "out").exists()


def test_an_os_error_outside_augir_is_one_line_with_its_path():
    import errno

    from augir.cli import run_cli

    def fails():
        raise OSError(errno.ENOSPC, "No space left on device", "/data/x.json")

    import contextlib
    import io

    err = io.StringIO()
    with contextlib.redirect_stderr(err):
        assert run_cli(fails) == 1
    assert err.getvalue() == "augir: error: /data/x.json: No space left on device\n"


# ------------------------------------------------------------------------------------------ every param reachable


def _flags_of(command: str) -> set[str]:
    from augir.cli import build_parser

    subcommands = next(a for a in build_parser()._actions if a.dest == "command").choices
    return {flag for action in subcommands[command]._actions for flag in action.option_strings}


def _flag(key: str) -> str:
    return "--" + key.replace("_", "-").replace(".", "-")


@pytest.mark.parametrize(("command", "model", "elsewhere"), [
    ("download", "DownloadParams", {"sources": "--source"}),
    ("augment", "AugmentParams", {"dataset": "--dataset"}),
    # train's and encode's knobs: `augir train --processes`, `augir encode --devices`
    ("augment", "RuntimeParams", {"train_processes": None, "encode_devices": None}),
    ("filter", "FilterParams", {}),
    ("train", "TrainParams", {"datasets": "--dataset"}),
    ("encode", "EncodeParams", {}),
    ("evaluate", "EvaluateParams", {"datasets": "--dataset", "remove_self_hits": "--keep-self-hits"}),
])
def test_every_param_of_a_stage_is_a_flag_of_its_subcommand(command, model, elsewhere):
    import augir.params
    from pydantic import BaseModel

    flags = _flags_of(command)
    params_model = getattr(augir.params, model)
    for key, field in params_model.model_fields.items():
        nested = field.annotation if isinstance(field.annotation, type) and issubclass(field.annotation, BaseModel) else None
        keys = [f"{key}.{inner}" for inner in nested.model_fields] if nested else [key]
        for dotted in keys:
            flag = elsewhere.get(dotted, _flag(dotted))
            assert flag is None or flag in flags, f"augir {command}: {model}.{dotted} has no flag"
    assert "--processes" in _flags_of("train")


def test_filter_defaults_to_the_params_default(tmp_path, tiny_beir_dir, tiny_dataset, capsys):
    from augir.params import FilterParams

    augmented = tmp_path / "augmented"
    from test_fileio import _augment_writer

    _augment_writer(tiny_dataset, augmented, "which sugar")()
    assert main(["filter", "--dataset", str(tiny_beir_dir), "--augmented", str(augmented), "--out", str(tmp_path / "f"),
                 "--metrics", str(tmp_path / "m.json")]) == 0
    assert json.loads((tmp_path / "m.json").read_text())["method"] == FilterParams().method == "none"


def test_params_file_gives_a_stage_every_param_and_flags_override_it(tmp_path, tiny_beir_dir, tiny_generator_dir):
    import yaml

    params = yaml.safe_load((Path(__file__).resolve().parents[1] / "params.yaml").read_text())
    params["augment"].update(generator=str(tiny_generator_dir), num_passages=3, max_new_tokens=3, min_chars=500)
    (tmp_path / "p.yaml").write_text(yaml.safe_dump(params))
    out = tmp_path / "augmented"
    assert main(["augment", "--dataset", str(tiny_beir_dir), "--params", str(tmp_path / "p.yaml"), "--num-passages", "2",
                 "--out", str(out), "--metrics", str(tmp_path / "m.json")]) == 0
    stats = json.loads((tmp_path / "m.json").read_text())
    assert stats["passages"] == 2  # the flag
    assert stats["dropped"]["too_short"] == 2 and stats["kept"] == 0  # the file's clean-up threshold
