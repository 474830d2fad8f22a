"""The filter stage: keep the synthetic queries a second opinion agrees with.

- `none`: every query is kept.
- `consistency` (InPars, Promptagator): keep a query only if its source passage ranks in the top `top_k` for it
  under a retriever (BM25, or a dense encoder by name).
- `judge`: a small LLM grades each (query, passage) pair 0-3; pairs under `min_grade` are dropped.
The order of the augmented set is kept, so the first N filtered pairs still follow the seeded passage order.
Each provenance record gains a `filter` entry (the rank or the grade), so the decision can be audited.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

from tqdm import tqdm

from augir.backends import Backend, Sampling
from augir.beir import BeirDataset, document_text, read_generated_pairs
from augir.errors import AugirError
from augir.fileio import atomic_folder, read_jsonl, write_jsonl
from augir.params import FilterParams
from augir.prompts import Prompt, generic_examples, truncate_words

GRADE = re.compile(r"[0-3]")
JUDGE_INSTRUCTION = "Rate how relevant the document is to the query, from 0 (irrelevant) to 3 (perfectly relevant)."


def source_ranks(pairs: list[tuple[str, str, str]], dataset: BeirDataset, retriever: str, top_k: int) -> dict[str, int | None]:
    """The rank of each query's source passage within the top k (None when it is not there)."""
    queries = {query_id: text for query_id, text, _ in pairs}
    if retriever == "bm25":
        from augir.bm25 import bm25_run

        run = bm25_run(dataset.corpus, queries, top_k)
    else:
        from augir.encoders import load_encoder
        from augir.index import build_index, encode_corpus, encode_queries, search

        encoder = load_encoder(retriever)
        dense = build_index(*encode_corpus(encoder, dataset, batch_size=64))
        query_ids, embeddings = encode_queries(encoder, queries, batch_size=64)
        run = search(dense, query_ids, embeddings, top_k)
    ranks: dict[str, int | None] = {}
    for query_id, _, doc_id in pairs:
        ranked = sorted(run.get(query_id, {}).items(), key=lambda item: (-item[1], item[0]))
        position = next((i for i, (d, _) in enumerate(ranked, start=1) if d == doc_id), None)
        ranks[query_id] = position
    return ranks


def judge_prompt(query: str, passage: str) -> Prompt:
    """A 2-shot grading prompt whose examples are augir's generic ones (one relevant, one not)."""
    first, second = generic_examples("question", 2, max_words=60)
    shots = (
        f"Document: {first.passage}\nQuery: {first.query}\nRelevance: 3\n\n"
        f"Document: {first.passage}\nQuery: {second.query}\nRelevance: 0\n\n"
    )
    return Prompt(text=f"{JUDGE_INSTRUCTION}\n\n{shots}Document: {passage}\nQuery: {query}\nRelevance:")


def parse_grade(text: str) -> int | None:
    found = GRADE.search(text)
    return int(found.group()) if found else None


def judge_grades(pairs: list[tuple[str, str, str]], dataset: BeirDataset, backend: Backend, batch_size: int,
                 max_passage_words: int) -> dict[str, int | None]:
    grades: dict[str, int | None] = {}
    sampling = Sampling(temperature=0.0, max_new_tokens=2)
    for start in tqdm(range(0, len(pairs), batch_size), desc="judge", unit="batch"):
        batch = pairs[start : start + batch_size]
        prompts = [
            judge_prompt(query, truncate_words(document_text(dataset.corpus[doc_id]), max_passage_words))
            for _, query, doc_id in batch
        ]
        for (query_id, _, _), completion in zip(batch, backend.complete(prompts, [0] * len(batch), sampling)):
            grades[query_id] = parse_grade(completion.text)
    return grades


def run_filter(dataset: BeirDataset, augmented_dir: Path, params: FilterParams, out_dir: Path,
               backend: Backend | None = None, max_passage_words: int = 120) -> dict[str, Any]:
    pairs = read_generated_pairs(augmented_dir)
    for query_id, _, doc_id in pairs:
        if doc_id not in dataset.corpus:
            raise AugirError(f"{augmented_dir / 'qrels' / 'train.tsv'}: passage {doc_id!r} of {query_id} is not in the corpus")
    decisions: dict[str, dict[str, Any]]
    if params.method == "none":
        decisions = {query_id: {"method": "none", "kept": True} for query_id, _, _ in pairs}
    elif params.method == "consistency":
        ranks = source_ranks(pairs, dataset, params.retriever, params.top_k)
        decisions = {
            query_id: {"method": "consistency", "retriever": params.retriever, "top_k": params.top_k,
                       "rank": rank, "kept": rank is not None}
            for query_id, rank in ranks.items()
        }
    else:
        if backend is None:
            raise AugirError("filter.method judge needs a generation backend")
        grades = judge_grades(pairs, dataset, backend, params.batch_size, max_passage_words)
        decisions = {
            query_id: {"method": "judge", "judge": params.judge_generator, "grade": grade, "min_grade": params.min_grade,
                       "kept": grade is not None and grade >= params.min_grade}
            for query_id, grade in grades.items()
        }
    _write_filtered(augmented_dir, pairs, decisions, out_dir)
    kept = sum(1 for decision in decisions.values() if decision["kept"])
    stats: dict[str, Any] = {"method": params.method, "input": len(pairs), "kept": kept,
                             "kept_fraction": round(kept / len(pairs), 4) if pairs else 0.0}
    if params.method == "judge":
        stats["unparsable"] = sum(1 for d in decisions.values() if d["grade"] is None)
    return stats


def _write_filtered(augmented_dir: Path, pairs: list[tuple[str, str, str]], decisions: dict[str, dict[str, Any]],
                    out_dir: Path) -> None:
    provenance_file = augmented_dir / "provenance.jsonl"
    provenance = {r["query_id"]: r for r in read_jsonl(provenance_file)} if provenance_file.exists() else {}
    kept = [(query_id, query, doc_id) for query_id, query, doc_id in pairs if decisions[query_id]["kept"]]
    with atomic_folder(out_dir) as staging:
        write_jsonl(staging / "queries.jsonl", ({"_id": query_id, "text": query} for query_id, query, _ in kept))
        (staging / "qrels").mkdir()
        rows = "".join(f"{query_id}\t{doc_id}\t1\n" for query_id, _, doc_id in kept)
        (staging / "qrels" / "train.tsv").write_text("query-id\tcorpus-id\tscore\n" + rows, encoding="utf-8")
        write_jsonl(
            staging / "provenance.jsonl",
            ({**provenance.get(query_id, {"query_id": query_id, "doc_id": doc_id, "query": query}),
              "filter": decisions[query_id]} for query_id, query, doc_id in pairs),
        )
