"""DVC stage bm25@<name>: the BM25 baseline (bm25s) on one evaluation dataset, scored like evaluate@<name>.

It reads only data/raw/<name> and the evaluate.* settings, so across a grid it runs once and comes back from DVC's
run-cache in every other experiment.
"""

import sys

from augir import layout
from augir.cli import run_cli
from augir.data.beir import load_beir
from augir.fileio import write_json_atomic
from augir.params import load_params
from augir.retrieval.evaluate import BM25_SEARCH, evaluate_bm25, metrics_record, write_run_outputs
from augir.versions import with_versions


def main(name: str) -> None:
    params = load_params().evaluate
    dataset = load_beir(layout.raw(name), strict=params.strict)
    run, evaluation = evaluate_bm25(dataset, split=params.split, top_k=params.top_k, remove_self_hits=params.remove_self_hits)
    write_run_outputs(run, evaluation, layout.bm25_evaluation(name), tag="bm25s")
    record = {**metrics_record(evaluation, dataset, split=params.split, top_k=params.top_k, search=BM25_SEARCH),
              "retriever": "bm25s"}
    write_json_atomic(layout.bm25_metrics(name), with_versions(record))


if __name__ == "__main__":
    sys.exit(run_cli(lambda: main(sys.argv[1])))
