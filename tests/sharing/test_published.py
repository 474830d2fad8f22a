"""`augment.source`: existing augmented sets in augir's, BEIR GenQ/GPL, InPars and `augir publish` layouts, loaded,
checked against the corpus and written in augir's layout; bad input is one line and writes nothing."""

from __future__ import annotations

import json
import runpy
import shutil
import time
from pathlib import Path

import pytest
import yaml

from augir.cli import run_cli
from augir.data import sources
from augir.errors import AugirError
from augir.params import load_params
from augir.sharing.publish import PublishOptions, publish
from augir.sharing.published import import_augmented, load_synthetic_set
from augir.versions import library_versions

REPO = Path(__file__).resolve().parents[2]
FILES = ("queries.jsonl", "qrels/train.tsv", "provenance.jsonl")


def _record(query_id: str, doc_id: str, query: str | None, dropped: str | None = None) -> dict:
    """A provenance record as the augment stage writes it."""
    return {
        "query_id": query_id, "doc_id": doc_id, "strategy": "question", "query": query, "dropped": dropped,
        "raw": query or "", "generator": "smollm2-135m", "backend": "transformers", "prompt_format": "completion",
        "prompt": f"Document: passage {doc_id}\nRelevant query:", "examples_source": "train",
        "few_shot_query_ids": ["q1", "q2"], "sampling": {"temperature": 0.0, "top_p": 1.0, "max_new_tokens": 24},
        "seed": 1000 + int(doc_id[1:]), "run_seed": 0,
    }


RECORDS = [
    _record("gen-d3-0", "d3", "how is a vaccine made"),
    _record("gen-d7-0", "d7", None, "too_short"),
    _record("gen-d1-0", "d1", "what do plants make from light"),
    _record("gen-d5-0", "d5", "what moves the tides"),
]


def _write(path: Path, text: str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)


def _augir_folder(folder: Path, records: list[dict] = RECORDS, provenance: bool = True) -> Path:
    """augir's layout, formatted as the augment stage writes it."""
    kept = [r for r in records if r["query"] is not None]
    _write(folder / "queries.jsonl", "".join(json.dumps({"_id": r["query_id"], "text": r["query"]}) + "\n" for r in kept))
    rows = "".join(f"{r['query_id']}\t{r['doc_id']}\t1\n" for r in kept)
    _write(folder / "qrels" / "train.tsv", "query-id\tcorpus-id\tscore\n" + rows)
    if provenance:
        _write(folder / "provenance.jsonl", "".join(json.dumps(r) + "\n" for r in records))
    return folder


def _files(folder: Path) -> dict[str, str]:
    return {name: (folder / name).read_text() for name in FILES}


def _error(source: str, corpus, out: Path) -> str:
    with pytest.raises(AugirError) as caught:
        import_augmented(source, corpus, out)
    message = str(caught.value)
    assert "\n" not in message
    assert not out.exists() and not list(out.parent.glob(f".{out.name}.*"))  # nothing written, no staging left
    return message


# ---------------------------------------------------------------------------------------------- layouts


def test_augir_layout_with_provenance_is_copied_unchanged(tmp_path, tiny_dataset):
    source = _augir_folder(tmp_path / "published" / "reg")
    stats = import_augmented(str(source), tiny_dataset.corpus, tmp_path / "augmented")
    assert _files(tmp_path / "augmented") == _files(source)
    assert stats == {"source": str(source), "layout": "augir", "generated": 0, "passages": 3, "queries": 3, "pairs": 3}


def test_augir_layout_without_provenance_records_source_and_layout(tmp_path, tiny_dataset):
    source = _augir_folder(tmp_path / "hand", provenance=False)
    import_augmented(str(source), tiny_dataset.corpus, tmp_path / "augmented")
    provenance = [json.loads(line) for line in (tmp_path / "augmented" / "provenance.jsonl").read_text().splitlines()]
    assert provenance[0] == {"query_id": "gen-d3-0", "doc_id": "d3", "query": "how is a vaccine made",
                             "source": str(source), "layout": "augir"}
    assert [r["query_id"] for r in provenance] == ["gen-d3-0", "gen-d1-0", "gen-d5-0"]  # the source's order


@pytest.mark.parametrize("prefix", ["gen", "qgen"])  # BEIR's QueryGenerator, GPL (which copies corpus.jsonl beside)
def test_beir_genq_and_gpl_layouts(tmp_path, tiny_dataset, tiny_beir_dir, prefix):
    folder = tmp_path / "genq"
    _write(folder / f"{prefix}-queries.jsonl", '{"_id": "genQ1", "text": "why does iron rust"}\n'
                                                '{"_id": "genQ2", "text": "what erupts from a volcano"}\n')
    _write(folder / f"{prefix}-qrels" / "train.tsv", "query-id\tcorpus-id\tscore\ngenQ2\td7\t1\ngenQ1\td4\t1\n")
    shutil.copy(tiny_beir_dir / "corpus.jsonl", folder / "corpus.jsonl")
    synthetic = load_synthetic_set(str(folder), tiny_dataset.corpus)
    assert synthetic.layout == "beir-genq"
    assert synthetic.queries == {"genQ1": "why does iron rust", "genQ2": "what erupts from a volcano"}
    assert synthetic.qrels == {"genQ1": {"d4": 1}, "genQ2": {"d7": 1}}
    assert synthetic.provenance[0] == {"query_id": "genQ1", "doc_id": "d4", "query": "why does iron rust",
                                       "source": str(folder), "layout": "beir-genq"}


# InPars' generate.py writes the corpus row (`doc_id`, `text`: the passage) plus `query`, `log_probs`,
# `prompt_text` and `fewshot_examples`; its filter.py adds `score` and reads `question` (InPars v1's name).
INPARS_LINES = [
    {"doc_id": "d2", "text": "A region of spacetime...", "query": "what is a black hole made of",
     "log_probs": [-0.5, -1.25], "prompt_text": "Example 1: ...", "fewshot_examples": ["7"]},
    {"doc_id": "d2", "text": "A region of spacetime...", "query": "can light escape a black hole",
     "log_probs": [-0.75], "prompt_text": "Example 1: ...", "fewshot_examples": ["7"], "score": -0.75},
    {"doc_id": "d6", "doc_text": "Insulin is a hormone...", "question": "what hormone controls blood sugar",
     "log_probs": [-0.1]},
]


@pytest.mark.parametrize("as_folder", [False, True])
def test_inpars_jsonl(tmp_path, tiny_dataset, as_folder):
    path = tmp_path / "inpars" / "synthetic.jsonl"
    _write(path, "".join(json.dumps(line) + "\n" for line in INPARS_LINES))
    source = str(path.parent if as_folder else path)
    stats = import_augmented(source, tiny_dataset.corpus, tmp_path / "augmented")
    assert stats == {"source": source, "layout": "inpars", "generated": 0, "passages": 2, "queries": 3, "pairs": 3}
    queries = [json.loads(line) for line in (tmp_path / "augmented" / "queries.jsonl").read_text().splitlines()]
    assert queries == [{"_id": "gen-d2-0", "text": "what is a black hole made of"},
                       {"_id": "gen-d2-1", "text": "can light escape a black hole"},
                       {"_id": "gen-d6-0", "text": "what hormone controls blood sugar"}]
    provenance = [json.loads(line) for line in (tmp_path / "augmented" / "provenance.jsonl").read_text().splitlines()]
    assert provenance[1] == {"query_id": "gen-d2-1", "doc_id": "d2", "query": "can light escape a black hole",
                             "log_probs": [-0.75], "prompt_text": "Example 1: ...", "fewshot_examples": ["7"],
                             "score": -0.75, "source": source, "layout": "inpars"}
    assert "text" not in provenance[0] and "doc_text" not in provenance[2]  # the passage stays in the corpus


def test_parquet_written_by_publish_loads_back(tmp_path, tiny_dataset):
    source = _augir_folder(tmp_path / "augmented")
    params = yaml.safe_load((REPO / "params.yaml").read_text())
    params["augment"]["seed"] = 0
    (tmp_path / "params.yaml").write_text(yaml.safe_dump(params))
    publish(source, tmp_path / "published", PublishOptions(tmp_path / "params.yaml"))
    parquet = next((tmp_path / "published" / "data").glob("*.parquet"))

    for given in (parquet, parquet.parent):  # the file, or a folder holding only Parquet (a hub download)
        synthetic = load_synthetic_set(str(given), tiny_dataset.corpus)
        assert synthetic.layout == "parquet"
        assert synthetic.queries == {r["query_id"]: r["query"] for r in RECORDS if r["query"]}
        assert synthetic.qrels == {r["query_id"]: {r["doc_id"]: 1} for r in RECORDS if r["query"]}
        kept = [{k: v for k, v in r.items() if k != "dropped"} for r in RECORDS if r["query"]]
        assert synthetic.provenance == [{**r, "source": str(given), "layout": "parquet"} for r in kept]
    # The whole published folder is also augir's layout: copied as is, dropped generations included.
    import_augmented(str(tmp_path / "published"), tiny_dataset.corpus, tmp_path / "again")
    assert _files(tmp_path / "again") == _files(source)


def test_hf_source_reads_rows_through_datasets(tmp_path, tiny_dataset, monkeypatch):
    # The network probe is skipped, the rest is real: `datasets.load_dataset` on a folder laid out as on the hub
    # (the card's configs name the Parquet files), which is what `augir publish --to-hub` uploads.
    monkeypatch.setattr(sources, "require_network", lambda source, url: None)
    source = _augir_folder(tmp_path / "augmented")
    params = yaml.safe_load((REPO / "params.yaml").read_text())
    (tmp_path / "params.yaml").write_text(yaml.safe_dump(params))
    publish(source, tmp_path / "hub" / "someone" / "synthetic", PublishOptions(tmp_path / "params.yaml"))
    import datasets

    # A fresh cache: `datasets` can serve an earlier Arrow copy of a local folder instead of reading it again.
    monkeypatch.setattr(datasets.config, "HF_DATASETS_CACHE", tmp_path / "hf-cache")
    synthetic = load_synthetic_set(f"hf:{tmp_path / 'hub' / 'someone' / 'synthetic'}", tiny_dataset.corpus)
    assert synthetic.layout == "hf"
    assert list(synthetic.queries) == ["gen-d3-0", "gen-d1-0", "gen-d5-0"]
    assert synthetic.provenance[0]["generator"] == "smollm2-135m" and synthetic.provenance[0]["run_seed"] == 0
    assert (tmp_path / "hf-cache").is_dir()  # read now, through datasets


def test_hf_source_offline_fails_fast_in_one_line(tmp_path, tiny_dataset, monkeypatch):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    started = time.monotonic()
    message = _error("hf:someone/synthetic-queries", tiny_dataset.corpus, tmp_path / "augmented")
    assert time.monotonic() - started < 2
    assert message == ("augment.source: source 'hf:someone/synthetic-queries' needs network access, "
                       "but HF_HUB_OFFLINE is set (offline mode)")


# ---------------------------------------------------------------------------------------------- bad input


def _unknown_doc(folder: Path) -> None:
    _write(folder / "qrels" / "train.tsv", "query-id\tcorpus-id\tscore\ngen-d3-0\td3\t1\ngen-d1-0\td99\t1\n")


def _bad_json(folder: Path) -> None:
    _write(folder / "queries.jsonl", '{"_id": "gen-d3-0", "text": "how is a vaccine made"}\n{"_id": "gen-d1-0", "te\n')


def _undescribed(folder: Path) -> None:
    records = [r for r in RECORDS if r["query_id"] != "gen-d5-0"]
    _write(folder / "provenance.jsonl", "".join(json.dumps(r) + "\n" for r in records))


def _provenance_elsewhere(folder: Path) -> None:
    records = [{**r, "doc_id": "d8"} if r["query_id"] == "gen-d1-0" else r for r in RECORDS]
    _write(folder / "provenance.jsonl", "".join(json.dumps(r) + "\n" for r in records))


@pytest.mark.parametrize(
    ("damage", "expected"),
    [
        (lambda f: (f / "qrels" / "train.tsv").unlink(), "qrels/train.tsv: file not found"),
        (_unknown_doc, "qrels/train.tsv:3: corpus id 'd99' is not in the corpus"),
        (_bad_json, "queries.jsonl:2: malformed JSON"),
        (_undescribed, "provenance.jsonl: no record for query 'gen-d5-0'"),
        (_provenance_elsewhere, "provenance.jsonl:3: doc_id 'd8' is not judged for query 'gen-d1-0' in the qrels"),
    ],
)
def test_a_bad_augir_folder_is_one_line_naming_file_and_line(tmp_path, tiny_dataset, damage, expected):
    folder = _augir_folder(tmp_path / "source")
    damage(folder)
    assert expected in _error(str(folder), tiny_dataset.corpus, tmp_path / "augmented")


@pytest.mark.parametrize(
    ("lines", "expected"),
    [
        ([{"doc_id": "d2", "query": "ok"}, {"query": "no doc"}], "synthetic.jsonl:2: missing or invalid 'doc_id'"),
        ([{"doc_id": "d99", "query": "unknown passage"}], "synthetic.jsonl:1: corpus id 'd99' is not in the corpus"),
        ([{"doc_id": "d2", "text": "only the passage"}], "synthetic.jsonl:1: missing 'query'"),
        ([{"doc_id": "d2", "query": "  "}], "synthetic.jsonl:1: 'query' must be a non-empty string"),
    ],
)
def test_bad_inpars_lines(tmp_path, tiny_dataset, lines, expected):
    path = tmp_path / "synthetic.jsonl"
    _write(path, "".join(json.dumps(line) + "\n" for line in lines))
    assert expected in _error(str(path), tiny_dataset.corpus, tmp_path / "augmented")


def test_parquet_naming_an_unknown_passage(tmp_path, tiny_dataset):
    import datasets

    path = tmp_path / "set" / "train.parquet"
    path.parent.mkdir()
    datasets.Dataset.from_list([{"query_id": "a", "query": "q", "doc_id": "d1"},
                                {"query_id": "b", "query": "r", "doc_id": "nope"}]).to_parquet(str(path))
    assert f"{path} row 2: corpus id 'nope' is not in the corpus" in _error(str(path), tiny_dataset.corpus, tmp_path / "out")


@pytest.mark.parametrize(
    ("make", "expected"),
    [
        (lambda root: root / "missing", "does not exist"),
        (lambda root: root, "no augmented set in"),
        (lambda root: _write(root / "set.csv", "a,b\n") or root / "set.csv", "neither .jsonl (InPars) nor .parquet"),
        (lambda root: [_write(root / n, "{}\n") for n in ("a.jsonl", "b.jsonl")] and root, "several .jsonl files"),
    ],
)
def test_sources_that_are_no_augmented_set(tmp_path, tiny_dataset, make, expected):
    root = tmp_path / "root"
    root.mkdir()
    assert expected in _error(str(make(root)), tiny_dataset.corpus, tmp_path / "augmented")


def test_a_failed_load_keeps_the_previous_output(tmp_path, tiny_dataset):
    out = tmp_path / "augmented"
    import_augmented(str(_augir_folder(tmp_path / "good")), tiny_dataset.corpus, out)
    before = _files(out)
    bad = _augir_folder(tmp_path / "bad")
    _unknown_doc(bad)
    with pytest.raises(AugirError):
        import_augmented(str(bad), tiny_dataset.corpus, out)
    assert _files(out) == before


def test_an_empty_source_param_is_refused(tmp_path):
    params = yaml.safe_load((REPO / "params.yaml").read_text())
    params["augment"]["source"] = ""
    (tmp_path / "params.yaml").write_text(yaml.safe_dump(params))
    with pytest.raises(AugirError, match="augment.source"):
        load_params(tmp_path / "params.yaml")


# ---------------------------------------------------------------------------------------------- the stage


def _stage_folder(tmp_path: Path, tiny_beir_dir: Path, source: str) -> Path:
    """A pipeline working directory: params.yaml and the downloaded corpus, as DVC would leave them."""
    params = yaml.safe_load((REPO / "params.yaml").read_text())
    params["download"]["sources"] = {"tiny": f"local:{tiny_beir_dir}"}
    params["augment"].update(dataset="tiny", source=source)
    params["train"]["datasets"] = params["evaluate"]["datasets"] = ["tiny"]
    (tmp_path / "params.yaml").write_text(yaml.safe_dump(params))
    shutil.copytree(tiny_beir_dir, tmp_path / "data" / "raw" / "tiny")
    return tmp_path


def test_the_augment_stage_loads_a_source_instead_of_generating(tmp_path, tiny_beir_dir, monkeypatch):
    work = _stage_folder(tmp_path, tiny_beir_dir, "data/published/reg")
    _augir_folder(work / "data" / "published" / "reg")
    monkeypatch.chdir(work)
    stage = runpy.run_path(str(REPO / "stages" / "augment.py"))
    assert run_cli(stage["main"]) == 0
    assert _files(work / "data" / "augmented") == _files(work / "data" / "published" / "reg")
    metrics = json.loads((work / "metrics" / "augment.json").read_text())
    assert metrics.pop("versions") == library_versions()
    assert metrics == {
        "source": "data/published/reg", "layout": "augir", "generated": 0, "passages": 3, "queries": 3, "pairs": 3,
    }


def test_the_augment_stage_with_a_bad_source_fails_in_one_line_and_writes_nothing(
    tmp_path, tiny_beir_dir, monkeypatch, capsys
):
    work = _stage_folder(tmp_path, tiny_beir_dir, "data/published/reg")
    _unknown_doc(_augir_folder(work / "data" / "published" / "reg"))
    monkeypatch.chdir(work)
    stage = runpy.run_path(str(REPO / "stages" / "augment.py"))
    assert run_cli(stage["main"]) == 1
    err = capsys.readouterr().err
    assert err == ("augir: error: data/published/reg/qrels/train.tsv:3: corpus id 'd99' is not in the corpus\n")
    assert not (work / "data" / "augmented").exists() and not (work / "metrics").exists()
