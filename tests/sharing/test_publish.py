"""`augir publish`: Parquet that `datasets` loads back, BEIR files beside it, a card with the whole provenance, and a
refusal (one line, nothing written) for a set whose origin cannot be told."""

from __future__ import annotations

import hashlib
import json
import shutil
import time
from pathlib import Path

import pytest
import yaml

from augir.augmentation.augment import run_augmentation
from augir.cli import main
from augir.params import AugmentParams, load_params
from augir.sharing.publish import KNOWN_LICENSES, PublishOptions, corpus_info, publish

REPO = Path(__file__).resolve().parents[2]
# A run of the real augment code with the tiny generator; min_chars drops some of its generations as too short.
AUGMENT = dict(dataset="scifact", generator="tiny-llama", num_passages=8, num_examples=2, max_new_tokens=4,
               seed=0, min_chars=12)


def _write_params(folder: Path, source: str = "local:/collections/scifact", **augment: object) -> Path:
    params = yaml.safe_load((REPO / "params.yaml").read_text())
    params["download"]["sources"] = {"scifact": source}
    params["augment"].update({**AUGMENT, **augment})
    params["train"]["datasets"] = ["scifact"]
    params["evaluate"]["datasets"] = ["scifact"]
    path = folder / "params.yaml"
    path.write_text(yaml.safe_dump(params, sort_keys=False))
    return path


@pytest.fixture
def generated(tmp_path, tiny_dataset, tiny_backend) -> Path:
    """An augmented folder written by the augment stage's own code (so its provenance is the real format)."""
    out = tmp_path / "augmented"
    run_augmentation(tiny_dataset, AugmentParams(**AUGMENT), out, tmp_path / "work", tiny_backend)
    return out


def _records(folder: Path) -> list[dict]:
    return [json.loads(line) for line in (folder / "provenance.jsonl").read_text().splitlines()]


def _front_matter(card: Path) -> tuple[dict, str]:
    text = card.read_text()
    assert text.startswith("---\n")
    front, _, body = text[4:].partition("\n---\n")
    return yaml.safe_load(front), body


def _publish(augmented: Path, out: Path, params: Path, *extra: str) -> int:
    return main(["publish", str(augmented), "--out", str(out), "--params", str(params), *extra])


def test_publish_writes_parquet_that_datasets_loads_back_beir_files_and_a_full_card(tmp_path, generated):
    params_path = _write_params(tmp_path)
    out = tmp_path / "published"
    assert _publish(generated, out, params_path) == 0

    records = _records(generated)
    kept = [r for r in records if r["query"] is not None]
    assert kept and len(kept) < len(records)  # the fixture's run has both kinds
    import datasets

    cache = str(tmp_path / "hf-cache")  # a fresh cache: `datasets` may otherwise serve an older copy of the folder
    rows = datasets.load_dataset("parquet", data_files=str(out / "data" / "*.parquet"), split="train", cache_dir=cache)
    assert rows.num_rows == len(kept)
    for row, record in zip(rows, kept):
        assert (row["query_id"], row["query"], row["doc_id"]) == (record["query_id"], record["query"], record["doc_id"])
        assert (row["generator"], row["strategy"], row["prompt"]) == ("tiny-llama", record["strategy"], record["prompt"])
        assert row["seed"] == record["seed"] and json.loads(row["sampling"]) == record["sampling"]
        assert row["few_shot_query_ids"] == record["few_shot_query_ids"] and row["raw"] == record["raw"]
        assert json.loads(row["extra"])["run_seed"] == 0
    # The card's configs/data_files are what the hub (and load_dataset on the folder) go by.
    by_card = datasets.load_dataset(str(out), split="train", cache_dir=cache)
    assert by_card["query_id"] == rows["query_id"]
    for name in ("queries.jsonl", "qrels/train.tsv", "provenance.jsonl"):
        assert (out / name).read_text() == (generated / name).read_text()

    meta, body = _front_matter(out / "README.md")
    assert meta["license"] == "cc-by-nc-2.0" and meta["task_categories"] == ["text-retrieval"]
    assert meta["configs"] == [{"config_name": "default", "data_files": [{"split": "train", "path": "data/train-*.parquet"}]}]
    augment = load_params(params_path).augment.model_dump(mode="json")
    dropped = {r["dropped"]: sum(1 for x in records if x["dropped"] == r["dropped"]) for r in records if r["dropped"]}
    assert meta["augir"] == {
        "augir_version": "0.1.0",
        "corpus": {"name": "scifact", "source": "local:/collections/scifact", "license": KNOWN_LICENSES["scifact"].text},
        "generator": "tiny-llama",
        "strategy": "question",
        "prompt_example": kept[0]["prompt"],
        "sampling": kept[0]["sampling"],
        "seed": 0,
        "filter": "none",
        "counts": {"passages": 8, "generated": len(records), "kept": len(kept), "dropped": dropped,
                   "queries": len(kept), "pairs": len(kept)},
        "augment_params": augment,
        "augment_params_sha256": hashlib.sha256(json.dumps(augment, sort_keys=True).encode()).hexdigest(),
    }
    for shown in ("scifact", "CC BY-NC 2.0", "tiny-llama", "question", '"max_new_tokens": 4', "| seed | 0 |",
                  "| filter | none |", meta["augir"]["augment_params_sha256"], kept[0]["prompt"].splitlines()[-1]):
        assert shown in body


def test_a_filtered_set_records_the_filter_settings(tmp_path, generated):
    records = _records(generated)
    lines = [json.dumps({**r, "filter": {"method": "consistency", "rank": 1}}) for r in records]
    (generated / "provenance.jsonl").write_text("\n".join(lines) + "\n")
    params_path = _write_params(tmp_path)
    assert _publish(generated, tmp_path / "out", params_path) == 0
    meta, _ = _front_matter(tmp_path / "out" / "README.md")
    assert meta["augir"]["filter"] == load_params(params_path).model_dump(mode="json")["filter"]


def _drop_field(folder: Path, field: str) -> None:
    records = _records(folder)
    records[0].pop(field)
    (folder / "provenance.jsonl").write_text("".join(json.dumps(r) + "\n" for r in records))


@pytest.mark.parametrize(
    ("damage", "message"),
    [
        (lambda f: (f / "provenance.jsonl").unlink(), "provenance.jsonl: file not found"),
        (lambda f: _drop_field(f, "seed"), "provenance.jsonl:1: provenance record lacks 'seed'"),
        (lambda f: _drop_field(f, "prompt"), "provenance.jsonl:1: provenance record lacks 'prompt'"),
        (lambda f: _drop_field(f, "generator"), "provenance.jsonl:1: provenance record lacks 'generator'"),
        (lambda f: _drop_field(f, "sampling"), "provenance.jsonl:1: provenance record lacks 'sampling'"),
        (lambda f: (f / "queries.jsonl").write_text((f / "queries.jsonl").read_text() + '{"_id": "x", "text": "y"}\n'),
         "no record for query 'x'"),
    ],
)
def test_incomplete_provenance_is_refused_in_one_line_and_nothing_is_written(
    tmp_path, generated, capsys, damage, message
):
    damage(generated)
    assert _publish(generated, tmp_path / "out", _write_params(tmp_path)) == 1
    err = capsys.readouterr().err
    assert err.startswith("augir: error: ") and err.count("\n") == 1 and message in err
    assert not (tmp_path / "out").exists() and not list(tmp_path.glob(".out.*"))


def test_an_unknown_corpus_licence_is_refused_unless_given(tmp_path, generated, capsys):
    params_path = _write_params(tmp_path, source="local:/collections/mycorpus")
    assert _publish(generated, tmp_path / "out", params_path) == 1
    assert "licence of corpus 'scifact' (source 'local:/collections/mycorpus') is unknown" in capsys.readouterr().err
    assert not (tmp_path / "out").exists()
    assert _publish(generated, tmp_path / "out", params_path, "--corpus-license", "cc-by-4.0", "--corpus-name", "mine") == 0
    meta, _ = _front_matter(tmp_path / "out" / "README.md")
    assert meta["license"] == "cc-by-4.0" and meta["augir"]["corpus"]["name"] == "mine"


@pytest.mark.parametrize(
    ("source", "hub_id"), [("semanlink", "mit"), ("beir:scifact", "cc-by-nc-2.0"), ("local:/data/cranfield", "other")]
)
def test_known_licences_follow_the_source(tmp_path, source, hub_id):
    params = load_params(_write_params(tmp_path, source=source))
    assert corpus_info(params, PublishOptions()).license.hub_id == hub_id


def test_params_that_did_not_make_the_set_are_refused(tmp_path, generated, capsys):
    params_path = _write_params(tmp_path, seed=4)
    assert _publish(generated, tmp_path / "out", params_path) == 1
    err = capsys.readouterr().err
    assert "augment.seed is 4 but" in err and "provenance.jsonl:1 has seed 0" in err
    assert not (tmp_path / "out").exists()


def test_to_hub_offline_fails_fast_and_writes_nothing(tmp_path, generated, capsys, monkeypatch):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    started = time.monotonic()
    assert _publish(generated, tmp_path / "out", _write_params(tmp_path), "--to-hub", "someone/synthetic") == 1
    assert time.monotonic() - started < 5
    err = capsys.readouterr().err
    assert err == "augir: error: --to-hub: source 'someone/synthetic' needs network access, but HF_HUB_OFFLINE is set (offline mode)\n"
    assert not (tmp_path / "out").exists()


def test_only_an_earlier_publication_is_replaced(tmp_path, generated, capsys):
    params_path = _write_params(tmp_path)
    mine = tmp_path / "mine"
    mine.mkdir()
    (mine / "notes.txt").write_text("keep me")
    assert _publish(generated, mine, params_path) == 1
    assert "is not an earlier `augir publish` output" in capsys.readouterr().err
    assert (mine / "notes.txt").read_text() == "keep me"

    out = tmp_path / "out"
    assert _publish(generated, out, params_path) == 0
    shutil.rmtree(generated / "qrels")  # a broken set: the earlier publication must survive the failed attempt
    before = (out / "README.md").read_text()
    assert _publish(generated, out, params_path) == 1
    assert (out / "README.md").read_text() == before


def test_the_augmented_folder_itself_is_never_the_output(tmp_path, generated):
    from augir.errors import AugirError

    for out in (generated.parent, generated / "hf"):
        with pytest.raises(AugirError, match="would replace or write into the augmented set"):
            publish(generated, out, PublishOptions(_write_params(tmp_path)))
    assert not (generated / "hf").exists()
    assert (generated / "queries.jsonl").exists()


def test_free_text_in_the_card_is_escaped_not_rendered(tmp_path, generated):
    hostile = "<script>alert(1)</script> ![pixel](http://evil/p.png) [link](http://evil)\n---\nlicense: mit | cell"
    assert _publish(generated, tmp_path / "out", _write_params(tmp_path), "--corpus-name", hostile) == 0
    meta, body = _front_matter(tmp_path / "out" / "README.md")
    assert meta["augir"]["corpus"]["name"] == hostile  # the metadata keeps it exactly (YAML quotes it)
    assert meta["license"] == "cc-by-nc-2.0"
    import re

    assert "<script>" not in body
    assert not re.search(r"(?<!\\)!\[", body) and not re.search(r"(?<!\\)\]\(http://evil", body)  # no image, no link
    assert "---" not in body.splitlines() and not any(line.startswith("license:") for line in body.splitlines())
    assert "&lt;script&gt;alert(1)&lt;/script&gt; \\!\\[pixel\\](http://evil/p.png)" in body
    source_row = next(line for line in body.splitlines() if line.startswith("| source corpus |"))
    assert source_row.count(" | ") == 1 and "\\| cell" in source_row  # still two cells
