"""DVC stage evaluate@<name>: retrieve for the split's queries, write the run and metrics/<name>.json."""

import sys

from augir import layout
from augir.cli import run_cli
from augir.data.beir import load_beir
from augir.fileio import write_json_atomic
from augir.params import load_params
from augir.retrieval.encoders import load_encoder
from augir.retrieval.evaluate import evaluate_split, metrics_record, write_run_outputs
from augir.retrieval.index import load_index
from augir.versions import with_versions


def main(name: str) -> None:
    params = load_params()
    evaluate = params.evaluate
    dense = load_index(layout.index(name), nprobe=params.encode.nprobe, ef_search=params.encode.ef_search)
    # The index's ids stand in for the corpus: evaluate reads queries and qrels, never the corpus's texts.
    dataset = load_beir(layout.raw(name), strict=evaluate.strict, doc_ids=dense.doc_ids)
    dataset.split_queries(evaluate.split)  # an unknown split is an error before the model is loaded
    encoder = load_encoder(str(layout.RETRIEVER), max_seq_length=params.encode.max_seq_length,
                           backend=params.encode.backend)
    run, evaluation = evaluate_split(
        encoder,
        dense,
        dataset,
        split=evaluate.split,
        top_k=evaluate.top_k,
        remove_self_hits=evaluate.remove_self_hits,
        batch_size=params.encode.batch_size,
    )
    write_run_outputs(run, evaluation, layout.evaluation(name), tag="augir")
    record = metrics_record(evaluation, dataset, split=evaluate.split, top_k=evaluate.top_k, search=dense.search_record())
    write_json_atomic(layout.metrics(name), with_versions(record))


if __name__ == "__main__":
    sys.exit(run_cli(lambda: main(sys.argv[1])))
