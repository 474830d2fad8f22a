"""DVC stage encode@<name>: embed the corpus of one evaluation dataset with the trained retriever."""

import sys
import time

from augir import layout
from augir.cli import run_cli
from augir.fileio import write_json_atomic
from augir.params import load_params
from augir.retrieval.index import index_corpus, index_options
from augir.versions import with_versions


def main(name: str) -> None:
    all_params = load_params()
    params = all_params.encode
    started = time.perf_counter()
    dense = index_corpus(str(layout.RETRIEVER), layout.raw(name), layout.index(name),
                         batch_size=params.batch_size, max_seq_length=params.max_seq_length, options=index_options(params),
                         backend=params.backend, devices=all_params.runtime.encode_devices)
    stats = {"passages": len(dense.doc_ids), **dense.info, "backend": params.backend,
             "devices": all_params.runtime.encode_devices or "default",
             "seconds": round(time.perf_counter() - started, 2)}
    write_json_atomic(layout.encode_metrics(name), with_versions(stats))


if __name__ == "__main__":
    sys.exit(run_cli(lambda: main(sys.argv[1])))
