"""`augir publish`: an augmented set as a Hugging Face dataset with a card that says how it was made.

The output folder holds `data/train-00000-of-00001.parquet` (one row per (query, passage) pair, with the
generator, strategy, prompt, sampling and seed of the query), the BEIR generated-queries layout beside it
(`queries.jsonl`, `qrels/train.tsv`, and `provenance.jsonl` with the dropped generations too) and `README.md`,
a dataset card whose YAML front matter follows the hub's conventions (license, task_categories,
configs/data_files) and carries the provenance under `augir:`.

A set is published only when its provenance is complete: every published query has a record naming its
generator, strategy, prompt, sampling and seed, and the licence of the corpus is known. Anything missing is a
one-line error and nothing is written: a dataset whose origin cannot be told should not be shared.
"""

from __future__ import annotations

import hashlib
import html
import json
import os
import re
from collections import Counter
from dataclasses import dataclass
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path
from typing import Any

import yaml

from augir.data.beir import QUERIES_FILE, read_jsonl_lines, read_qrels, read_queries
from augir.errors import AugirError
from augir.fileio import atomic_folder
from augir.params import Params, load_params
from augir.sharing.published import PROVENANCE_FILE, TRAIN_QRELS, SyntheticSet, write_layout

PARQUET_FILE = Path("data") / "train-00000-of-00001.parquet"  # the hub's shard naming: <split>-NNNNN-of-NNNNN
CARD_FILE = "README.md"
REQUIRED_FIELDS = ("generator", "strategy", "prompt", "sampling", "seed")
UNKNOWN_ORIGIN = "refusing to publish a set of unknown origin"
# Provenance fields with a Parquet column of their own; the rest of a record goes, as JSON, into `extra`.
COLUMNS = (
    "query_id", "query", "doc_id", "generator", "strategy", "prompt", "seed", "sampling", "few_shot_query_ids", "raw",
)


@dataclass(frozen=True)
class CorpusLicense:
    hub_id: str  # the card's `license:` value, from the hub's list of identifiers
    text: str  # what a reader needs to know


# Licences of the corpora augir knows, by the last path component of their source (semanlink, beir:scifact, ...).
KNOWN_LICENSES = {
    "semanlink": CorpusLicense("mit", "MIT (the Semanlink data as shipped in the cherche package)"),
    "scifact": CorpusLicense("cc-by-nc-2.0", "CC BY-NC 2.0 (SciFact, Allen Institute for AI)"),
    "cranfield": CorpusLicense("other", "public (the Cranfield collection)"),
}


@dataclass(frozen=True)
class PublishOptions:
    params_path: Path = Path("params.yaml")
    corpus_name: str | None = None  # default: augment.dataset
    corpus_license: str | None = None  # default: KNOWN_LICENSES; required for any other corpus
    to_hub: str | None = None  # a hub dataset repo to upload the folder to


@dataclass(frozen=True)
class CorpusInfo:
    name: str
    source: str
    license: CorpusLicense


def publish(augmented: Path, out: Path, options: PublishOptions) -> dict[str, Any]:
    """Validate `augmented` and its provenance, write the dataset at `out` (and upload it); return the counts."""
    params = load_params(options.params_path)
    corpus = corpus_info(params, options)
    records = read_provenance(augmented)
    synthetic = _published_set(augmented, records)
    if params.augment.source is None:  # a generated set: params.yaml must be what made it
        _check_params_match(params, options.params_path, records)
    by_query = {str(record["query_id"]): record for _, record in records if record.get("query") is not None}
    rows = _rows(synthetic, by_query)
    counts = _counts([record for _, record in records], synthetic, len(rows))
    card = dataset_card(params, corpus, [by_query[qid] for qid in synthetic.queries], counts)
    _check_replaceable(out, augmented)
    if options.to_hub:
        _require_hub(options.to_hub)  # before writing: an offline upload should fail before any work
    with atomic_folder(out) as staging:
        _write_parquet(rows, staging / PARQUET_FILE)
        write_layout(synthetic, staging)
        (staging / CARD_FILE).write_text(card, encoding="utf-8")
    if options.to_hub:
        _upload(out, options.to_hub)
    return counts


# ---------------------------------------------------------------------------------------------- reading


def read_provenance(augmented: Path) -> list[tuple[str, dict[str, Any]]]:
    """(file:line, record) for every generation, dropped ones included; refuses a record lacking a field."""
    path = augmented / PROVENANCE_FILE
    if not path.is_file():
        raise AugirError(f"{path}: file not found (augir publish needs the provenance of every query)")
    records = []
    for lineno, record in read_jsonl_lines(path):
        where = f"{path}:{lineno}"
        for key in ("query_id", "doc_id", *REQUIRED_FIELDS):
            if record.get(key) in (None, ""):
                raise AugirError(f"{where}: provenance record lacks {key!r}; {UNKNOWN_ORIGIN}")
        if "query" not in record:
            raise AugirError(f"{where}: provenance record lacks 'query'; {UNKNOWN_ORIGIN}")
        if isinstance(record["seed"], bool) or not isinstance(record["seed"], int):
            raise AugirError(f"{where}: 'seed' must be an integer, got {record['seed']!r}")
        records.append((where, record))
    if not records:
        raise AugirError(f"{path}: no provenance records")
    return records


def _published_set(augmented: Path, records: list[tuple[str, dict[str, Any]]]) -> SyntheticSet:
    """The queries and pairs as the folder lists them, each matched to a kept provenance record."""
    queries = read_queries(augmented / QUERIES_FILE)
    qrels = read_qrels(augmented / TRAIN_QRELS)
    kept = {str(record["query_id"]): record for _, record in records if record.get("query") is not None}
    for query_id, text in queries.items():
        if query_id not in kept:
            raise AugirError(f"{augmented / PROVENANCE_FILE}: no record for query {query_id!r}; refusing to publish")
        if query_id not in qrels:
            raise AugirError(f"{augmented / TRAIN_QRELS}: query {query_id!r} has no judgment")
    for query_id in qrels:
        if query_id not in queries:
            raise AugirError(f"{augmented / TRAIN_QRELS}: query id {query_id!r} is not in {QUERIES_FILE}")
    synthetic = SyntheticSet(str(augmented), "augir", dict(queries), {qid: qrels[qid] for qid in queries})
    synthetic.provenance = [record for _, record in records]
    return synthetic


def corpus_info(params: Params, options: PublishOptions) -> CorpusInfo:
    name = options.corpus_name or params.augment.dataset
    source = params.download.sources.get(params.augment.dataset, "")
    if options.corpus_license:
        return CorpusInfo(name, source, CorpusLicense(options.corpus_license, options.corpus_license))
    # By the source, not the dataset's key in params.yaml: that is only a label, the source says what the data is.
    known = KNOWN_LICENSES.get(Path(source.partition(":")[2] or source).name.lower())
    if known is not None:
        return CorpusInfo(name, source, known)
    raise AugirError(f"licence of corpus {name!r} (source {source!r}) is unknown: pass --corpus-license")


def run_seed(record: dict[str, Any]) -> Any:
    """The run's `augment.seed`: records with per-query derived seeds keep it as `run_seed`."""
    return record.get("run_seed", record["seed"])


def _check_params_match(params: Params, params_path: Path, records: list[tuple[str, dict[str, Any]]]) -> None:
    """The card's parameters must be those that made the set, or its params hash would describe another set."""
    for where, record in records:
        for key, recorded in (("generator", record["generator"]), ("seed", run_seed(record))):
            expected = getattr(params.augment, key)
            if recorded != expected:
                raise AugirError(
                    f"{params_path}: augment.{key} is {expected!r} but {where} has {key} {recorded!r}; "
                    "publish with the params that made the set"
                )


# ---------------------------------------------------------------------------------------------- rows and card


def _rows(synthetic: SyntheticSet, by_query: dict[str, dict[str, Any]]) -> list[dict[str, Any]]:
    rows = []
    for query_id, text in synthetic.queries.items():
        record = by_query[query_id]
        for doc_id in synthetic.qrels[query_id]:
            rows.append(
                {
                    "query_id": query_id,
                    "query": text,
                    "doc_id": doc_id,
                    "generator": str(record["generator"]),
                    "strategy": str(record["strategy"]),
                    "prompt": prompt_text(record["prompt"]),
                    "seed": record["seed"],
                    # A JSON string: sampling keys differ between generators, a struct column would not.
                    "sampling": json.dumps(record["sampling"], sort_keys=True),
                    "few_shot_query_ids": [str(qid) for qid in record.get("few_shot_query_ids") or []],
                    "raw": record.get("raw"),
                    "extra": json.dumps(_extra(record), sort_keys=True, ensure_ascii=False),
                }
            )
    return rows


def prompt_text(prompt: Any) -> str:
    """A completion prompt as it is; chat messages as JSON (the original also goes into `extra`)."""
    return prompt if isinstance(prompt, str) else json.dumps(prompt, ensure_ascii=False)


def _extra(record: dict[str, Any]) -> dict[str, Any]:
    """What the columns do not hold (backend, run seed, ...), so that loading the Parquet back loses nothing."""
    extra = {key: value for key, value in record.items() if key not in COLUMNS and key != "dropped"}
    if not isinstance(record["prompt"], str):
        extra["prompt"] = record["prompt"]
    return extra


def _write_parquet(rows: list[dict[str, Any]], path: Path) -> None:
    import datasets

    features = datasets.Features(
        {
            **{key: datasets.Value("string") for key in COLUMNS},
            "seed": datasets.Value("int64"),
            "few_shot_query_ids": datasets.List(datasets.Value("string")),
            "extra": datasets.Value("string"),
        }
    )
    path.parent.mkdir(parents=True, exist_ok=True)
    datasets.Dataset.from_list(rows, features=features).to_parquet(str(path))


def _counts(records: list[dict[str, Any]], synthetic: SyntheticSet, pairs: int) -> dict[str, Any]:
    dropped = Counter(str(r.get("dropped") or "unknown") for r in records if r.get("query") is None)
    return {
        "passages": len({str(r["doc_id"]) for r in records}),
        "generated": len(records),
        "kept": sum(1 for r in records if r.get("query") is not None),
        "dropped": dict(sorted(dropped.items())),
        "queries": len(synthetic.queries),
        "pairs": pairs,
    }


def _shared(records: list[dict[str, Any]], key: str) -> Any:
    """The one value every record has for `key`, or the sorted list of the values when they differ."""
    values = sorted({json.dumps(record.get(key), sort_keys=True) for record in records})
    decoded = [json.loads(value) for value in values]
    return decoded[0] if len(decoded) == 1 else decoded


def provenance_summary(
    params: Params, corpus: CorpusInfo, records: list[dict[str, Any]], counts: dict[str, Any]
) -> dict[str, Any]:
    """Everything the card records about how the set was made (the `augir:` block of its front matter)."""
    augment = params.augment.model_dump(mode="json")
    return {
        "augir_version": _augir_version(),
        "corpus": {"name": corpus.name, "source": corpus.source, "license": corpus.license.text},
        "generator": _shared(records, "generator"),
        "strategy": _shared(records, "strategy"),
        "prompt_example": prompt_text(records[0]["prompt"]),
        "sampling": _shared(records, "sampling"),
        "seed": _shared([{"seed": run_seed(record)} for record in records], "seed"),
        "filter": _filter_of(params, records),
        "counts": counts,
        "augment_params": augment,
        "augment_params_sha256": hashlib.sha256(json.dumps(augment, sort_keys=True).encode()).hexdigest(),
    }


def _filter_of(params: Params, records: list[dict[str, Any]]) -> Any:
    """The filter stage's settings where the set went through it (its records carry their own `filter` decision).

    A set without decisions was not filtered, whatever params.yaml's filter section says (publishing
    data/augmented rather than data/filtered).
    """
    if not records or not all("filter" in record for record in records):
        return "none"
    settings = params.model_dump(mode="json").get("filter")
    return settings if settings is not None else "applied (see each record's 'filter' in provenance.jsonl)"


def dataset_card(params: Params, corpus: CorpusInfo, records: list[dict[str, Any]], counts: dict[str, Any]) -> str:
    from huggingface_hub import DatasetCardData

    provenance = provenance_summary(params, corpus, records, counts)
    extra = {"license_name": corpus.license.text} if corpus.license.hub_id == "other" else {}
    data = DatasetCardData(
        license=corpus.license.hub_id,
        pretty_name=f"Synthetic queries for {corpus.name} (augir)",
        task_categories=["text-retrieval"],
        task_ids=["document-retrieval"],
        size_categories=[_size_category(counts["pairs"])],
        tags=["synthetic", "query-generation", "augir"],
        configs=[{"config_name": "default", "data_files": [{"split": "train", "path": "data/train-*.parquet"}]}],
        augir=provenance,
        **extra,
    )
    return f"---\n{data.to_yaml()}\n---\n\n{_card_body(corpus, provenance)}"


def _card_body(corpus: CorpusInfo, provenance: dict[str, Any]) -> str:
    counts = provenance["counts"]
    name = markdown_text(corpus.name)
    table = [
        ("source corpus", f"{name} ({code_span(corpus.source)})"),
        ("corpus licence", markdown_text(corpus.license.text)),
        ("generator", _cell(provenance["generator"])),
        ("strategy", _cell(provenance["strategy"])),
        ("sampling", _cell(provenance["sampling"])),
        ("seed", _cell(provenance["seed"])),
        ("filter", _cell(provenance["filter"])),
        ("passages / generated / kept", f"{counts['passages']} / {counts['generated']} / {counts['kept']}"),
        ("dropped", json.dumps(counts["dropped"], sort_keys=True)),
        ("published queries / pairs", f"{counts['queries']} / {counts['pairs']}"),
        ("augir version", provenance["augir_version"]),
        ("augment params sha256", f"`{provenance['augment_params_sha256']}`"),
    ]
    rows = "\n".join(f"| {key} | {value} |" for key, value in table)
    params_yaml = yaml.safe_dump({"augment": provenance["augment_params"]}, sort_keys=False).strip()
    prompt = provenance["prompt_example"]
    return f"""# Synthetic queries for {name}

Queries written by a language model for passages of **{name}**, made with
[augir](https://pypi.org/project/augir/) for training dense retrievers. Each row of `data/*.parquet` is one
(query, passage) pair with the generator, strategy, full prompt, sampling settings and seed that produced the
query; `doc_id` refers to the corpus, which is not included. Prompts quote corpus passages and training queries,
so the corpus licence applies: {markdown_text(corpus.license.text)}.

## Provenance

| field | value |
|---|---|
{rows}

Augment parameters (their sha256 above is over this mapping as sorted JSON):

{fence(params_yaml)}yaml
{params_yaml}
{fence(params_yaml)}

Example prompt (every row carries its own):

{fence(prompt)}text
{prompt}
{fence(prompt)}

## Files

- `data/train-00000-of-00001.parquet`: `query_id`, `query`, `doc_id`, `generator`, `strategy`, `prompt`, `seed`
  (the query's own, derived from the run seed above where the generator sampled), `sampling` (JSON),
  `few_shot_query_ids`, `raw` (the generation before cleaning), `extra` (the rest of the record, JSON).
- `queries.jsonl`, `qrels/train.tsv`: the same pairs in BEIR's generated-queries layout.
- `provenance.jsonl`: one record per generation, dropped ones included, as augir wrote them.

## Use

```python
from datasets import load_dataset
pairs = load_dataset("parquet", data_files="data/*.parquet", split="train")
```

In an augir pipeline: `augment.source: hf:<this repo>`, or a local copy under `data/published/<name>`.
"""


# ---------------------------------------------------------------------------------------------- Markdown
# Names, sources and generators are the user's free text: in the card they must stay text, never become HTML
# (`<script>`), images, links, table cells or front matter.
_MARKDOWN_SPECIAL = re.compile(r"([\\`*_\[\]|~!#])")


def markdown_text(text: str) -> str:
    """`text` on one line, with HTML and Markdown syntax escaped so that it renders as written."""
    one_line = " ".join(str(text).split())
    return _MARKDOWN_SPECIAL.sub(r"\\\1", html.escape(one_line, quote=False))


def code_span(text: str) -> str:
    """`text` on one line as inline code, fenced by more backticks than it holds (CommonMark)."""
    one_line = " ".join(str(text).split()).replace("|", "\\|")  # a table cell ends at `|`, even in code
    ticks = "`" * (max((len(run) for run in re.findall(r"`+", one_line)), default=0) + 1)
    return f"{ticks} {one_line} {ticks}" if one_line.startswith("`") or one_line.endswith("`") else f"{ticks}{one_line}{ticks}"


def fence(text: str) -> str:
    """A code fence longer than any run of backticks in `text`, so that `text` cannot close it."""
    return "`" * max(3, max((len(run) for run in re.findall(r"`+", text)), default=0) + 1)


def _cell(value: Any) -> str:
    """A value for a Markdown table cell: text escaped, numbers as they are, anything else as JSON code."""
    if isinstance(value, str):
        return markdown_text(value)
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        return str(value)
    return code_span(json.dumps(value, sort_keys=True))


def _size_category(n: int) -> str:
    for limit, label in ((1_000, "n<1K"), (10_000, "1K<n<10K"), (100_000, "10K<n<100K"), (1_000_000, "100K<n<1M")):
        if n < limit:
            return label
    return "n>1M"


def _augir_version() -> str:
    try:
        return version("augir")
    except PackageNotFoundError:  # running from a source tree that was not installed
        from augir import __version__

        return __version__


# ---------------------------------------------------------------------------------------------- output


def _check_replaceable(out: Path, augmented: Path) -> None:
    """`out` is replaced whole: refuse anything but an empty folder or an earlier `augir publish` output."""
    if augmented.resolve().is_relative_to(out.resolve()) or out.resolve().is_relative_to(augmented.resolve()):
        raise AugirError(f"--out {out}: would replace or write into the augmented set {augmented} itself")
    if not out.exists():
        return
    if not out.is_dir():
        raise AugirError(f"--out {out}: exists and is not a folder; refusing to replace it")
    if any(out.iterdir()) and not _is_published(out):
        raise AugirError(f"--out {out}: exists and is not an earlier `augir publish` output; refusing to replace it")


def _is_published(folder: Path) -> bool:
    card = folder / CARD_FILE
    if not card.is_file():
        return False
    front, _, _ = card.read_text(encoding="utf-8").removeprefix("---\n").partition("\n---\n")
    try:
        meta = yaml.safe_load(front)
    except yaml.YAMLError:
        return False
    return isinstance(meta, dict) and "augir" in meta


def _require_hub(repo: str) -> None:
    from augir.data import sources

    endpoint = os.environ.get("HF_ENDPOINT", sources.HF_ENDPOINT_DEFAULT).rstrip("/")
    try:
        sources.require_network(repo, f"{endpoint}/api/datasets/{repo}")
    except AugirError as error:
        raise AugirError(f"--to-hub: {error}") from None


def _upload(folder: Path, repo: str) -> None:
    from huggingface_hub import HfApi

    api = HfApi()
    try:
        api.create_repo(repo, repo_type="dataset", exist_ok=True)
        api.upload_folder(repo_id=repo, folder_path=folder, repo_type="dataset", commit_message="augir publish")
    except Exception as exc:  # the hub client raises many types (auth, network, quota); one line is what helps
        lines = str(exc).strip().splitlines()
        first = lines[0] if lines else ""
        raise AugirError(f"--to-hub {repo}: upload failed ({type(exc).__name__}: {first})") from None
