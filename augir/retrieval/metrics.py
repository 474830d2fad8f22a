"""Retrieval metrics with trec_eval `-c` semantics, computed by ir_measures (over pytrec_eval).

Why this module exists: reported numbers must be comparable with BEIR/MTEB/trec_eval, and the usual
ways they drift apart are (1) which queries the mean is taken over, (2) how score ties are ordered,
(3) whether graded relevance is used as gain and (4) whether a query retrieving itself counts. Each
of those is decided once, here, and covered by tests with hand-computed values. No metric formula is
written in this file: every per-query value comes from ir_measures.

Decisions (all trec_eval `-c`):
- The mean is over every query in the qrels. A judged query the run has no results for scores 0.
- A qrels query whose judgments are all 0 is counted too, scoring 0 on every measure. trec_eval
  `-c` divides by the number of queries in the qrels file (zero-only queries included), and
  ir_measures 0.4.3 does the same; BEIR-style qrels rarely contain such queries, but when they do we
  match trec_eval rather than silently shrink the denominator.
- Queries in the run but not in the qrels are ignored.
- Ties are broken as trec_eval does: score descending, then document id descending.
- nDCG uses the graded relevance as gain with a log2(rank + 1) discount (trec_eval's ndcg_cut).
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Final

import ir_measures
from ir_measures import RR, Measure, R, nDCG

from augir.errors import AugirError
from augir.fileio import write_text_atomic

Qrels = dict[str, dict[str, int]]  # query id -> doc id -> graded relevance
Run = dict[str, dict[str, float]]  # query id -> doc id -> score

REPORTED_MEASURES: Final[dict[str, Measure]] = {
    "ndcg_at_10": nDCG @ 10,  # trec_eval ndcg_cut.10 via pytrec_eval: gain = grade
    "recall_at_100": R @ 100,  # plain (uncapped) recall, relevant = grade >= 1
    "mrr_at_10": RR @ 10,  # MRR@10; reciprocal rank of the first relevant doc in the top 10
}

NUM_QUERIES_KEY: Final = "num_queries"


@dataclass(frozen=True)
class Evaluation:
    """The numbers for one run: means over the judged queries, and the per-query values behind them.

    Per-query values are kept so that significance tests and error analysis need no re-evaluation.
    """

    aggregate: dict[str, float]  # measure key -> mean over judged queries; plus "num_queries"
    per_query: dict[str, dict[str, float]]  # measure key -> query id -> value
    self_hits_removed: bool

    def to_json_dict(self) -> dict[str, float | bool]:
        """The aggregate as written to metrics files, with the self-hit setting recorded beside it,
        because the same run scores very differently with and without it (ArguAna, Quora)."""
        return {**self.aggregate, "self_hits_removed": self.self_hits_removed}


def trec_ranking(scores: Mapping[str, float]) -> list[tuple[str, float]]:
    """Documents in trec_eval order: score descending, ties broken by document id descending.

    trec_eval ignores the rank column and re-sorts by score this way, so using the same order for
    writing runs and for evaluation keeps MRR/nDCG identical to trec_eval on tie-heavy runs.
    """
    return sorted(scores.items(), key=lambda item: (item[1], item[0]), reverse=True)


def remove_self_hits(run: Run) -> Run:
    """A copy of `run` without results whose document id equals the query id (BEIR convention).

    On collections where queries are also documents (ArguAna, Quora) a query retrieves itself;
    BEIR drops those hits before scoring. The input run is not modified.
    """
    return _without_self_hits(run)


def evaluate_run(qrels: Qrels, run: Run, *, remove_self_hits: bool = True) -> Evaluation:
    """Score `run` against `qrels` with trec_eval `-c` semantics (see the module docstring).

    The mean is taken here, explicitly over every judged query, instead of trusting each
    ir_measures provider to pad missing queries with 0.
    """
    judged_qrels = _judged_qrels(qrels)
    evaluated = _without_self_hits(run) if remove_self_hits else run
    ordered = _strictly_ordered(
        {qid: docs for qid, docs in evaluated.items() if qid in judged_qrels and docs}
    )
    per_query = _per_query_values(judged_qrels, ordered)
    num_queries = len(judged_qrels)
    aggregate: dict[str, float] = {
        key: math.fsum(values.values()) / num_queries for key, values in per_query.items()
    }
    aggregate[NUM_QUERIES_KEY] = num_queries
    return Evaluation(aggregate=aggregate, per_query=per_query, self_hits_removed=remove_self_hits)


def write_trec_run(run: Run, path: Path, tag: str) -> None:
    """Write `run` as standard 6-column TREC lines (`qid Q0 docid rank score tag`), atomically.

    Ranks follow trec_ranking, so the file's rank column agrees with how trec_eval will re-sort
    it. The file is written to a temporary name in the same directory and moved into place, so an
    interrupted stage never leaves a truncated run behind for DVC to cache.
    """
    _check_token(tag, "run tag")
    lines: list[str] = []
    for qid in sorted(run):
        _check_token(qid, "query id")
        for rank, (docid, score) in enumerate(trec_ranking(run[qid]), start=1):
            _check_token(docid, "document id")
            value = _finite_score(score, f"query {qid!r}, document {docid!r}")
            lines.append(f"{qid} Q0 {docid} {rank} {value!r} {tag}\n")
    write_text_atomic(path, "".join(lines))


def read_trec_run(path: Path) -> Run:
    """Read a 6-column TREC run file. Ranks are ignored (trec_eval re-sorts by score too).

    Malformed lines and repeated (query, document) pairs are errors rather than silently merged,
    because either means the file is not the run it claims to be.
    """
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise AugirError(f"cannot read TREC run {path}: {exc}") from exc
    run: Run = {}
    for lineno, line in enumerate(text.splitlines(), start=1):
        if not line.strip():
            continue
        fields = line.split()
        where = f"{path}:{lineno}"
        if len(fields) != 6:
            raise AugirError(
                f"{where}: expected 6 columns (qid Q0 docid rank score tag), got {len(fields)}"
            )
        qid, _, docid, _, score_text, _ = fields
        try:
            score = float(score_text)
        except ValueError as exc:
            raise AugirError(f"{where}: score {score_text!r} is not a number") from exc
        docs = run.setdefault(qid, {})
        if docid in docs:
            raise AugirError(f"{where}: document {docid!r} appears twice for query {qid!r}")
        docs[docid] = _finite_score(score, where)
    return run


def _without_self_hits(run: Run) -> Run:
    """remove_self_hits under a name that evaluate_run's keyword argument does not shadow."""
    return {qid: {doc: s for doc, s in docs.items() if doc != qid} for qid, docs in run.items()}


def _judged_qrels(qrels: Qrels) -> Qrels:
    """The qrels queries that count in the mean, with grades checked.

    A query with an empty judgment dict is dropped: a TREC qrels file cannot express it, and
    ir_measures' providers disagree about whether it exists. Zero-only queries are kept (see the
    module docstring).
    """
    judged: Qrels = {}
    for qid, judgments in qrels.items():
        for docid, grade in judgments.items():
            if isinstance(grade, bool) or not isinstance(grade, int):
                raise AugirError(
                    f"relevance of document {docid!r} for query {qid!r} must be an int, "
                    f"got {grade!r}"
                )
        if judgments:
            judged[qid] = dict(judgments)
    if not judged:
        raise AugirError("the qrels contain no judged queries; there is nothing to average over")
    return judged


def _strictly_ordered(run: Run) -> Run:
    """Replace scores by strictly decreasing ones that encode trec_ranking's order.

    ir_measures computes RR@10 with its MS MARCO provider (trec_eval's recip_rank has no cutoff),
    and that provider breaks ties by document id *ascending*, unlike trec_eval. With no ties left,
    every provider ranks exactly as trec_eval would. Only the order matters to these measures.
    """
    ordered: Run = {}
    for qid, docs in run.items():
        ranking = trec_ranking(docs)
        for docid, score in ranking:
            _finite_score(score, f"query {qid!r}, document {docid!r}")
        ordered[qid] = {docid: float(len(ranking) - i) for i, (docid, _) in enumerate(ranking)}
    return ordered


def _per_query_values(qrels: Qrels, run: Run) -> dict[str, dict[str, float]]:
    """Per-query values from ir_measures, with 0 for every judged query it reports nothing for."""
    key_of = {measure: key for key, measure in REPORTED_MEASURES.items()}
    per_query = {key: dict.fromkeys(qrels, 0.0) for key in REPORTED_MEASURES}
    for metric in ir_measures.iter_calc(list(REPORTED_MEASURES.values()), qrels, run):
        if metric.query_id in qrels:
            per_query[key_of[metric.measure]][metric.query_id] = float(metric.value)
    return per_query


def _finite_score(score: float, where: str) -> float:
    """Reject NaN and infinite scores: they have no defined rank in trec_eval."""
    value = float(score)
    if not math.isfinite(value):
        raise AugirError(f"{where}: score {score!r} is not a finite number")
    return value


def _check_token(value: str, what: str) -> None:
    """TREC run files are whitespace-separated, so ids and tags must be non-empty and blank-free."""
    if not value or any(ch.isspace() for ch in value):
        raise AugirError(f"{what} {value!r} must be non-empty and contain no whitespace")
