"""The filter stage: keep the synthetic queries a second opinion agrees with.

- `none`: every query is kept.
- `consistency` (InPars, Promptagator): keep a query only if its source passage ranks in the top `top_k` for it
  under a retriever (BM25, or a dense encoder by name).
- `judge`: a small LLM grades each (query, passage) pair 0-3; pairs under `min_grade` are dropped. With
  `judge_model` (a judge trained by the judge stage, augir.judging) the grade is read from the grade tokens'
  probabilities instead, and pairs whose expected grade is under `min_expected_grade` are dropped.
The order of the augmented set is kept, so the first N filtered pairs still follow the seeded passage order.
Each provenance record gains a `filter` entry (the rank or the grade), so the decision can be audited.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from augir.augmentation.backends import Backend
from augir.data.beir import BeirDataset, document_text, read_generated_pairs
from augir.errors import AugirError
from augir.fileio import atomic_folder, check_replaceable, read_jsonl, write_jsonl
from augir.filtering.consistency import source_ranks
from augir.filtering.judge import judge_grades
from augir.params import FilterParams

SIGNATURE = "provenance.jsonl"  # every filtered folder holds it: what may be replaced without --overwrite


def run_filter(dataset: BeirDataset, augmented_dir: Path, params: FilterParams, out_dir: Path,
               backend: Backend | None = None, max_passage_words: int = 120,
               trained_judge: Any = None, *, overwrite: bool = False) -> dict[str, Any]:
    """``trained_judge``: an `augir.judging.run.TrainedJudge`, for method judge with ``params.judge_model``."""
    check_replaceable(out_dir, SIGNATURE, overwrite=overwrite)
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
    elif params.judge_model is not None:
        if trained_judge is None:
            raise AugirError("filter.judge_model: the trained judge was not loaded")
        decisions = _trained_judge_decisions(pairs, dataset, trained_judge, params)
    else:
        if backend is None:
            raise AugirError("filter.method judge needs a generation backend")
        grades = judge_grades(pairs, dataset, backend, params.batch_size, max_passage_words)
        decisions = {
            query_id: {"method": "judge", "judge": params.judge_generator, "grade": grade, "min_grade": params.min_grade,
                       "kept": grade is not None and grade >= params.min_grade}
            for query_id, grade in grades.items()
        }
    _write_filtered(augmented_dir, pairs, decisions, out_dir, overwrite)
    kept = sum(1 for decision in decisions.values() if decision["kept"])
    stats: dict[str, Any] = {"method": params.method, "input": len(pairs), "kept": kept,
                             "kept_fraction": round(kept / len(pairs), 4) if pairs else 0.0}
    if params.method == "judge" and params.judge_model is not None:
        stats["by_grade"] = kept_by_grade(decisions)
    elif params.method == "judge":
        stats["unparsable"] = sum(1 for d in decisions.values() if d["grade"] is None)
    return stats


def _trained_judge_decisions(pairs: list[tuple[str, str, str]], dataset: BeirDataset, judge: Any,
                             params: FilterParams) -> dict[str, dict[str, Any]]:
    readings = judge.grade([(query, document_text(dataset.corpus[doc_id])) for _, query, doc_id in pairs])
    return {
        query_id: {"method": "judge", "judge": params.judge_model, "expected_grade": round(reading.expected, 6),
                   "grade": reading.argmax, "min_expected_grade": params.min_expected_grade,
                   "kept": reading.expected >= params.min_expected_grade}
        for (query_id, _, _), reading in zip(pairs, readings)
    }


def kept_by_grade(decisions: dict[str, dict[str, Any]]) -> dict[str, dict[str, Any]]:
    """Per argmax grade: how many pairs the judge gave it, how many were kept, and the kept fraction."""
    counts: dict[int, list[int]] = {}
    for decision in decisions.values():
        seen = counts.setdefault(decision["grade"], [0, 0])
        seen[0] += 1
        seen[1] += decision["kept"]
    return {str(grade): {"input": total, "kept": kept, "kept_fraction": round(kept / total, 4)}
            for grade, (total, kept) in sorted(counts.items())}


def _write_filtered(augmented_dir: Path, pairs: list[tuple[str, str, str]], decisions: dict[str, dict[str, Any]],
                    out_dir: Path, overwrite: bool = False) -> None:
    provenance_file = augmented_dir / "provenance.jsonl"
    provenance = {r["query_id"]: r for r in read_jsonl(provenance_file)} if provenance_file.exists() else {}
    kept = [(query_id, query, doc_id) for query_id, query, doc_id in pairs if decisions[query_id]["kept"]]
    with atomic_folder(out_dir, signature=SIGNATURE, overwrite=overwrite) as staging:
        write_jsonl(staging / "queries.jsonl", ({"_id": query_id, "text": query} for query_id, query, _ in kept))
        (staging / "qrels").mkdir()
        rows = "".join(f"{query_id}\t{doc_id}\t1\n" for query_id, _, doc_id in kept)
        (staging / "qrels" / "train.tsv").write_text("query-id\tcorpus-id\tscore\n" + rows, encoding="utf-8")
        write_jsonl(
            staging / "provenance.jsonl",
            ({**provenance.get(query_id, {"query_id": query_id, "doc_id": doc_id, "query": query}),
              "filter": decisions[query_id]} for query_id, query, doc_id in pairs),
        )
